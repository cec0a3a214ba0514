//! The control plane the Kubernetes tests run on does what they rely on: the real kube-apiserver
//! with etcd, kubectl and helm of its release, service-account tokens issued and reviewed with
//! their audience, admission webhooks called by URL with a `caBundle`, and a clean stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxlet_tests::support::cluster::{Cluster, Namespace};
use proxlet_tests::support::tls::TestCerts;
use serde_json::{Value, json};

const RELEASE: &str = "v1.37.2";

async fn json(ns: &Namespace<'_>, args: &[&str]) -> Result<Value> {
    Ok(serde_json::from_str(&ns.kubectl_ok(args).await?)?)
}

#[tokio::test]
async fn kubectl_and_the_server_are_one_release_with_discovery_and_openapi() -> Result<()> {
    let ns = Cluster::shared().await?.namespace("versions").await?;
    let version = json(&ns, &["version", "-o", "json"]).await?;
    ensure!(
        version["clientVersion"]["gitVersion"] == RELEASE
            && version["serverVersion"]["gitVersion"] == RELEASE,
        "{version:#}"
    );
    // Aggregated discovery: the CRD's resource, with its short name.
    let resources = ns
        .kubectl_ok(&["api-resources", "--api-group", "proxlet.dev"])
        .await?;
    ensure!(
        resources.contains("proxyplugins") && resources.contains(" pp "),
        "{resources}"
    );
    // OpenAPI v3 from the CRD's schema.
    let explained = ns
        .kubectl_ok(&["explain", "proxyplugin.spec.image"])
        .await?;
    ensure!(explained.contains("oci://"), "{explained}");
    let helm = ns.helm(&["version", "--short"]).await?;
    ensure!(
        String::from_utf8_lossy(&helm.stdout).starts_with("v4."),
        "{helm:?}"
    );
    Ok(())
}

/// A TokenReview of `token` for `audiences`, as the admin.
async fn review(ns: &Namespace<'_>, token: &str, audiences: &[&str]) -> Result<Value> {
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": { "token": token, "audiences": audiences },
    });
    let out = ns
        .kubectl_input_ok(&["create", "-f", "-", "-o", "json"], &body.to_string())
        .await?;
    Ok(serde_json::from_str(&out)?)
}

#[tokio::test]
async fn service_account_tokens_are_issued_and_reviewed_with_their_audience() -> Result<()> {
    let ns = Cluster::shared().await?.namespace("tokens").await?;
    ns.service_account("sidecar").await?;
    let token = ns.token("sidecar", "proxlet").await?;

    let ok = review(&ns, &token, &["proxlet"]).await?;
    ensure!(ok["status"]["authenticated"] == true, "{ok:#}");
    ensure!(
        ok["status"]["user"]["username"]
            == format!("system:serviceaccount:{}:sidecar", ns.name()).as_str(),
        "{ok:#}"
    );
    ensure!(ok["status"]["audiences"] == json!(["proxlet"]), "{ok:#}");

    // The same token for another audience, and a token whose signature is not the server's.
    let other = review(&ns, &token, &["someone-else"]).await?;
    ensure!(other["status"]["authenticated"] != true, "{other:#}");
    let mut forged = token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let forged = review(&ns, &forged, &["proxlet"]).await?;
    ensure!(forged["status"]["authenticated"] != true, "{forged:#}");
    Ok(())
}

/// An HTTPS admission webhook on 127.0.0.1 that labels every object it sees
/// `webhook: called`; counts its calls.
async fn webhook(certs: &TestCerts) -> Result<(std::net::SocketAddr, Arc<AtomicUsize>)> {
    let chain = rustls_pemfile::certs(&mut std::fs::read(&certs.cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(&certs.key)?.as_slice())?
        .context("no key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, calls) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let body = req.into_body().collect().await?.to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let patch = json!([{
                            "op": "add",
                            "path": "/metadata/labels",
                            "value": { "webhook": "called" },
                        }]);
                        let answer = json!({
                            "apiVersion": "admission.k8s.io/v1",
                            "kind": "AdmissionReview",
                            "response": {
                                "uid": review["request"]["uid"],
                                "allowed": true,
                                "patchType": "JSONPatch",
                                "patch": base64::engine::general_purpose::STANDARD
                                    .encode(patch.to_string()),
                            },
                        });
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(answer.to_string()),
                        )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((addr, calls))
}

fn webhook_configuration(name: &str, ns: &str, url: &str, ca: &[u8], policy: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n\
         metadata:\n  name: {name}\nwebhooks:\n- name: label.{name}.proxlet.dev\n  \
         admissionReviewVersions: [v1]\n  sideEffects: None\n  failurePolicy: {policy}\n  \
         timeoutSeconds: 5\n  clientConfig:\n    url: {url}\n    caBundle: {ca}\n  \
         namespaceSelector:\n    matchLabels:\n      kubernetes.io/metadata.name: {ns}\n  \
         rules:\n  - apiGroups: ['']\n    apiVersions: [v1]\n    operations: [CREATE]\n    \
         resources: [pods]\n"
    )
}

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    \
         image: registry.invalid/app:v1\n"
    )
}

#[tokio::test]
async fn the_api_server_calls_admission_webhooks_by_url_with_their_ca_bundle() -> Result<()> {
    let ns = Cluster::shared().await?.namespace("webhook").await?;
    let certs = TestCerts::generate(ns.dir())?;
    let ca = std::fs::read(&certs.cert)?;
    let (addr, calls) = webhook(&certs).await?;
    let name = format!("label-{}", ns.name());
    let url = format!("https://{addr}/mutate");
    ns.apply_ok(&webhook_configuration(&name, ns.name(), &url, &ca, "Fail"))
        .await?;
    ns.apply_ok(&pod("one")).await?;
    let labels = ns
        .kubectl_ok(&[
            "get",
            "pod",
            "one",
            "-o",
            "jsonpath={.metadata.labels.webhook}",
        ])
        .await?;
    ensure!(labels == "called", "the pod's label: {labels:?}");
    ensure!(calls.load(Ordering::SeqCst) >= 1);

    // The webhook gone: `Fail` refuses the pod with the reason, `Ignore` lets it through.
    let closed = proxlet_tests::support::registry::free_addr()?;
    let down = format!("https://{closed}/mutate");
    ns.apply_ok(&webhook_configuration(&name, ns.name(), &down, &ca, "Fail"))
        .await?;
    let refused = ns.apply(&pod("two")).await?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && stderr.contains("failed calling webhook"),
        "{stderr}"
    );
    ns.apply_ok(&webhook_configuration(
        &name,
        ns.name(),
        &down,
        &ca,
        "Ignore",
    ))
    .await?;
    ns.apply_ok(&pod("three")).await?;
    ns.kubectl_ok(&["delete", "mutatingwebhookconfiguration", &name])
        .await?;
    Ok(())
}

#[tokio::test]
async fn helm_installs_a_chart_that_requires_this_kubernetes_version() -> Result<()> {
    let ns = Cluster::shared().await?.namespace("helm").await?;
    let chart = ns.dir().join("chart");
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: \">=1.29.0-0\"\n",
    )?;
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-probe\ndata:\n  \
         kube: {{ .Capabilities.KubeVersion.Version | quote }}\n",
    )?;
    let chart = chart.to_str().context("path")?;
    let out = ns
        .helm(&[
            "install",
            "probe",
            chart,
            "--namespace",
            ns.name(),
            "--wait",
        ])
        .await?;
    ensure!(out.status.success(), "{out:?}");
    let kube = ns
        .kubectl_ok(&[
            "get",
            "configmap",
            "probe-probe",
            "-o",
            "jsonpath={.data.kube}",
        ])
        .await?;
    ensure!(kube == RELEASE, "helm saw Kubernetes {kube:?}");
    let out = ns
        .helm(&["uninstall", "probe", "--namespace", ns.name(), "--wait"])
        .await?;
    ensure!(out.status.success(), "{out:?}");
    let gone = ns.kubectl(&["get", "configmap", "probe-probe"]).await?;
    ensure!(
        !gone.status.success(),
        "the release's ConfigMap outlived it"
    );
    Ok(())
}

#[tokio::test]
async fn a_control_plane_stops_on_request_and_leaves_nothing_behind() -> Result<()> {
    let cluster = Cluster::start().await?;
    let dir = cluster.dir().to_path_buf();
    ensure!(dir.is_dir());
    let ns = cluster.namespace("stop").await?;
    ns.kubectl_ok(&["get", "namespace", ns.name()]).await?;
    drop(ns);
    tokio::task::spawn_blocking(move || cluster.stop()).await??;
    ensure!(!dir.exists(), "{} is still there", dir.display());
    Ok(())
}
