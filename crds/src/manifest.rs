//! The CRD manifests under `crds/`, rendered from the Rust types.

use kube::CustomResourceExt;
use serde_yaml::Value;

/// One generated file: its name under `crds/` and its YAML.
pub struct Manifest {
    pub file: &'static str,
    pub yaml: String,
}

const HEADER: &str =
    "# Generated from the proxlet-crds crate by `cargo xtask generate`; do not edit.\n";

/// Every CRD manifest, as `cargo xtask generate` writes them.
pub fn manifests() -> Result<Vec<Manifest>, serde_yaml::Error> {
    let mut crd = serde_yaml::to_value(crate::ProxyPlugin::crd())?;
    drop_null_enum_values(&mut crd);
    Ok(vec![Manifest {
        file: "proxyplugins.proxlet.dev.yaml",
        yaml: format!("{HEADER}{}", serde_yaml::to_string(&crd)?),
    }])
}

/// An optional enum field derives an `enum` that lists `null`; the field is already `nullable`,
/// and a null among a string enum's values only confuses readers of `kubectl explain`.
fn drop_null_enum_values(v: &mut Value) {
    match v {
        Value::Mapping(map) => {
            if let Some(Value::Sequence(values)) = map.get_mut("enum") {
                values.retain(|e| !e.is_null());
            }
            map.values_mut().for_each(drop_null_enum_values);
        }
        Value::Sequence(items) => items.iter_mut().for_each(drop_null_enum_values),
        _ => {}
    }
}
