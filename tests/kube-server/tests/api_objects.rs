//! Objects over raw HTTP: discovery, Status errors, conflicts, generation, the status
//! subresource, patches, selectors and pagination, finalizers, schema validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{PP, plugin, rv, with_crd};

#[tokio::test]
async fn crds_appear_in_discovery_with_short_names() {
    let s = with_crd(&[]).await;
    let (code, list) = s.get("/apis/proxlet.dev/v1alpha1").await;
    assert_eq!(code, 200);
    let pp = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "proxyplugins")
        .unwrap();
    assert_eq!(pp["shortNames"], json!(["pp"]));
    assert_eq!(pp["namespaced"], true);
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "proxyplugins/status")
    );
    let resp = s.send_as(support::TOKEN, "GET", "/apis", "", "").await;
    assert_eq!(resp.status(), 200);
    let (code, groups) = s.get("/apis").await;
    assert_eq!(code, 200);
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "proxlet.dev")
    );
}

#[tokio::test]
async fn errors_are_status_objects_with_details() {
    let s = with_crd(&[]).await;
    let (code, missing) = s.get(&format!("{PP}/nope")).await;
    assert_eq!(code, 404);
    assert_eq!(missing["kind"], "Status");
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(
        missing["message"],
        "proxyplugins.proxlet.dev \"nope\" not found"
    );
    assert_eq!(
        missing["details"],
        json!({"name": "nope", "group": "proxlet.dev", "kind": "proxyplugins"})
    );
    assert_eq!(s.post(PP, &plugin("a", 1)).await.0, 201);
    let (code, exists) = s.post(PP, &plugin("a", 1)).await;
    assert_eq!(
        (code, exists["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let resp = s.send_as("wrong-token", "GET", PP, "", "").await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn stale_updates_conflict_and_generation_follows_spec_only() {
    let s = with_crd(&[]).await;
    let (_, created) = s.post(PP, &plugin("a", 1)).await;
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );

    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["extra"] = json!("x");
    let (code, after_labels) = s
        .call(
            "PUT",
            &format!("{PP}/a"),
            "application/json",
            &labelled.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{after_labels}");
    assert_eq!(
        after_labels["metadata"]["generation"], 1,
        "labels do not bump generation"
    );
    assert!(rv(&after_labels) > rv(&created));

    let mut stale = created.clone();
    stale["spec"]["priority"] = json!(5);
    let (code, conflict) = s
        .call(
            "PUT",
            &format!("{PP}/a"),
            "application/json",
            &stale.to_string(),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Operation cannot be fulfilled on proxyplugins.proxlet.dev \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let mut fresh = after_labels.clone();
    fresh["spec"]["priority"] = json!(5);
    let (_, bumped) = s
        .call(
            "PUT",
            &format!("{PP}/a"),
            "application/json",
            &fresh.to_string(),
        )
        .await;
    assert_eq!(bumped["metadata"]["generation"], 2);
}

#[tokio::test]
async fn status_subresource_is_isolated() {
    let s = with_crd(&[]).await;
    let mut p = plugin("a", 1);
    p["status"] = json!({"digest": "ignored-on-create"});
    let (_, created) = s.post(PP, &p).await;
    assert!(
        created["status"].is_null(),
        "status is dropped on create: {created}"
    );

    let patch = json!({"spec": {"priority": 9}, "status": {"digest": "sha256:abc"}});
    let (code, st) = s
        .call(
            "PATCH",
            &format!("{PP}/a/status"),
            "application/merge-patch+json",
            &patch.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["status"]["digest"], "sha256:abc");
    assert_eq!(st["spec"]["priority"], 1, "status writes leave spec alone");
    assert_eq!(
        st["metadata"]["generation"], 1,
        "status writes do not bump generation"
    );
    assert!(rv(&st) > rv(&created));

    let (_, main) = s
        .call(
            "PATCH",
            &format!("{PP}/a"),
            "application/merge-patch+json",
            &patch.to_string(),
        )
        .await;
    assert_eq!(main["spec"]["priority"], 9);
    assert_eq!(
        main["status"]["digest"], "sha256:abc",
        "main writes leave status alone"
    );
    assert_eq!(main["metadata"]["generation"], 2);
}

#[tokio::test]
async fn json_patch_applies_and_a_failed_test_op_is_rejected() {
    let s = with_crd(&[]).await;
    s.post(PP, &plugin("a", 1)).await;
    let ops = json!([
        {"op": "test", "path": "/spec/priority", "value": 1},
        {"op": "replace", "path": "/spec/priority", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"}
    ]);
    let (code, patched) = s
        .call(
            "PATCH",
            &format!("{PP}/a"),
            "application/json-patch+json",
            &ops.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["spec"]["priority"], 2);
    assert_eq!(patched["metadata"]["labels"]["tier"], "front");
    let (code, failed) = s
        .call(
            "PATCH",
            &format!("{PP}/a"),
            "application/json-patch+json",
            &ops.to_string(),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        failed["message"],
        "testing value /spec/priority failed: test failed"
    );
    let (_, unchanged) = s.get(&format!("{PP}/a")).await;
    assert_eq!(unchanged["spec"]["priority"], 2);
}

#[tokio::test]
async fn label_selectors_and_pagination() {
    let s = with_crd(&[]).await;
    for (name, team) in [("a", "edge"), ("b", "core"), ("c", "edge"), ("d", "data")] {
        let mut p = plugin(name, 1);
        p["metadata"]["labels"] = json!({"team": team});
        s.post(PP, &p).await;
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, edge) = s.get(&format!("{PP}?labelSelector=team%3Dedge")).await;
    assert_eq!(names(&edge), ["a", "c"]);
    let (_, not_edge) = s.get(&format!("{PP}?labelSelector=team!%3Dedge")).await;
    assert_eq!(names(&not_edge), ["b", "d"]);
    let (_, set) = s
        .get(&format!("{PP}?labelSelector=team+in+(core,data)"))
        .await;
    assert_eq!(names(&set), ["b", "d"]);
    let (_, notin) = s
        .get(&format!("{PP}?labelSelector=team+notin+(core,data)"))
        .await;
    assert_eq!(names(&notin), ["a", "c"]);
    let (_, none) = s.get(&format!("{PP}?labelSelector=!team")).await;
    assert!(names(&none).is_empty());
    let (_, by_name) = s
        .get(&format!("{PP}?fieldSelector=metadata.name%3Db"))
        .await;
    assert_eq!(names(&by_name), ["b"]);

    let (_, page1) = s.get(&format!("{PP}?limit=3")).await;
    assert_eq!(names(&page1), ["a", "b", "c"]);
    let token = page1["metadata"]["continue"].as_str().unwrap();
    let (_, page2) = s.get(&format!("{PP}?limit=3&continue={token}")).await;
    assert_eq!(names(&page2), ["d"]);
    assert!(page2["metadata"]["continue"].is_null());
    let (_, all) = s.get("/apis/proxlet.dev/v1alpha1/proxyplugins").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let s = with_crd(&[]).await;
    let mut p = plugin("a", 1);
    p["metadata"]["finalizers"] = json!(["proxlet.dev/cleanup"]);
    let (_, created) = s.post(PP, &p).await;
    let mut w = s
        .watch(&format!("{PP}?watch=true&resourceVersion={}", rv(&created)))
        .await;
    let (code, deleting) = s
        .call("DELETE", &format!("{PP}/a"), "application/json", "")
        .await;
    assert_eq!(code, 200);
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        w.next_summary().await,
        Some(("MODIFIED".into(), "a".into()))
    );

    let more = json!({"metadata": {"finalizers": ["proxlet.dev/cleanup", "other"]}});
    let (code, refused) = s
        .call(
            "PATCH",
            &format!("{PP}/a"),
            "application/merge-patch+json",
            &more.to_string(),
        )
        .await;
    assert_eq!(code, 422);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no new finalizers can be added if the object is being deleted")
    );

    let none = json!({"metadata": {"finalizers": null}});
    let (code, _) = s
        .call(
            "PATCH",
            &format!("{PP}/a"),
            "application/merge-patch+json",
            &none.to_string(),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        w.next_summary().await,
        Some(("MODIFIED".into(), "a".into()))
    );
    assert_eq!(w.next_summary().await, Some(("DELETED".into(), "a".into())));
    assert_eq!(s.get(&format!("{PP}/a")).await.0, 404);

    let (code, dry) = s
        .call(
            "POST",
            &format!("{PP}?dryRun=All"),
            "application/json",
            &plugin("dry", 1).to_string(),
        )
        .await;
    assert_eq!((code, dry["metadata"]["name"].as_str()), (201, Some("dry")));
    assert_eq!(
        s.get(&format!("{PP}/dry")).await.0,
        404,
        "dry run must not persist"
    );
}

#[tokio::test]
async fn invalid_custom_resources_name_the_field() {
    let s = with_crd(&[]).await;
    let mut bad = plugin("bad", 1);
    bad["spec"]["priority"] = json!("high");
    let (code, err) = s.post(PP, &bad).await;
    assert_eq!(code, 422, "{err}");
    assert_eq!(err["reason"], "Invalid");
    assert_eq!(err["details"]["kind"], "ProxyPlugin");
    assert_eq!(err["details"]["causes"][0]["field"], "spec.priority");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with("ProxyPlugin.proxlet.dev \"bad\" is invalid: [spec.priority: Invalid value: \"string\": spec.priority in body must be of type integer"),
        "{message}"
    );

    let mut unknown = plugin("u", 1);
    unknown["spec"]["colour"] = json!("red");
    let (code, strict) = s
        .call(
            "POST",
            &format!("{PP}?fieldValidation=Strict"),
            "application/json",
            &unknown.to_string(),
        )
        .await;
    assert_eq!(code, 400, "{strict}");
    assert!(
        strict["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.colour\"")
    );
    let (code, pruned) = s.post(PP, &unknown).await;
    assert_eq!(code, 201);
    assert!(
        pruned["spec"]["colour"].is_null(),
        "unknown fields are pruned"
    );
    assert_eq!(
        pruned["spec"]["failurePolicy"], "FailClosed",
        "defaults are applied"
    );
}

#[tokio::test]
async fn delete_collection_by_label() {
    let s = with_crd(&[]).await;
    for (name, team) in [("a", "edge"), ("b", "core"), ("c", "edge")] {
        let mut p = plugin(name, 1);
        p["metadata"]["labels"] = json!({ "team": team });
        s.post(PP, &p).await;
    }
    let (code, deleted) = s
        .call(
            "DELETE",
            &format!("{PP}?labelSelector=team%3Dedge"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["items"].as_array().map(Vec::len), Some(2));
    let (_, left) = s.get(PP).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
}
