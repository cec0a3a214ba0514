//! Server-side apply over raw HTTP: ownership, list-map merge of conditions, conflicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{PP, apply_path, plugin, with_crd};

#[tokio::test]
async fn server_side_apply_merges_conditions_and_reports_conflicts() {
    let s = with_crd(&[]).await;
    let ct = "application/apply-patch+yaml";
    let cfg = plugin("a", 3);
    let (code, created) = s
        .call(
            "PATCH",
            &apply_path("a", "", "op", false),
            ct,
            &cfg.to_string(),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["managedFields"][0]["manager"], "op");
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );

    let status = |types: &[(&str, &str)]| {
        let conds: Vec<Value> = types
            .iter()
            .map(|(t, st)| json!({"type": t, "status": st, "reason": "R"}))
            .collect();
        json!({"apiVersion": "proxlet.dev/v1alpha1", "kind": "ProxyPlugin", "metadata": {"name": "a"},
            "status": {"conditions": conds}})
    };
    let (code, _) = s
        .call(
            "PATCH",
            &apply_path("a", "/status", "fetcher", false),
            ct,
            &status(&[("Fetched", "True")]).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    let (code, both) = s
        .call(
            "PATCH",
            &apply_path("a", "/status", "readiness", false),
            ct,
            &status(&[("Ready", "False")]).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    let types: Vec<&str> = both["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Fetched", "Ready"], "conditions merge by type");
    let status_entry = both["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "readiness")
        .unwrap();
    assert_eq!(status_entry["subresource"], "status");
    assert!(
        status_entry["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"Ready\"}"].is_object()
    );

    let (code, _) = s
        .call(
            "PATCH",
            &apply_path("a", "/status", "readiness", false),
            ct,
            &status(&[]).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    let (_, dropped) = s.get(&format!("{PP}/a")).await;
    let types: Vec<&str> = dropped["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Fetched"],
        "a condition its manager stopped applying is removed"
    );

    let mut clash = plugin("a", 7);
    clash["metadata"] = json!({"name": "a"});
    let (code, conflict) = s
        .call(
            "PATCH",
            &apply_path("a", "", "other", false),
            ct,
            &clash.to_string(),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"], "Apply failed with 1 conflict: conflict with \"op\": .spec.priority",
        "the same image is shared, the different priority conflicts"
    );
    assert_eq!(conflict["details"]["causes"][0]["field"], ".spec.priority");
    assert_eq!(
        conflict["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    let (code, forced) = s
        .call(
            "PATCH",
            &apply_path("a", "", "other", true),
            ct,
            &clash.to_string(),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(forced["spec"]["priority"], 7);
}
