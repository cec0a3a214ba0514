use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use proxlet_crds::plugin_set::Module;
use proxlet_crds::{FailurePolicy, LoadFailure, PluginReport, SetPlugin};

use super::*;

fn plugin(name: &str, module: &[u8], app: Option<&str>) -> SetPlugin {
    SetPlugin {
        name: name.into(),
        generation: 1,
        module: Module {
            digest: Digest::of(module),
            size: 1,
            compiled: None,
        },
        root_id: String::new(),
        config: None,
        phase: None,
        priority: 0,
        failure_policy: FailurePolicy::FailClosed,
        limits: Default::default(),
        permissions: Default::default(),
        selector: app.map(|a| LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), a.into())])),
            ..Default::default()
        }),
        match_rules: Vec::new(),
    }
}

fn report(set: &PluginSet, app: &str, plugins: Vec<PluginReport>) -> SidecarReport {
    SidecarReport {
        version: set.version.clone(),
        labels: BTreeMap::from([("app".into(), app.into())]),
        plugins,
    }
}

fn ran(name: &str, module: &[u8], state: LoadState) -> PluginReport {
    PluginReport {
        name: name.into(),
        digest: Digest::of(module),
        state,
        failure: (state == LoadState::Failed).then_some(LoadFailure::StartFailed),
        message: (state == LoadState::Failed).then(|| "on_configure returned false".into()),
    }
}

#[test]
fn tallies_count_matching_sidecars_and_what_they_run() {
    let set = PluginSet::new(
        "shop".into(),
        vec![plugin("auth", b"a", Some("web")), plugin("log", b"l", None)],
    );
    let reports = Reports::new(Duration::from_secs(60));
    let recorded = reports.record(
        "shop",
        "web-1",
        report(
            &set,
            "web",
            vec![
                ran("auth", b"a", LoadState::Loaded),
                ran("log", b"l", LoadState::Loaded),
            ],
        ),
    );
    assert!(recorded.nacks.is_empty());
    let recorded = reports.record(
        "shop",
        "web-2",
        report(
            &set,
            "web",
            vec![
                ran("auth", b"a", LoadState::Failed),
                ran("log", b"l", LoadState::Loaded),
            ],
        ),
    );
    assert_eq!(recorded.nacks.len(), 1);
    // The same refusal again is not a new NACK.
    let again = reports.record(
        "shop",
        "web-2",
        report(
            &set,
            "web",
            vec![
                ran("auth", b"a", LoadState::Failed),
                ran("log", b"l", LoadState::Loaded),
            ],
        ),
    );
    assert!(again.nacks.is_empty());
    // A sidecar that has not loaded the new set yet counts as matched, not loaded.
    reports.record("shop", "db-1", report(&set, "db", vec![]));
    // Another namespace's sidecar is not counted.
    reports.record(
        "cart",
        "web-9",
        report(&set, "web", vec![ran("auth", b"a", LoadState::Loaded)]),
    );

    let t = reports.tally(&set);
    let auth = &t["auth"];
    assert_eq!((auth.matched, auth.loaded, auth.failed), (2, 1, 1));
    assert_eq!(auth.failures[0].pod, "web-2");
    assert_eq!(auth.failures[0].reason, "StartFailed");
    let log = &t["log"];
    assert_eq!((log.matched, log.loaded, log.failed), (3, 2, 0));
}

#[test]
fn a_report_about_another_digest_does_not_count_as_loaded() {
    let set = PluginSet::new("shop".into(), vec![plugin("auth", b"new", None)]);
    let reports = Reports::new(Duration::from_secs(60));
    reports.record(
        "shop",
        "p",
        report(&set, "web", vec![ran("auth", b"old", LoadState::Loaded)]),
    );
    let t = reports.tally(&set);
    assert_eq!((t["auth"].matched, t["auth"].loaded), (1, 0));
}

#[test]
fn silent_sidecars_expire_and_convergence_is_seen_once() {
    let set = PluginSet::new("shop".into(), vec![plugin("auth", b"a", None)]);
    let reports = Reports::new(Duration::from_millis(50));
    assert!(
        !reports.newly_converged(&set),
        "no sidecar: nothing converged"
    );
    reports.seen("shop", "p");
    assert!(!reports.newly_converged(&set));
    reports.record(
        "shop",
        "p",
        report(&set, "web", vec![ran("auth", b"a", LoadState::Loaded)]),
    );
    assert!(reports.newly_converged(&set));
    assert!(!reports.newly_converged(&set), "only the first time");
    assert_eq!(reports.connected().0, 1);
    std::thread::sleep(Duration::from_millis(80));
    assert!(reports.expire());
    assert_eq!(reports.connected().0, 0);
    assert_eq!(reports.tally(&set)["auth"].matched, 0);
}
