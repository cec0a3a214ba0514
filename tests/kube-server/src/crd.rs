//! CustomResourceDefinitions: checking one, filling its status as the apiextensions server does
//! (NamesAccepted, Established), and the resource types it installs for its served versions.

use serde_json::{Value, json};

use crate::builtin;
use crate::meta;
use crate::resources::{ResourceInfo, Shape, Special};
use crate::status::Cause;

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.to_string(),
        message,
        field: field.to_string(),
    }
}

fn required(field: &str) -> Cause {
    cause("FieldValueRequired", field, "Required value".to_string())
}

/// The checks kube-apiserver makes that a CRD author is likely to trip over.
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    }
    if spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        causes.push(required("spec.names.kind"));
    }
    if name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        other => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {:?}: supported values: \"Cluster\", \"Namespaced\"",
                other.unwrap_or_default()
            ),
        )),
    }
    causes.extend(validate_versions(spec));
    causes
}

fn validate_versions(spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version"
                .to_string(),
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                Value::Array(versions.clone())
            ),
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v["schema"]["openAPIV3Schema"].is_null() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".to_string(),
            ));
        }
    }
    causes
}

/// Fills `status` as a freshly accepted CRD has it.
pub fn fill_status(crd: &mut Value) {
    let now = meta::now();
    let condition = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        .collect();
    let mut stored = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored.contains(&v) {
            stored.push(v);
        }
    }
    let mut names = crd["spec"]["names"].clone();
    if names["singular"].is_null() {
        names["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if names["listKind"].is_null() {
        names["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
}

/// The resource types a CRD serves, one per served version.
pub fn resources(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let kind = s(&names["kind"]);
    let plural = s(&names["plural"]);
    let group = s(&spec["group"]);
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"] != false)
        .map(|v| {
            let schema = v["schema"]["openAPIV3Schema"].clone();
            ResourceInfo {
                group: group.clone(),
                version: s(&v["name"]),
                kind: kind.clone(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{kind}List")),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced: spec["scope"] == "Namespaced",
                short_names: list(&names["shortNames"]),
                categories: list(&names["categories"]),
                verbs: crate::resources::ALL_VERBS
                    .iter()
                    .map(|v| v.to_string())
                    .collect(),
                extra_subresources: Vec::new(),
                status_subresource: v["subresources"]["status"].is_object(),
                storage: format!("{plural}.{group}"),
                shape: Shape::Plain,
                special: Special::Stored,
                generation: true,
                require_rv_on_update: true,
                delete_returns_object: true,
                structure: builtin::with_metadata(schema.clone()),
                schema: Some(schema),
                columns: v.get("additionalPrinterColumns").cloned(),
                crd: crd["metadata"]["name"].as_str().map(str::to_string),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_match() {
        let crd = json!({"metadata": {"name": "wrong.proxlet.dev"}, "spec": {"group": "proxlet.dev",
            "names": {"plural": "proxyplugins", "kind": "ProxyPlugin"}, "scope": "Namespaced",
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        let causes = validate(&crd);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
        let infos = resources(&crd);
        assert_eq!(infos[0].storage, "proxyplugins.proxlet.dev");
    }
}
