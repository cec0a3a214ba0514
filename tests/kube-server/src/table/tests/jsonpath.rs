use serde_json::{Value, json};

use crate::table::jsonpath::JsonPath;

fn find(path: &str, root: &Value) -> Vec<Value> {
    match JsonPath::parse(path) {
        Ok(p) => p.find(root).into_iter().cloned().collect(),
        Err(e) => vec![json!(format!("parse error: {e}"))],
    }
}

fn sample() -> Value {
    json!({
        "metadata": {"labels": {"app.kubernetes.io/name": "auth"}},
        "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}, {"port": 8080}]},
        "status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Synced", "status": "False"},
        ]},
    })
}

#[test]
fn fields_and_indices() {
    let root = sample();
    assert_eq!(find(".spec.ports[1].port", &root), [json!(443)]);
    assert_eq!(find("{.spec.ports[-1].port}", &root), [json!(8080)]);
    assert_eq!(find(".spec.ports[5].port", &root), Vec::<Value>::new());
    assert_eq!(find(".spec.missing.deeper", &root), Vec::<Value>::new());
    assert_eq!(
        find(".metadata.labels['app.kubernetes.io/name']", &root),
        [json!("auth")]
    );
    assert_eq!(find("$.spec.ports[0].name", &root), [json!("http")]);
}

#[test]
fn wildcards_and_slices() {
    let root = sample();
    assert_eq!(
        find(".spec.ports[*].port", &root),
        [json!(80), json!(443), json!(8080)]
    );
    assert_eq!(
        find(".spec.ports[*].name", &root),
        [json!("http"), json!("https")]
    );
    assert_eq!(
        find(".spec.ports[0:2].port", &root),
        [json!(80), json!(443)]
    );
    assert_eq!(
        find(".status.conditions[0].*", &root),
        [json!("True"), json!("Ready")]
    );
}

#[test]
fn filters() {
    let root = sample();
    assert_eq!(
        find(r#".status.conditions[?(@.type=="Ready")].status"#, &root),
        [json!("True")]
    );
    assert_eq!(
        find(".status.conditions[?(@.type != 'Ready')].type", &root),
        [json!("Synced")]
    );
    assert_eq!(
        find(".spec.ports[?(@.port>100)].port", &root),
        [json!(443), json!(8080)]
    );
    assert_eq!(
        find(".spec.ports[?(@.port==80)].name", &root),
        [json!("http")]
    );
    assert_eq!(
        find(".spec.ports[?(@.name)].port", &root),
        [json!(80), json!(443)]
    );
}

#[test]
fn malformed_paths_do_not_parse() {
    assert!(JsonPath::parse(".spec.ports[").is_err());
    assert!(JsonPath::parse(".spec..x").is_err());
    assert!(JsonPath::parse(".spec.ports[?(type==1)]").is_err());
    assert!(JsonPath::parse(".a.b").is_ok());
}
