//! The server driven by the real kubectl, the way a user would drive a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Server, fixture};

fn install_crd(s: &Server) {
    let out = s.kubectl(&["apply", "-f", &fixture("proxyplugin-crd.yaml")]);
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/proxyplugins.proxlet.dev created"
    );
    s.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/proxyplugins.proxlet.dev",
        "--timeout=10s",
    ]);
}

/// The row of `kubectl get` output whose first cell is `name`, split into cells.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[test]
fn a_custom_resource_through_its_life() {
    let s = Server::start(&[]);
    install_crd(&s);
    let out = s.kubectl(&["apply", "-f", &fixture("plugin.yaml")]);
    assert_eq!(out.trim(), "proxyplugin.proxlet.dev/auth created");

    let table = s.kubectl(&["get", "pp"]);
    let header = row(&table, "NAME");
    assert_eq!(
        header,
        ["NAME", "READY", "DIGEST", "PRIORITY", "AGE"],
        "{table}"
    );
    assert_eq!(
        row(&table, "auth")[1],
        "10",
        "no status yet: READY and DIGEST are empty\n{table}"
    );

    let yaml = s.kubectl(&["get", "pp", "auth", "-o", "yaml"]);
    assert!(
        yaml.contains("image: oci://registry.local/plugins/auth:1.0"),
        "{yaml}"
    );
    assert!(yaml.contains("generation: 1"), "{yaml}");
    assert!(
        yaml.contains("failurePolicy: FailClosed"),
        "the schema default is applied\n{yaml}"
    );

    let status = r#"{"status":{"digest":"sha256:0f","conditions":[{"type":"Ready","status":"True","reason":"Loaded"}]}}"#;
    s.kubectl(&[
        "patch",
        "pp",
        "auth",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    let met = s.kubectl(&["wait", "--for=condition=Ready", "pp/auth", "--timeout=10s"]);
    assert_eq!(met.trim(), "proxyplugin.proxlet.dev/auth condition met");
    let table = s.kubectl(&["get", "pp"]);
    assert_eq!(
        row(&table, "auth")[1..4],
        ["True", "sha256:0f", "10"],
        "{table}"
    );

    let out = s.kubectl(&["apply", "-f", &fixture("plugin-v2.yaml")]);
    assert_eq!(out.trim(), "proxyplugin.proxlet.dev/auth configured");
    let out = s.kubectl(&["apply", "-f", &fixture("plugin-v2.yaml")]);
    assert_eq!(out.trim(), "proxyplugin.proxlet.dev/auth unchanged");
    let summary = s.kubectl(&[
        "get",
        "pp",
        "auth",
        "-o",
        "jsonpath={.metadata.generation} {.spec.priority} {.status.digest}",
    ]);
    assert_eq!(
        summary, "2 20 sha256:0f",
        "spec changes bump generation; status is kept"
    );

    s.kubectl(&[
        "patch",
        "pp",
        "auth",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["proxlet.dev/cleanup"]}}"#,
    ]);
    let out = s.kubectl(&["delete", "pp", "auth", "--wait=false"]);
    assert_eq!(out.trim(), "proxyplugin.proxlet.dev \"auth\" deleted");
    let ts = s.kubectl(&[
        "get",
        "pp",
        "auth",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!ts.is_empty(), "held by its finalizer");
    s.kubectl(&[
        "patch",
        "pp",
        "auth",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let err = s.kubectl_err(&["get", "pp", "auth"], None);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): proxyplugins.proxlet.dev \"auth\" not found"
    );
}

#[test]
fn server_side_apply_with_kubectl() {
    let s = Server::start(&[]);
    install_crd(&s);
    s.kubectl(&["apply", "-f", &fixture("plugin.yaml")]);
    // Moving from client-side to server-side apply with changed values does not conflict
    // with kubectl's own client-side apply.
    let out = s.kubectl(&["apply", "--server-side", "-f", &fixture("plugin-v2.yaml")]);
    assert_eq!(
        out.trim(),
        "proxyplugin.proxlet.dev/auth serverside-applied"
    );
    let managers = s.kubectl(&[
        "get",
        "pp",
        "auth",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager} {.spec.priority}",
    ]);
    assert_eq!(managers, "kubectl kubectl-last-applied 20");

    let err = s.kubectl_err(
        &[
            "apply",
            "--server-side",
            "--field-manager=rival",
            "-f",
            &fixture("plugin.yaml"),
        ],
        None,
    );
    assert!(
        err.contains("Apply failed with 2 conflicts: conflicts with \"kubectl\":"),
        "{err}"
    );
    assert!(
        err.contains("- .spec.image") && err.contains("- .spec.priority"),
        "{err}"
    );

    let out = s.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=rival",
        "--force-conflicts",
        "-f",
        &fixture("plugin.yaml"),
    ]);
    assert_eq!(
        out.trim(),
        "proxyplugin.proxlet.dev/auth serverside-applied"
    );
    let prio = s.kubectl(&["get", "pp", "auth", "-o", "jsonpath={.spec.priority}"]);
    assert_eq!(prio, "10");
}

#[test]
fn schema_errors_reach_the_user() {
    let s = Server::start(&[]);
    install_crd(&s);
    let bad = "apiVersion: proxlet.dev/v1alpha1\nkind: ProxyPlugin\nmetadata:\n  name: bad\nspec:\n  image: oci://r/p:1\n  priority: high\n";
    let err = s.kubectl_err(&["apply", "-f", "-"], Some(bad));
    assert!(err.contains("The ProxyPlugin \"bad\" is invalid:"), "{err}");
    assert!(
        err.contains("* spec.priority: Invalid value: \"string\": spec.priority in body must be of type integer: \"string\""),
        "{err}"
    );
    let pinned = "apiVersion: proxlet.dev/v1alpha1\nkind: ProxyPlugin\nmetadata:\n  name: pinned\nspec:\n  image: https://example.com/p.wasm\n  sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
    let err = s.kubectl_err(&["apply", "-f", "-"], Some(pinned));
    assert!(
        err.contains("a sha256 pin needs an oci:// image"),
        "the CEL rule's message: {err}"
    );
    let unknown = "apiVersion: proxlet.dev/v1alpha1\nkind: ProxyPlugin\nmetadata:\n  name: odd\nspec:\n  image: oci://r/p:1\n  colour: red\n";
    let err = s.kubectl_err(&["apply", "-f", "-"], Some(unknown));
    assert!(
        err.contains("strict decoding error: unknown field \"spec.colour\""),
        "{err}"
    );
}

#[test]
fn built_in_resources_and_rbac_errors() {
    let s = Server::start(&["--forbid", "create:secrets"]);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let out = s.kubectl_output(&["apply", "-f", "-"], Some(cm));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n  c: \"3\"\n";
    let out = s.kubectl_output(&["apply", "-f", "-"], Some(cm2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/settings configured"
    );
    let data = s.kubectl(&["get", "cm", "settings", "-o", "jsonpath={.data}"]);
    assert_eq!(
        data, r#"{"a":"1","c":"3"}"#,
        "a key dropped from the applied file is removed"
    );

    let nss = s.kubectl(&["get", "namespaces"]);
    assert!(
        nss.contains("default") && nss.contains("kube-system"),
        "{nss}"
    );

    let err = s.kubectl_err(
        &["create", "secret", "generic", "pull", "--from-literal=k=v"],
        None,
    );
    assert_eq!(
        err.trim(),
        "error: failed to create secret secrets is forbidden: User \"proxlet-test-admin\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
}

#[test]
fn imperative_commands_events_and_namespaces() {
    let s = Server::start(&[]);
    assert_eq!(
        s.kubectl(&["create", "namespace", "demo"]).trim(),
        "namespace/demo created"
    );
    s.kubectl(&[
        "-n",
        "demo",
        "create",
        "configmap",
        "plugins",
        "--from-literal=a=1",
    ]);
    let data = s.kubectl(&[
        "-n",
        "demo",
        "get",
        "cm",
        "plugins",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(data, "1");
    let token = s.kubectl(&[
        "-n",
        "demo",
        "create",
        "token",
        "default",
        "--audience=proxlet",
    ]);
    assert_eq!(token.trim().split('.').count(), 3, "{token}");

    let uid = s.kubectl(&[
        "-n",
        "demo",
        "get",
        "cm",
        "plugins",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let event = "apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: plugins.1
  namespace: demo
eventTime: \"2026-01-01T00:00:00.000000Z\"
reportingController: proxlet.dev/operator
reportingInstance: operator-0
action: Publish
reason: Published
type: Normal
note: plugin set published
regarding:
  apiVersion: v1
  kind: ConfigMap
  name: plugins
  namespace: demo
  uid: UID
"
    .replace("UID", &uid);
    let out = s.kubectl_output(&["apply", "-f", "-"], Some(&event));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core = s.kubectl(&[
        "-n",
        "demo",
        "get",
        "events",
        "-o",
        "jsonpath={.items[0].message} {.items[0].involvedObject.name}",
    ]);
    assert_eq!(
        core, "plugin set published plugins",
        "events.k8s.io events are core events too"
    );
    let described = s.kubectl(&["-n", "demo", "describe", "configmap", "plugins"]);
    assert!(
        described.contains("Published") && described.contains("plugin set published"),
        "{described}"
    );

    assert_eq!(
        s.kubectl(&["delete", "namespace", "demo"]).trim(),
        "namespace \"demo\" deleted"
    );
    let err = s.kubectl_err(&["get", "namespace", "demo"], None);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): namespaces \"demo\" not found"
    );
}
