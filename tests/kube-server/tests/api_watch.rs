//! Watches over raw HTTP: replay from a resourceVersion, 410 Expired, streaming lists, selectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{PP, plugin, rv, with_crd};

#[tokio::test]
async fn watches_replay_from_a_version_and_expire() {
    let s = with_crd(&["--watch-history", "4"]).await;
    let (_, a) = s.post(PP, &plugin("a", 1)).await;
    let mut w = s
        .watch(&format!("{PP}?watch=true&resourceVersion={}", rv(&a)))
        .await;
    let mut mod_a = a.clone();
    mod_a["spec"]["priority"] = json!(2);
    s.call(
        "PUT",
        &format!("{PP}/a"),
        "application/json",
        &mod_a.to_string(),
    )
    .await;
    s.post(PP, &plugin("b", 1)).await;
    s.call("DELETE", &format!("{PP}/b"), "application/json", "")
        .await;
    assert_eq!(
        w.next_summary().await,
        Some(("MODIFIED".into(), "a".into()))
    );
    assert_eq!(w.next_summary().await, Some(("ADDED".into(), "b".into())));
    assert_eq!(w.next_summary().await, Some(("DELETED".into(), "b".into())));

    let mut from_scratch = s.watch(&format!("{PP}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")).await;
    assert_eq!(
        from_scratch.next_summary().await,
        Some(("ADDED".into(), "a".into()))
    );
    let end = from_scratch.next().await.unwrap();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    for i in 0..5 {
        s.post(PP, &plugin(&format!("x{i}"), 1)).await;
    }
    let mut old = s
        .watch(&format!("{PP}?watch=true&resourceVersion={}", rv(&a)))
        .await;
    let err = old.next().await.unwrap();
    assert_eq!(err["type"], "ERROR");
    assert_eq!(err["object"]["code"], 410);
    assert_eq!(err["object"]["reason"], "Expired");
}

#[tokio::test]
async fn watch_sees_objects_leave_a_selector() {
    let s = with_crd(&[]).await;
    s.post(PP, &plugin("a", 1)).await;
    let mut w = s
        .watch(&format!("{PP}?watch=1&labelSelector=team%3Dedge"))
        .await;
    assert_eq!(w.next_summary().await, Some(("ADDED".into(), "a".into())));
    let patch = json!({"metadata": {"labels": {"team": "core"}}});
    s.call(
        "PATCH",
        &format!("{PP}/a"),
        "application/merge-patch+json",
        &patch.to_string(),
    )
    .await;
    assert_eq!(w.next_summary().await, Some(("DELETED".into(), "a".into())));
}

#[tokio::test]
async fn exact_lists_of_forgotten_versions_are_gone_and_watches_time_out() {
    let s = with_crd(&["--watch-history", "2"]).await;
    let (_, a) = s.post(PP, &plugin("a", 1)).await;
    for name in ["b", "c", "d"] {
        s.post(PP, &plugin(name, 1)).await;
    }
    let path = format!("{PP}?resourceVersion={}&resourceVersionMatch=Exact", rv(&a));
    let (code, gone) = s.get(&path).await;
    assert_eq!((code, gone["reason"].as_str()), (410, Some("Expired")));

    let mut w = s.watch(&format!("{PP}?watch=true&timeoutSeconds=1")).await;
    let mut added = 0;
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "ADDED");
        added += 1;
    }
    assert_eq!(added, 4, "the current objects");
    assert!(w.ended, "the stream ends on its timeout");
}
