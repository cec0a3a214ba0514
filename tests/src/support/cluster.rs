//! A real Kubernetes control plane for tests: etcd and the real kube-apiserver, run by
//! `proxlet-cluster` (built from `tests/cluster` by `cargo xtask test`), with kubectl and helm of
//! the same release.
//!
//! [`Cluster::shared`] starts one control plane per test binary on first use, with the
//! repository's CRDs installed and the operator's ClusterRole (the Helm chart's rules) created; it
//! stops when the test binary exits (the program stops when its standard input closes, and removes
//! its data). Each test takes its own [`Namespace`]. Tests that stop, pause or otherwise break the
//! API server start a private one with [`Cluster::start`], stopped when dropped.
//!
//! What a control plane without a kubelet or a controller manager does not do: run pods, create
//! `default` service accounts, finish deleting namespaces, collect garbage (see
//! `tests/cluster/README.md`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::support::bin;

const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// The ClusterRole every test's operator is bound to: the chart's rules, unchanged.
pub const OPERATOR_CLUSTER_ROLE: &str = "proxlet-operator";
/// The operator's service account in each test namespace.
pub const OPERATOR_ACCOUNT: &str = "proxlet-operator";

/// A running control plane.
pub struct Cluster {
    child: Mutex<Option<Child>>,
    stdin: Mutex<Option<ChildStdin>>,
    url: String,
    kubeconfig: PathBuf,
    log: PathBuf,
    /// The program's directory, which it removes when it stops: the test side's kubeconfigs,
    /// helm's home and the log live there too, so nothing is left behind.
    dir: PathBuf,
}

static SHARED: OnceLock<std::result::Result<Cluster, String>> = OnceLock::new();
static NAMESPACES: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// The control plane of this test binary, started (with the CRDs and the operator's
    /// ClusterRole) on first use.
    pub async fn shared() -> Result<&'static Cluster> {
        let shared = SHARED.get_or_init(|| {
            let start = || -> Result<Cluster> {
                let cluster = Cluster::launch()?;
                // A runtime of its own: this one may belong to a test that ends first.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    cluster.install_crds().await?;
                    cluster.install_operator_role().await
                })?;
                Ok(cluster)
            };
            // Off this runtime's thread: the start blocks for seconds.
            std::thread::scope(|s| s.spawn(start).join())
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the start panicked")))
                .map_err(|e| format!("{e:#}"))
        });
        shared.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// A private control plane, with nothing installed; stopped when dropped.
    pub async fn start() -> Result<Cluster> {
        tokio::task::spawn_blocking(Cluster::launch).await?
    }

    fn launch() -> Result<Cluster> {
        // The program owns its directory and removes it when it stops.
        let dir = tempfile::Builder::new()
            .prefix("proxlet-cluster-")
            .tempdir()?
            .keep();
        let log = dir.join("cluster.log");
        let mut child =
            std::process::Command::new(bin::go_tool("proxlet-cluster", "PROXLET_CLUSTER_BIN")?)
                .arg("-dir")
                .arg(&dir)
                .arg("-stop-on-stdin-close")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .context("starting proxlet-cluster")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading so that the program never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                let _ = child.wait();
                bail!(
                    "proxlet-cluster exited before it was ready:\n{}",
                    tail(&log)
                )
            }
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "proxlet-cluster not ready after {START_TIMEOUT:?}:\n{}",
                    tail(&log)
                )
            }
        };
        let mut words = line.split_whitespace();
        let (Some("ready"), Some(url), Some(kubeconfig)) =
            (words.next(), words.next(), words.next())
        else {
            bail!("unexpected line from proxlet-cluster: {line:?}");
        };
        Ok(Cluster {
            url: url.to_owned(),
            kubeconfig: PathBuf::from(kubeconfig),
            log,
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(Some(stdin)),
            dir,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The program's directory (removed when it stops).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The API server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A kube client with the admin identity.
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig, None).await
    }

    /// Pauses the whole control plane (SIGSTOP): requests hang, connections stay open.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Resumes it after [`pause`](Self::pause).
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> Result<()> {
        let pid = self
            .child
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .as_ref()
            .map(Child::id)
            .context("the control plane is stopped")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()?;
        ensure!(status.success(), "kill -{name} {pid} failed");
        Ok(())
    }

    /// Stops the control plane (as on SIGTERM) and waits until it has.
    pub fn stop(&self) -> Result<()> {
        let _ = self.resume();
        drop(
            self.stdin
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .take(),
        );
        let Some(mut child) = self
            .child
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .take()
        else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                ensure!(status.success(), "proxlet-cluster exited with {status}");
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                bail!("proxlet-cluster did not stop within {STOP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A fresh namespace for one test, `PREFIX-N`.
    pub async fn namespace(&self, prefix: &str) -> Result<Namespace<'_>> {
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{n}-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("ns-{name}-"))
            .tempdir_in(&self.dir)?;
        let kubeconfig = dir.path().join("admin.kubeconfig");
        write_kubeconfig(&kubeconfig, &self.kubeconfig, None, &name)?;
        let ns = Namespace {
            cluster: self,
            name,
            dir,
            kubeconfig,
        };
        ns.kubectl_ok(&["create", "namespace", &ns.name]).await?;
        Ok(ns)
    }

    /// `kubectl apply -f crds/` (the repository's generated CRDs), then waits until established.
    pub async fn install_crds(&self) -> Result<()> {
        let dir = bin::repo_root().join("crds");
        let dir = dir.to_str().context("crds path is not UTF-8")?;
        let cli = Cli::admin(self);
        cli.kubectl_ok(&["apply", "--server-side", "-f", dir])
            .await?;
        cli.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/proxyplugins.proxlet.dev",
            "--timeout=60s",
        ])
        .await?;
        Ok(())
    }

    /// The ClusterRole the tests bind operators to, from the chart's rules file.
    pub async fn install_operator_role(&self) -> Result<()> {
        let rules = rules_file("operator-clusterrole-rules.yaml")?;
        let manifest = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: \
             {OPERATOR_CLUSTER_ROLE}\nrules:\n{rules}"
        );
        Cli::admin(self).apply_ok(&manifest).await?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the control plane: {e:#}");
        }
    }
}

/// One test's namespace in a [`Cluster`]. kubectl and helm run as admin with it as the default
/// namespace; [`Namespace::operator_kubeconfig`] gives the operator's own identity.
pub struct Namespace<'a> {
    cluster: &'a Cluster,
    name: String,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Namespace<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cluster(&self) -> &Cluster {
        self.cluster
    }

    /// The admin kubeconfig with this namespace as the default.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A scratch directory that lives as long as this handle.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kube client with the admin identity, defaulting to this namespace.
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig, Some(&self.name)).await
    }

    fn cli(&self) -> Cli<'_> {
        Cli {
            kubeconfig: &self.kubeconfig,
            home: self.dir.path(),
        }
    }

    /// `kubectl ARGS`: the output whatever the exit status.
    pub async fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.cli().run("kubectl", args, None).await
    }

    /// `kubectl ARGS`, failing with its stderr unless it succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        self.cli().kubectl_ok(args).await
    }

    /// `kubectl apply -f -` with `yaml`: the output whatever the exit status.
    pub async fn apply(&self, yaml: &str) -> Result<Output> {
        self.cli()
            .run("kubectl", &["apply", "-f", "-"], Some(yaml))
            .await
    }

    /// `kubectl apply -f -`, failing unless it succeeds.
    pub async fn apply_ok(&self, yaml: &str) -> Result<String> {
        self.cli().apply_ok(yaml).await
    }

    /// `kubectl ARGS` with `input` on stdin, failing unless it succeeds; returns stdout.
    pub async fn kubectl_input_ok(&self, args: &[&str], input: &str) -> Result<String> {
        let out = self.cli().run("kubectl", args, Some(input)).await?;
        ensure!(
            out.status.success(),
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `helm ARGS` (admin, this namespace): the output whatever the exit status.
    pub async fn helm(&self, args: &[&str]) -> Result<Output> {
        self.cli().run("helm", args, None).await
    }

    /// A service account in this namespace.
    pub async fn service_account(&self, name: &str) -> Result<()> {
        self.kubectl_ok(&["create", "serviceaccount", name]).await?;
        Ok(())
    }

    /// A token of service account `name` for `audience` (TokenRequest, as a projected volume
    /// gets), valid for an hour.
    pub async fn token(&self, account: &str, audience: &str) -> Result<String> {
        let token = self
            .kubectl_ok(&[
                "create",
                "token",
                account,
                "--audience",
                audience,
                "--duration",
                "1h",
            ])
            .await?;
        Ok(token.trim().to_owned())
    }

    /// The operator's identity in this namespace: service account [`OPERATOR_ACCOUNT`] bound to
    /// the chart's ClusterRole (cluster-wide, as the chart binds it) and to the chart's Role here
    /// (its Lease). Returns a kubeconfig with its token and this namespace as the default.
    pub async fn operator_kubeconfig(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("operator.kubeconfig");
        if path.is_file() {
            return Ok(path);
        }
        self.service_account(OPERATOR_ACCOUNT).await?;
        let subject = format!("{}:{OPERATOR_ACCOUNT}", self.name);
        self.kubectl_ok(&[
            "create",
            "clusterrolebinding",
            &format!("{OPERATOR_ACCOUNT}-{}", self.name),
            "--clusterrole",
            OPERATOR_CLUSTER_ROLE,
            "--serviceaccount",
            &subject,
        ])
        .await?;
        let rules = rules_file("operator-role-rules.yaml")?;
        self.apply_ok(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: \
             {OPERATOR_ACCOUNT}\nrules:\n{rules}---\napiVersion: rbac.authorization.k8s.io/v1\n\
             kind: RoleBinding\nmetadata:\n  name: {OPERATOR_ACCOUNT}\nroleRef:\n  apiGroup: \
             rbac.authorization.k8s.io\n  kind: Role\n  name: {OPERATOR_ACCOUNT}\nsubjects:\n- \
             kind: ServiceAccount\n  name: {OPERATOR_ACCOUNT}\n  namespace: {}\n",
            self.name
        ))
        .await?;
        let token = self
            .kubectl_ok(&["create", "token", OPERATOR_ACCOUNT, "--duration", "24h"])
            .await?;
        self.account_kubeconfig(&path, token.trim())?;
        Ok(path)
    }

    /// A kubeconfig that authenticates with `token`, defaulting to this namespace.
    pub fn account_kubeconfig(&self, path: &Path, token: &str) -> Result<()> {
        write_kubeconfig(path, &self.cluster.kubeconfig, Some(token), &self.name)
    }
}

/// kubectl and helm with one kubeconfig.
struct Cli<'a> {
    kubeconfig: &'a Path,
    home: &'a Path,
}

impl<'a> Cli<'a> {
    fn admin(cluster: &'a Cluster) -> Self {
        Cli {
            kubeconfig: &cluster.kubeconfig,
            home: &cluster.dir,
        }
    }

    async fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run("kubectl", args, None).await?;
        ensure!(
            out.status.success(),
            "kubectl {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn apply_ok(&self, yaml: &str) -> Result<String> {
        let out = self
            .run("kubectl", &["apply", "-f", "-"], Some(yaml))
            .await?;
        if !out.status.success() {
            bail!(
                "kubectl apply failed ({}): {}\n{yaml}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn run(&self, tool: &str, args: &[&str], input: Option<&str>) -> Result<Output> {
        let env = match tool {
            "helm" => "PROXLET_HELM",
            _ => "PROXLET_KUBECTL",
        };
        let mut cmd = Command::new(bin::go_tool(tool, env)?);
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig)
            .env("HOME", self.home)
            .env("HELM_CACHE_HOME", self.home.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.home.join("helm/config"))
            .env("HELM_DATA_HOME", self.home.join("helm/data"))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("running {tool}"))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).await?;
        }
        tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("{tool} {} did not finish", args.join(" ")))?
            .with_context(|| tool.to_owned())
    }
}

/// A rules file of the chart (`charts/proxlet/files/`), indented as a list under `rules:`.
fn rules_file(name: &str) -> Result<String> {
    let path = bin::repo_root().join("charts/proxlet/files").join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Writes a kubeconfig for the cluster of `admin`: with `token` as the user (else the admin's),
/// and `namespace` as the default.
fn write_kubeconfig(path: &Path, admin: &Path, token: Option<&str>, namespace: &str) -> Result<()> {
    let text = std::fs::read_to_string(admin)?;
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let context = &mut config["contexts"][0]["context"];
    context["namespace"] = namespace.into();
    if let Some(token) = token {
        config["users"][0]["user"] =
            serde_yaml::Mapping::from_iter([("token".into(), token.into())]).into();
    }
    std::fs::write(path, serde_yaml::to_string(&config)?)?;
    Ok(())
}

async fn client_for(kubeconfig: &Path, namespace: Option<&str>) -> Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let options = kube::config::KubeConfigOptions::default();
    let mut config = kube::Config::from_custom_kubeconfig(config, &options).await?;
    if let Some(ns) = namespace {
        config.default_namespace = ns.to_owned();
    }
    Ok(kube::Client::try_from(config)?)
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
