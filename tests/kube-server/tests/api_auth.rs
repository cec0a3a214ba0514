//! Tokens and refusals: TokenRequest, TokenReview, `--forbid`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::Server;

#[tokio::test]
async fn token_request_and_token_review() {
    let s = Server::start(&[]);
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sidecar"}});
    assert_eq!(
        s.post("/api/v1/namespaces/default/serviceaccounts", &sa)
            .await
            .0,
        201
    );
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["proxlet"], "expirationSeconds": 3600}});
    let (code, minted) = s
        .post(
            "/api/v1/namespaces/default/serviceaccounts/sidecar/token",
            &req,
        )
        .await;
    assert_eq!(code, 201, "{minted}");
    let token = minted["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT-shaped token");

    let review = |token: &str, aud: &[&str]| {
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": aud}})
    };
    let (code, ok) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(&token, &["proxlet"]),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(ok["status"]["authenticated"], true);
    assert_eq!(
        ok["status"]["user"]["username"],
        "system:serviceaccount:default:sidecar"
    );
    assert!(
        ok["status"]["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:serviceaccounts:default"))
    );
    let (_, wrong_aud) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review(&token, &["other"]),
        )
        .await;
    assert_eq!(wrong_aud["status"]["authenticated"], false);
    let (_, unknown) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &review("garbage", &[]),
        )
        .await;
    assert_eq!(unknown["status"]["authenticated"], false);

    let (code, _) = s.get("/api/v1/namespaces/default/serviceaccounts").await;
    assert_eq!(code, 200);
    let resp = s
        .send_as(
            &token,
            "GET",
            "/api/v1/namespaces/default/configmaps",
            "",
            "",
        )
        .await;
    assert_eq!(resp.status(), 200, "minted tokens authenticate API calls");
    let (code, _) = s
        .post(
            "/api/v1/namespaces/default/serviceaccounts/ghost/token",
            &req,
        )
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn forbid_rules_answer_403_like_rbac() {
    let s = Server::start(&[
        "--forbid",
        "create:secrets",
        "--forbid",
        "patch:proxyplugins/status",
    ]);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"},
        "stringData": {"k": "v"}});
    let (code, err) = s.post("/api/v1/namespaces/default/secrets", &secret).await;
    assert_eq!(code, 403);
    assert_eq!(err["reason"], "Forbidden");
    assert_eq!(
        err["message"],
        "secrets is forbidden: User \"proxlet-test-admin\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(
        s.get("/api/v1/namespaces/default/secrets").await.0,
        200,
        "other verbs are allowed"
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    assert_eq!(
        s.post("/api/v1/namespaces/default/configmaps", &cm).await.0,
        201
    );
}
