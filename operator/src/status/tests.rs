use std::time::Duration;

use proxlet_crds::{ArtifactFormat, Digest};
use proxlet_engine::AbiVersion;

use super::*;
use crate::pipeline::Transfer;

fn resolved(digest: &str, pulled: bool) -> Resolved {
    Resolved {
        digest: digest.parse().unwrap_or_else(|e| panic!("{e}")),
        size: 1234,
        format: ArtifactFormat::Cncf,
        abi: AbiVersion::V0_2_1,
        compiled: None,
        pulled,
        manifest_digest: None,
        transfer: Some(Transfer {
            bytes: 1234,
            duration: Duration::from_millis(3),
        }),
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn get<'a>(s: &'a ProxyPluginStatus, kind: &str) -> &'a Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap_or_else(|| panic!("no {kind} condition"))
}

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

#[test]
fn ready_sets_digest_and_three_true_conditions() {
    let r = resolved(D1, true);
    let s = next_status(None, Some(3), &Outcome::Ready(&r), at(100));
    assert_eq!(s.digest.as_ref().map(Digest::as_str), Some(D1));
    assert_eq!(s.short_digest.as_deref(), Some("111111111111"));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.abi.as_deref(), Some("0.2.1"));
    for (kind, reason) in [
        ("Fetched", "Pulled"),
        ("Validated", "Valid"),
        ("Ready", "Offered"),
    ] {
        let c = get(&s, kind);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", reason),
            "{kind}"
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time.0, at(100));
    }
}

#[test]
fn transition_time_moves_only_when_status_flips() {
    let first = next_status(None, Some(1), &Outcome::Ready(&resolved(D1, true)), at(100));
    // Same statuses later, another digest: times stay.
    let again = next_status(
        Some(&first),
        Some(2),
        &Outcome::Ready(&resolved(D2, false)),
        at(200),
    );
    assert_eq!(get(&again, "Ready").last_transition_time.0, at(100));
    assert_eq!(get(&again, "Fetched").reason, "Cached");
    assert_eq!(again.digest.as_ref().map(Digest::as_str), Some(D2));
    // A fetch failure flips Fetched only; Ready stays True on the digest in force.
    let err = PipelineError::ImageNotFound {
        image: "oci://r/x:v2".into(),
        detail: "manifest unknown".into(),
    };
    let failed = next_status(Some(&again), Some(3), &Outcome::Failed(&err), at(300));
    let fetched = get(&failed, "Fetched");
    assert_eq!(
        (fetched.status.as_str(), fetched.reason.as_str()),
        ("False", "ImageNotFound")
    );
    assert_eq!(fetched.last_transition_time.0, at(300));
    assert!(
        fetched.message.contains("stays in force"),
        "{}",
        fetched.message
    );
    let ready = get(&failed, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "StaleDigest")
    );
    assert_eq!(ready.last_transition_time.0, at(100));
    assert_eq!(failed.digest.as_ref().map(Digest::as_str), Some(D2));
}

#[test]
fn first_failure_is_not_ready() {
    let err = PipelineError::RegistryUnreachable {
        registry: "127.0.0.1:1".into(),
        detail: "connection refused".into(),
    };
    let s = next_status(None, Some(1), &Outcome::Failed(&err), at(10));
    assert_eq!(get(&s, "Fetched").reason, "RegistryUnreachable");
    assert_eq!(get(&s, "Validated").status, "Unknown");
    let ready = get(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "FetchFailed")
    );
    assert!(s.digest.is_none());
}

#[test]
fn validation_failure_names_the_reason() {
    let err = PipelineError::NoProxyWasmAbi {
        detail: "exports neither proxy_abi_version_0_2_1 nor proxy_abi_version_0_2_0".into(),
    };
    let s = next_status(None, Some(1), &Outcome::Failed(&err), at(10));
    assert_eq!(get(&s, "Fetched").status, "True");
    let v = get(&s, "Validated");
    assert_eq!(
        (v.status.as_str(), v.reason.as_str()),
        ("False", "NoProxyWasmAbi")
    );
    assert!(
        v.message.contains("proxy_abi_version_0_2_1"),
        "{}",
        v.message
    );
    assert_eq!(get(&s, "Ready").reason, "ValidationFailed");
}
