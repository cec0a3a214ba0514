//! The create-only APIs that answer rather than store: TokenRequest (the `token` subresource of
//! a service account), TokenReview and SelfSubjectAccessReview.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::{Call, Reply, parse_body};
use crate::app::State;
use crate::auth::{Attributes, ForbidRule, ISSUER, Minted, token_lifetime};
use crate::status::{ApiError, Cause, Target};

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn check_expiration(requested: Option<u64>, sa: &str) -> Result<(), ApiError> {
    match requested {
        Some(secs) if secs < 600 => Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            sa,
            vec![Cause {
                reason: "FieldValueInvalid".to_string(),
                message: format!(
                    "Invalid value: {secs}: may not specify a duration less than 10 minutes"
                ),
                field: "spec.expirationSeconds".to_string(),
            }],
        )),
        _ => Ok(()),
    }
}

/// The pod a token is bound to (`boundObjectRef` of kind Pod): its name and uid.
fn bound_pod(state: &State, ns: &str, r: &Value) -> Result<Option<(String, String)>, ApiError> {
    if r["kind"].as_str() != Some("Pod") {
        return Ok(None);
    }
    let name = r["name"].as_str().unwrap_or_default();
    let pod = state.store.get("pods", ns, name).ok_or_else(|| {
        ApiError::not_found(Target {
            group: "",
            resource: "pods",
            name,
        })
    })?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    Ok(Some((name.to_string(), uid.to_string())))
}

pub fn token_request(
    state: &mut State,
    call: &Call,
    ns: &str,
    sa: &str,
) -> Result<Reply, ApiError> {
    let body = parse_body(call)?;
    let account = state.store.get("serviceaccounts", ns, sa).ok_or_else(|| {
        ApiError::not_found(Target {
            group: "",
            resource: "serviceaccounts",
            name: sa,
        })
    })?;
    let spec = &body["spec"];
    let requested = spec["expirationSeconds"].as_u64();
    check_expiration(requested, sa)?;
    let mut audiences = strings(&spec["audiences"]);
    if audiences.is_empty() {
        audiences.push(ISSUER.to_string());
    }
    let pod = bound_pod(state, ns, &spec["boundObjectRef"])?;
    let lifetime = token_lifetime(requested);
    let (token, expires) = state.tokens.mint(Minted {
        namespace: ns.to_string(),
        service_account: sa.to_string(),
        sa_uid: account["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        audiences: audiences.clone(),
        expires: SystemTime::now() + lifetime,
        pod,
    });
    let mut out_spec = spec.clone();
    out_spec["audiences"] = json!(audiences);
    out_spec["expirationSeconds"] = json!(lifetime.as_secs());
    Ok(Reply::json(
        201,
        json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": sa, "namespace": ns, "creationTimestamp": null},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
        }),
    ))
}

fn review(body: &Value, status: Value) -> Reply {
    let mut r = json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": body["spec"],
    });
    r["status"] = status;
    Reply::json(201, r)
}

pub fn token_review(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let body = parse_body(call)?;
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let mut wanted = strings(&body["spec"]["audiences"]);
    if wanted.is_empty() {
        wanted.push(ISSUER.to_string());
    }
    let denied = |why: &str| {
        review(
            &body,
            json!({"authenticated": false, "user": {}, "error": why}),
        )
    };
    if state
        .tokens
        .authenticate(token)
        .is_some_and(|u| u.uid.is_empty())
    {
        let user = crate::auth::Tokens::admin_user();
        return Ok(review(
            &body,
            json!({"authenticated": true, "user": user.to_json(), "audiences": wanted}),
        ));
    }
    let Some(m) = state.tokens.minted(token) else {
        return Ok(denied(
            "[invalid bearer token, token is not valid or has expired]",
        ));
    };
    let common: Vec<&String> = wanted.iter().filter(|a| m.audiences.contains(a)).collect();
    if common.is_empty() {
        return Ok(denied(&format!(
            "[invalid bearer token, token audiences {:?} is invalid for the target audiences {:?}]",
            m.audiences, wanted
        )));
    }
    let sa = state
        .store
        .get("serviceaccounts", &m.namespace, &m.service_account);
    if sa.is_none_or(|s| s["metadata"]["uid"].as_str() != Some(m.sa_uid.as_str())) {
        return Ok(denied(&format!(
            "[invalid bearer token, service account {}/{} has been deleted]",
            m.namespace, m.service_account
        )));
    }
    if let Some((pod, uid)) = &m.pod {
        let live = state.store.get("pods", &m.namespace, pod);
        if live.is_none_or(|p| p["metadata"]["uid"].as_str() != Some(uid.as_str())) {
            return Ok(denied(&format!(
                "[invalid bearer token, pod {}/{pod} has been deleted]",
                m.namespace
            )));
        }
    }
    Ok(review(
        &body,
        json!({"authenticated": true, "user": m.user().to_json(), "audiences": common}),
    ))
}

pub fn access_review(call: &Call, forbid: &[ForbidRule]) -> Reply {
    let body = parse_body(call).unwrap_or_default();
    let ra = &body["spec"]["resourceAttributes"];
    let s = |k: &str| ra[k].as_str().filter(|v| !v.is_empty());
    let attrs = Attributes {
        verb: s("verb").unwrap_or_default(),
        group: s("group").unwrap_or_default(),
        resource: s("resource").unwrap_or_default(),
        sub: s("subresource"),
        namespace: s("namespace"),
        name: s("name"),
    };
    let denied = forbid.iter().any(|r| r.matches(&attrs));
    let status = if denied {
        json!({"allowed": false, "denied": true, "reason": "forbidden by --forbid"})
    } else {
        json!({"allowed": true})
    };
    Reply::json(
        201,
        json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": body["spec"],
            "status": status,
        }),
    )
}
