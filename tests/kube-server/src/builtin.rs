//! The built-in resource types: what they are called, their verbs and subresources, and the
//! little of their structure that merging needs (which lists merge by which keys).
//!
//! Structures are written in the schema dialect CRDs use (`properties`, `items`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`), so that patches and server-side apply
//! treat built-in and custom resources alike. Anything not described is a map or an atomic list.

use serde_json::{Value, json};

use crate::resources::{ALL_VERBS, ResourceInfo, Shape, Special};

const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apiextensions.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "coordination.k8s.io",
    "events.k8s.io",
];

pub fn is_builtin_group(group: &str) -> bool {
    BUILTIN_GROUPS.contains(&group)
}

struct Def {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
}

const fn def(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
) -> Def {
    Def {
        group,
        kind,
        plural,
        namespaced,
        short,
        status,
    }
}

const DEFS: &[Def] = &[
    def("", "Namespace", "namespaces", false, &["ns"], true),
    def("", "Secret", "secrets", true, &[], false),
    def("", "ConfigMap", "configmaps", true, &["cm"], false),
    def(
        "",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        false,
    ),
    def("", "Pod", "pods", true, &["po"], true),
    def("", "Service", "services", true, &["svc"], true),
    def("", "Event", "events", true, &["ev"], false),
    def("events.k8s.io", "Event", "events", true, &["ev"], false),
    def("coordination.k8s.io", "Lease", "leases", true, &[], false),
    def(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
    ),
    def(
        "authentication.k8s.io",
        "TokenReview",
        "tokenreviews",
        false,
        &[],
        false,
    ),
    def(
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        &[],
        false,
    ),
];

/// Every built-in resource type.
pub fn resources() -> Vec<ResourceInfo> {
    DEFS.iter().map(info).collect()
}

fn info(d: &Def) -> ResourceInfo {
    let special = match d.plural {
        "tokenreviews" => Special::TokenReview,
        "selfsubjectaccessreviews" => Special::AccessReview,
        _ => Special::Stored,
    };
    let mut verbs: Vec<String> = match special {
        Special::Stored => ALL_VERBS.iter().map(|v| v.to_string()).collect(),
        _ => vec!["create".to_string()],
    };
    if d.plural == "namespaces" {
        verbs.retain(|v| v != "deletecollection");
    }
    let extra_subresources = if d.plural == "serviceaccounts" {
        vec![("token".to_string(), vec!["create".to_string()])]
    } else {
        Vec::new()
    };
    let categories = match d.plural {
        "pods" | "services" => vec!["all".to_string()],
        "customresourcedefinitions" => vec!["api-extensions".to_string()],
        _ => Vec::new(),
    };
    ResourceInfo {
        group: d.group.to_string(),
        version: "v1".to_string(),
        kind: d.kind.to_string(),
        list_kind: format!("{}List", d.kind),
        plural: d.plural.to_string(),
        singular: d.kind.to_lowercase(),
        namespaced: d.namespaced,
        short_names: d.short.iter().map(|s| s.to_string()).collect(),
        categories,
        verbs,
        extra_subresources,
        status_subresource: d.status,
        storage: d.plural.to_string(),
        shape: if d.group == "events.k8s.io" {
            Shape::EventsV1
        } else {
            Shape::Plain
        },
        special,
        generation: d.plural == "customresourcedefinitions",
        require_rv_on_update: false,
        delete_returns_object: matches!(d.plural, "pods" | "customresourcedefinitions"),
        schema: None,
        structure: with_metadata(structure(d.plural)),
        columns: None,
        crd: None,
    }
}

fn list_map(keys: &[&str], items: Value) -> Value {
    let mut list = json!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": keys,
    });
    list["items"] = items;
    list
}

fn obj(props: Value) -> Value {
    let mut o = json!({"type": "object"});
    o["properties"] = props;
    o
}

fn conditions() -> Value {
    list_map(&["type"], json!({"type": "object"}))
}

fn container() -> Value {
    obj(json!({
        "ports": list_map(&["containerPort", "protocol"], json!({"type": "object"})),
        "env": list_map(&["name"], json!({"type": "object"})),
        "volumeMounts": list_map(&["mountPath"], json!({"type": "object"})),
    }))
}

fn structure(plural: &str) -> Value {
    match plural {
        "pods" => obj(json!({
            "spec": obj(json!({
                "containers": list_map(&["name"], container()),
                "initContainers": list_map(&["name"], container()),
                "volumes": list_map(&["name"], json!({"type": "object"})),
            })),
            "status": obj(json!({"conditions": conditions()})),
        })),
        "services" => obj(json!({
            "spec": obj(json!({
                "ports": list_map(&["port", "protocol"], json!({"type": "object"})),
            })),
        })),
        "customresourcedefinitions" => obj(json!({
            "spec": obj(json!({"versions": list_map(&["name"], json!({"type": "object"}))})),
            "status": obj(json!({"conditions": conditions()})),
        })),
        "namespaces" => obj(json!({"status": obj(json!({"conditions": conditions()}))})),
        _ => json!({"type": "object"}),
    }
}

/// The structure of `metadata` every object shares.
pub fn object_meta() -> Value {
    obj(json!({
        "finalizers": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ownerReferences": list_map(&["uid"], json!({"type": "object"})),
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    }))
}

/// A structure with the shared `metadata` structure put in place.
pub fn with_metadata(mut structure: Value) -> Value {
    if let Some(map) = structure.as_object_mut() {
        let props = map
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(props) = props {
            props.insert("metadata".to_string(), object_meta());
        }
    }
    structure
}
