//! Events are one resource served in two shapes: `core/v1` (stored) and `events.k8s.io/v1`.
//! These functions convert between them, field by field, as kube-apiserver does.

use serde_json::{Map, Value};

/// `(events.k8s.io/v1 field, core/v1 field)`.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &Value, from_v1: bool, api_version: &str) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let renamed = RENAMES.iter().find_map(|(v1, core)| {
            let (from, to) = if from_v1 { (v1, core) } else { (core, v1) };
            (*from == k).then_some(*to)
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert(
        "apiVersion".to_string(),
        Value::String(api_version.to_string()),
    );
    out.insert("kind".to_string(), Value::String("Event".to_string()));
    Value::Object(out)
}

/// A stored (`core/v1`) Event as `events.k8s.io/v1` serves it.
pub fn to_v1(core: &Value) -> Value {
    rename(core, false, "events.k8s.io/v1")
}

/// An `events.k8s.io/v1` Event in the stored `core/v1` shape.
pub fn from_v1(v1: &Value) -> Value {
    let mut core = rename(v1, true, "v1");
    // core/v1 readers (kubectl describe) look at these when eventTime alone is set.
    if core.get("reportingComponent").is_some() && core.get("source").is_none() {
        core["source"] = serde_json::json!({"component": core["reportingComponent"]});
    }
    core
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "ProxyPlugin", "name": "p"}, "note": "fetched",
            "reason": "Fetched", "type": "Normal", "reportingController": "proxlet",
            "reportingInstance": "op-1", "action": "Fetch", "eventTime": "2025-01-01T00:00:00.000000Z"});
        let core = from_v1(&v1);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "fetched");
        assert_eq!(core["apiVersion"], "v1");
        let back = to_v1(&core);
        assert_eq!(back["note"], "fetched");
        assert_eq!(back["regarding"], v1["regarding"]);
    }
}
