// Command proxlet-cluster runs a real Kubernetes control plane on 127.0.0.1 for the tests:
// etcd (embedded) and the real kube-apiserver (in-process, through its app package), with RBAC,
// service-account tokens (TokenRequest, TokenReview), the default admission plugins with the
// webhook ones, CRDs with CEL, aggregated discovery and OpenAPI.
//
// It owns the directory given by -dir: certificates, the etcd data, the admin token file, and the
// admin kubeconfig, written (atomically) once the API server answers /readyz, when it also prints
// "ready URL KUBECONFIG" on standard output. On SIGTERM or SIGINT (or, with
// -stop-on-stdin-close, when standard input closes) it stops the API server, then etcd, then
// removes the directory. There is no kubelet and no controller manager: README.md says what that
// leaves out.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as the real binary
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as the real binary
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as the real binary
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	dir := flag.String("dir", "", "directory the control plane owns; created, and removed at exit")
	port := flag.Int("port", 0, "the API server's port on 127.0.0.1 (0: pick a free one)")
	keep := flag.Bool("keep", false, "keep -dir at exit")
	verbosity := flag.Int("v", 0, "kube-apiserver log verbosity")
	stdin := flag.Bool("stop-on-stdin-close", false, "stop as on SIGTERM when standard input closes")
	flag.Parse()
	if *dir == "" {
		fail(fmt.Errorf("-dir is required"))
	}
	if *stdin {
		// The parent holds the other end: when it exits, for whatever reason, so does this.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}()
	}
	code, err := run(*dir, *port, *verbosity)
	if !*keep {
		if rmErr := os.RemoveAll(*dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}
	if err != nil {
		fail(err)
	}
	os.Exit(code)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "proxlet-cluster: %v\n", err)
	os.Exit(1)
}

// run starts etcd and the API server, and returns the API server's exit code once it stops.
func run(dir string, port, verbosity int) (int, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 1, err
	}
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return 1, fmt.Errorf("certificates: %w", err)
	}
	token, err := randomToken()
	if err != nil {
		return 1, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	// The admin identity: a static token in system:masters, as kubeadm's admin.conf is.
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return 1, err
	}

	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return 1, fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		etcd.Close()
		<-etcd.Server.StopNotify()
	}()

	if port == 0 {
		if port, err = freePort(); err != nil {
			return 1, err
		}
	}
	server := "https://127.0.0.1:" + strconv.Itoa(port)
	go func() {
		if err := awaitReady(server, pki.caPEM, token); err != nil {
			fmt.Fprintf(os.Stderr, "proxlet-cluster: %v\n", err)
			return
		}
		kubeconfig := filepath.Join(dir, "kubeconfig")
		if err := writeKubeconfig(kubeconfig, server, pki.caPEM, token); err != nil {
			fmt.Fprintf(os.Stderr, "proxlet-cluster: kubeconfig: %v\n", err)
			return
		}
		fmt.Printf("ready %s %s\n", server, kubeconfig)
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(apiserverArgs(dir, port, etcdURL, tokens, pki, verbosity))
	return cli.Run(cmd), nil
}

// apiserverArgs are the flags envtest gives kube-apiserver, plus the admission and token set-up
// the tests need.
func apiserverArgs(dir string, port int, etcdURL, tokens string, pki paths, verbosity int) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--token-auth-file=" + tokens,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPublic,
		"--service-account-signing-key-file=" + pki.saPrivate,
		"--authorization-mode=RBAC",
		// The default plugins stay on, the webhook ones included. ServiceAccount is off only
		// because no controller manager runs here to create each namespace's `default`
		// account: with it on, every Pod would be refused for lack of that account.
		"--disable-admission-plugins=ServiceAccount",
		// The `kubernetes` Service would list 127.0.0.1, which Endpoints refuse.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=" + strconv.Itoa(verbosity),
	}
}

func startEtcd(dir string) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "proxlet-cluster"
	cfg.LogLevel = "error"
	// Test data: durability across a power cut is not needed, speed is.
	cfg.UnsafeNoFsync = true
	client := mustURL("http://127.0.0.1:" + strconv.Itoa(clientPort))
	peer := mustURL("http://127.0.0.1:" + strconv.Itoa(peerPort))
	cfg.ListenClientUrls = []neturl.URL{client}
	cfg.AdvertiseClientUrls = []neturl.URL{client}
	cfg.ListenPeerUrls = []neturl.URL{peer}
	cfg.AdvertisePeerUrls = []neturl.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("not ready after 60s")
	}
	return e, client.String(), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// awaitReady polls /readyz with the admin token until it answers 200.
func awaitReady(server string, caPEM []byte, token string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, server+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the API server at %s was not ready within 3 minutes", server)
}

func writeKubeconfig(path, server string, caPEM []byte, token string) error {
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxlet-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: admin
  context:
    cluster: proxlet-test
    user: admin
current-context: admin
`, server, base64.StdEncoding.EncodeToString(caPEM), token)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
