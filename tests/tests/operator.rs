//! The operator end to end: the real kube-apiserver with etcd, the real `kubectl`, the real
//! `proxlet-operator run` authenticated as its own service account with the Helm chart's RBAC,
//! and a real OCI registry (Debian's `docker-registry`).
//!
//! The CRDs come from `crds/`; kubectl applies ProxyPlugins in the test's own namespace; the
//! operator pulls, verifies and validates the modules and reports in the status what a user
//! reads with `kubectl get pp`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::cluster::{Cluster, Namespace};
use proxlet_tests::support::operator::{Operator, OperatorBuilder};
use proxlet_tests::support::plugins;
use proxlet_tests::support::registry::{Registry, digest};
use proxlet_tests::support::{artifacts, bin, prom, wait};
use serde_json::Value;
use tokio::process::Command;

const CONVERGE: Duration = Duration::from_secs(60);

/// A ProxyPlugin manifest.
fn plugin(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: proxlet.dev/v1alpha1\nkind: ProxyPlugin\nmetadata:\n  name: {name}\nspec:\n  image: {image}\n{extra}"
    )
}

/// `proxlet-operator publish FILE IMAGE --insecure`, anonymously.
async fn publish(module: &str, image: &str) -> Result<String> {
    publish_as(module, image, None).await
}

/// `proxlet-operator publish`, with `(registry, user, password)` in a Docker config when given.
async fn publish_as(
    module: &str,
    image: &str,
    login: Option<(&str, &str, &str)>,
) -> Result<String> {
    let path = plugins::wasm(module)?;
    let docker = tempfile::tempdir()?;
    if let Some((registry, user, password)) = login {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
        std::fs::write(docker.path().join("config.json"), config.to_string())?;
    }
    let out = Command::new(bin::path("proxlet-operator", "PROXLET_OPERATOR_BIN")?)
        .arg("publish")
        .arg(&path)
        .args([image, "--insecure"])
        .env("DOCKER_CONFIG", docker.path())
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(digest(&std::fs::read(path)?))
}

async fn get_json(kube: &Namespace<'_>, what: &str) -> Result<Value> {
    let out = kube.kubectl_ok(&["get", what, "-o", "json"]).await?;
    Ok(serde_json::from_str(&out)?)
}

fn condition<'a>(pp: &'a Value, kind: &str) -> Option<&'a Value> {
    pp["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Waits until condition `kind` of `pp/name` has `reason`; returns the object.
async fn wait_reason(kube: &Namespace<'_>, name: &str, kind: &str, reason: &str) -> Result<Value> {
    let what = format!("pp/{name} {kind} reason {reason}");
    let target = format!("pp/{name}");
    let found = wait::until(&what, CONVERGE, || async {
        let pp = get_json(kube, &target).await.ok()?;
        condition(&pp, kind)
            .is_some_and(|c| c["reason"] == reason)
            .then_some(pp)
    })
    .await;
    match found {
        Ok(pp) => Ok(pp),
        Err(e) => {
            let last = get_json(kube, &target).await.unwrap_or_default();
            Err(e.context(format!("last status: {:#}", last["status"])))
        }
    }
}

/// The test's namespace in the shared control plane, and a registry of its own.
async fn setup(name: &str) -> Result<(Namespace<'static>, Registry)> {
    let kube = Cluster::shared().await?.namespace(name).await?;
    Ok((kube, Registry::start().await?))
}

/// The operator as its service account in the test's namespace, reaching `registry`.
async fn operator(kube: &Namespace<'_>, registry: &Registry) -> Result<OperatorBuilder> {
    Ok(Operator::in_namespace(kube)
        .await?
        .insecure_registry(&registry.host()))
}

#[tokio::test]
async fn a_plugin_from_apply_to_delete() -> Result<()> {
    let (kube, registry) = setup("lifecycle").await?;
    let image = registry.image("plugins/headers:v1");
    let first = publish("header_modifier", &image).await?;
    let op = operator(&kube, &registry)
        .await?
        .args(["--resync", "1s"])
        .start()
        .await?;

    kube.apply_ok(&plugin("headers", &image, "  imagePullPolicy: Always\n"))
        .await?;
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pp/headers",
        "--timeout=60s",
    ])
    .await?;
    let table = kube.kubectl_ok(&["get", "pp"]).await?;
    let short_digest = &first[7..19];
    ensure!(
        table.contains("READY") && table.contains("DIGEST") && table.contains("LOADED"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("headers"))
        .context("no row")?;
    ensure!(
        row.contains("True") && row.contains(short_digest),
        "row {row:?} lacks True {short_digest}"
    );
    let wide = kube.kubectl_ok(&["get", "pp", "-o", "wide"]).await?;
    ensure!(
        wide.contains("REASON") && wide.contains("Offered"),
        "{wide}"
    );
    let pp = get_json(&kube, "pp/headers").await?;
    ensure!(
        pp["status"]["digest"] == first.as_str(),
        "{:#}",
        pp["status"]
    );
    ensure!(
        pp["status"]["format"] == "Cncf" && pp["status"]["abi"] == "0.2.1",
        "{:#}",
        pp["status"]
    );
    ensure!(
        pp["metadata"]["finalizers"][0] == "proxlet.dev/offered",
        "{:#}",
        pp["metadata"]
    );
    let yaml = kube
        .kubectl_ok(&["get", "pp", "headers", "-o", "yaml"])
        .await?;
    ensure!(yaml.contains(&format!("digest: {first}")), "{yaml}");

    // The tag moves to another module: the operator follows it.
    let second = publish("logger", &image).await?;
    ensure!(second != first);
    wait::until_true("the new digest in the status", CONVERGE, || async {
        get_json(&kube, "pp/headers")
            .await
            .is_ok_and(|pp| pp["status"]["digest"] == second.as_str())
    })
    .await?;
    let events = kube.kubectl_ok(&["get", "events", "-o", "json"]).await?;
    ensure!(events.contains("DigestChanged"), "{events}");
    let (_, offered) = op.admin_get("/api/plugins").await?;
    ensure!(offered.contains(&second), "{offered}");

    // Metrics: one pull per digest, and a clean exposition.
    let metrics = op.metrics().await?;
    prom::promtool_check(&metrics).await?;
    ensure!(
        prom::sum(
            &metrics,
            "proxlet_operator_pulls_total",
            &[("result", "ok")]
        )? >= 2.0,
        "{metrics}"
    );
    ensure!(
        prom::sum(&metrics, "proxlet_operator_cache_entries", &[])? >= 2.0,
        "{metrics}"
    );

    // The registry goes away: the failure is reported and the last good digest stays in force.
    registry.stop().await?;
    let pp = wait_reason(&kube, "headers", "Fetched", "RegistryUnreachable").await?;
    let ready = condition(&pp, "Ready").context("Ready")?;
    ensure!(
        ready["status"] == "True" && ready["reason"] == "StaleDigest",
        "{ready:#}"
    );
    ensure!(
        pp["status"]["digest"] == second.as_str(),
        "{:#}",
        pp["status"]
    );

    // Delete: the finalizer withdraws the plugin, then the object goes.
    kube.kubectl_ok(&["delete", "pp", "headers", "--timeout=60s"])
        .await?;
    let gone = kube.kubectl(&["get", "pp", "headers"]).await?;
    ensure!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    let (_, offered) = op.admin_get("/api/plugins").await?;
    ensure!(!offered.contains("headers"), "{offered}");
    Ok(())
}

#[tokio::test]
async fn invalid_specs_are_refused_by_the_schema_with_the_field() -> Result<()> {
    let kube = Cluster::shared().await?.namespace("schema").await?;
    let ok = "oci://registry.example/p:v1";
    for (extra, image, words) in [
        ("  priority: 5000\n", ok, "spec.priority"),
        (
            "  priority: 5000\n",
            ok,
            "priority must be between -1000 and 1000",
        ),
        (
            "",
            "ftp://registry.example/p",
            "image must start with oci://, https:// or file://",
        ),
        (
            "  sha256: xyz\n",
            ok,
            "sha256 must be 64 lowercase hexadecimal digits",
        ),
        (
            "",
            "https://example.com/p.wasm",
            "sha256 is required for https:// images",
        ),
        ("  failurePolicy: Sometimes\n", ok, "spec.failurePolicy"),
        (
            "  failurePolicy: Sometimes\n",
            ok,
            "\"FailClosed\", \"FailOpen\"",
        ),
        (
            "  limits:\n    hookTimeout: 1h\n",
            ok,
            "hookTimeout must be a duration between 1ms and 10s",
        ),
        (
            "  limits:\n    memory: 64Gi\n",
            ok,
            "memory must be a quantity between 1Mi and 4Gi",
        ),
        ("  imagePullPolicy: Never\n", ok, "spec.imagePullPolicy"),
    ] {
        let out = kube.apply(&plugin("bad", image, extra)).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "accepted {extra:?} {image}");
        ensure!(
            stderr.contains(words),
            "{extra:?} {image}: expected {words:?} in {stderr}"
        );
    }
    let listed = kube.kubectl_ok(&["get", "pp", "-o", "name"]).await?;
    ensure!(listed.trim().is_empty(), "nothing was stored: {listed}");
    kube.apply_ok(&plugin(
        "good",
        ok,
        "  priority: 1000\n  limits:\n    hookTimeout: 50ms\n    memory: 128Mi\n",
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_modules_and_sources_get_a_reason_a_user_can_act_on() -> Result<()> {
    let (kube, registry) = setup("bad").await?;
    let secured = Registry::builder().htpasswd("ci", "s3cret").start().await?;
    let dead = proxlet_tests::support::registry::free_addr()?.to_string();
    let good = registry.image("plugins/headers:v1");
    publish("header_modifier", &good).await?;
    let noop_pin = digest(&std::fs::read(plugins::wasm("noop")?)?);
    let not_wasm =
        artifacts::push_cncf(&registry, "bad/text", "v1", b"#!/bin/sh\necho not wasm\n").await?;
    let no_abi = artifacts::push_cncf(&registry, "bad/noabi", "v1", b"\0asm\x01\0\0\0").await?;
    let big = artifacts::push_cncf(
        &registry,
        "bad/big",
        "v1",
        &[b"\0asm\x01\0\0\0".as_slice(), &vec![0u8; 3 << 20]].concat(),
    )
    .await?;
    let bomb = artifacts::push_compat(&registry, "bad/bomb", &artifacts::tar_bomb(512)?).await?;
    let private = secured.image("plugins/private:v1");
    publish_as("noop", &private, Some((&secured.host(), "ci", "s3cret"))).await?;
    let _op = operator(&kube, &registry)
        .await?
        .insecure_registry(&secured.host())
        .insecure_registry(&dead)
        .args(["--max-module-bytes", "2Mi"])
        .start()
        .await?;
    kube.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "wrong-creds",
        "--docker-server",
        &secured.host(),
        "--docker-username",
        "ci",
        "--docker-password",
        "guess",
    ])
    .await?;
    let cases = [
        (
            "unreachable",
            format!("oci://{dead}/p:v1"),
            "",
            "Fetched",
            "RegistryUnreachable",
        ),
        (
            "unknown-tag",
            registry.image("plugins/headers:v9"),
            "",
            "Fetched",
            "ImageNotFound",
        ),
        (
            "pin",
            good.clone(),
            &*format!("  sha256: {}\n", &noop_pin[7..]),
            "Fetched",
            "DigestMismatch",
        ),
        ("not-wasm", not_wasm, "", "Validated", "NotWasm"),
        ("no-abi", no_abi, "", "Validated", "NoProxyWasmAbi"),
        ("too-large", big, "", "Fetched", "TooLarge"),
        ("tar-bomb", bomb, "", "Fetched", "TooLarge"),
        (
            "no-secret",
            private.clone(),
            "  imagePullSecret: missing\n",
            "Fetched",
            "PullSecretMissing",
        ),
        (
            "wrong-creds",
            private.clone(),
            "  imagePullSecret: wrong-creds\n",
            "Fetched",
            "Unauthorized",
        ),
    ];
    kube.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "right-creds",
        "--docker-server",
        &secured.host(),
        "--docker-username",
        "ci",
        "--docker-password",
        "s3cret",
    ])
    .await?;
    kube.apply_ok(&plugin(
        "right-creds",
        &private,
        "  imagePullSecret: right-creds\n",
    ))
    .await?;
    for (name, image, extra, _, _) in &cases {
        kube.apply_ok(&plugin(name, image, extra)).await?;
    }
    for (name, _, _, kind, reason) in &cases {
        let pp = wait_reason(&kube, name, kind, reason).await?;
        let ready = condition(&pp, "Ready").context("Ready condition")?;
        ensure!(ready["status"] == "False", "{name}: {ready:#}");
        let message = condition(&pp, kind)
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default();
        ensure!(!message.is_empty(), "{name}: {kind} has no message");
    }
    wait_reason(&kube, "right-creds", "Ready", "Offered").await?;
    let wide = kube.kubectl_ok(&["get", "pp", "-o", "wide"]).await?;
    ensure!(
        wide.contains("FetchFailed") && wide.contains("ValidationFailed"),
        "{wide}"
    );
    let events = kube.kubectl_ok(&["get", "events", "-o", "json"]).await?;
    ensure!(
        events.contains("NoProxyWasmAbi") && events.contains("Warning"),
        "{events}"
    );
    Ok(())
}

#[tokio::test]
async fn a_killed_operator_converges_after_restart() -> Result<()> {
    let (kube, registry) = setup("killed").await?;
    let image = registry.image("plugins/headers:v1");
    publish("header_modifier", &image).await?;
    let mut op = operator(&kube, &registry).await?.start().await?;
    let names: Vec<String> = (0..30).map(|i| format!("p{i:02}")).collect();
    let all: String = names
        .iter()
        .map(|n| format!("---\n{}", plugin(n, &image, "")))
        .collect();
    kube.apply_ok(&all).await?;
    // Kill it while the batch is in flight (some may be done, most are not).
    op.kill().await?;
    op.restart().await?;
    for name in &names {
        wait_reason(&kube, name, "Ready", "Offered").await?;
    }
    let pp = get_json(&kube, "pp").await?;
    let items = pp["items"].as_array().context("items")?;
    ensure!(items.len() == names.len());
    ensure!(
        items
            .iter()
            .all(|p| p["metadata"]["finalizers"][0] == "proxlet.dev/offered")
    );
    // One module for thirty plugins: a digest is pulled once (the cache survived the kill).
    let metrics = op.metrics().await?;
    ensure!(
        prom::sum(
            &metrics,
            "proxlet_operator_pulls_total",
            &[("result", "ok")]
        )? <= 1.0,
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn start_up_says_when_the_crd_is_missing_or_rbac_forbids() -> Result<()> {
    // A control plane without the CRD, and an operator whose RBAC would allow the list.
    let bare = Cluster::start().await?;
    bare.install_operator_role().await?;
    let ns = bare.namespace("bare").await?;
    let (status, log) = Operator::in_namespace(&ns)
        .await?
        .run_to_exit(Duration::from_secs(30))
        .await?;
    ensure!(!status.success(), "{log}");
    ensure!(
        log.contains("CRD (proxyplugins.proxlet.dev) is not installed")
            && log.contains("kubectl apply -f crds/"),
        "{log}"
    );

    // A service account bound to nothing: the real authorizer answers 403.
    let locked = Cluster::shared().await?.namespace("locked").await?;
    locked.service_account("nobody").await?;
    let token = locked
        .token("nobody", "https://kubernetes.default.svc.cluster.local")
        .await?;
    let kubeconfig = locked.dir().join("nobody.kubeconfig");
    locked.account_kubeconfig(&kubeconfig, &token)?;
    let (status, log) = Operator::builder(&kubeconfig, locked.name())
        .run_to_exit(Duration::from_secs(30))
        .await?;
    ensure!(!status.success(), "{log}");
    let expected = format!(
        "RBAC forbids the operator to list proxyplugins.proxlet.dev in namespace {}",
        locked.name()
    );
    ensure!(log.contains(&expected), "{log}");
    ensure!(
        log.contains("system:serviceaccount:"),
        "the API server's reason: {log}"
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() -> Result<()> {
    let (kube, registry) = setup("sigterm").await?;
    let mut op = operator(&kube, &registry).await?.start().await?;
    op.sigterm()?;
    let status = op.wait_exit(Duration::from_secs(20)).await?;
    ensure!(status.success(), "exit {status}: {}", op.log());
    Ok(())
}

#[tokio::test]
async fn with_two_replicas_one_leads_and_the_other_takes_over() -> Result<()> {
    let (kube, registry) = setup("replicas").await?;
    let image = registry.image("plugins/headers:v1");
    publish("header_modifier", &image).await?;
    let base = operator(&kube, &registry).await?;
    let elect = |id: &str| {
        base.clone()
            .args(["--leader-elect", "--lease-duration", "3s", "--identity", id])
    };
    let mut first = elect("replica-a").start().await?;
    kube.apply_ok(&plugin("one", &image, "")).await?;
    wait_reason(&kube, "one", "Ready", "Offered").await?;
    let _second = elect("replica-b").start().await?;
    let holder = || {
        kube.kubectl_ok(&[
            "get",
            "lease",
            "proxlet-operator",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
    };
    ensure!(holder().await? == "replica-a");

    // The leader dies without releasing the lease: the other replica takes over when it lapses.
    first.kill().await?;
    wait::until_true("replica-b to hold the lease", CONVERGE, || async {
        holder().await.is_ok_and(|h| h == "replica-b")
    })
    .await?;
    kube.apply_ok(&plugin("two", &image, "")).await?;
    wait_reason(&kube, "two", "Ready", "Offered").await?;
    Ok(())
}

#[tokio::test]
async fn the_operator_rides_out_a_paused_api_server() -> Result<()> {
    // A control plane of its own: pausing the shared one would stall every other test.
    let cluster = Cluster::start().await?;
    cluster.install_crds().await?;
    cluster.install_operator_role().await?;
    let kube = cluster.namespace("paused").await?;
    let registry = Registry::start().await?;
    let image = registry.image("plugins/headers:v1");
    publish("header_modifier", &image).await?;
    let op = operator(&kube, &registry).await?.start().await?;
    kube.apply_ok(&plugin("before", &image, "")).await?;
    wait_reason(&kube, "before", "Ready", "Offered").await?;

    // The API server stops answering (SIGSTOP) for longer than a request's timeout would allow.
    cluster.pause()?;
    let paused = tokio::time::Instant::now();
    while paused.elapsed() < Duration::from_secs(6) {
        let (status, _) = op.admin_get("/healthz").await?;
        ensure!(
            status == 200,
            "the operator's /healthz answered {status} while the API paused"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.resume()?;

    // Its watch recovers: a ProxyPlugin applied after the pause is reconciled.
    kube.apply_ok(&plugin("after", &image, "")).await?;
    wait_reason(&kube, "after", "Ready", "Offered").await?;
    Ok(())
}
