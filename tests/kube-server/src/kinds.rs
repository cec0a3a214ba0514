//! What the built-in types' strategies do on a write: name rules, defaults, `stringData`
//! folded into `data`, a cluster IP for services, the status a new pod or namespace starts with,
//! and CRD checks and status. Custom resources are validated against their schema elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::crd;
use crate::meta;
use crate::resources::ResourceInfo;
use crate::status::{ApiError, Cause};

/// Applies the type's defaults and checks to `obj` (the object about to be stored).
pub fn prepare(info: &ResourceInfo, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut causes: Vec<Cause> = Vec::new();
    if old.is_none() {
        let bad = if info.plural == "namespaces" {
            meta::check_label(&name)
        } else {
            meta::check_subdomain(&name)
        };
        causes.extend(bad);
    }
    if info.crd.is_none() {
        match info.plural.as_str() {
            "secrets" => secret(obj)?,
            "namespaces" => namespace(obj, &name),
            "services" => service(obj, old),
            "pods" => pod(obj, old),
            "customresourcedefinitions" => {
                causes.extend(crd::validate(obj));
                if causes.is_empty() {
                    crd::fill_status(obj);
                }
            }
            _ => {}
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&info.kind, &info.group, &name, causes))
    }
}

fn secret(obj: &mut Value) -> Result<(), ApiError> {
    if let Some(Value::Object(plain)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        for (k, v) in plain {
            let text = v.as_str().unwrap_or_default().to_string();
            obj["data"][k] = json!(STANDARD.encode(text));
        }
    }
    if let Some(data) = obj["data"].as_object() {
        for v in data.values() {
            let s = v.as_str().unwrap_or_default();
            if let Err(e) = STANDARD.decode(s) {
                return Err(ApiError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data: {e}"
                )));
            }
        }
    }
    if obj["type"].as_str().is_none_or(str::is_empty) {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

fn namespace(obj: &mut Value, name: &str) {
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    if obj["spec"]["finalizers"].is_null() {
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    }
    if obj["status"]["phase"].is_null() {
        obj["status"]["phase"] = json!("Active");
    }
}

fn service(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    if let Some(old) = old {
        spec["clusterIP"] = old["spec"]["clusterIP"].clone();
        spec["clusterIPs"] = old["spec"]["clusterIPs"].clone();
    } else if spec["clusterIP"].is_null() && spec["type"] != "ExternalName" {
        let b = meta::random_bytes::<2>();
        let ip = format!("10.96.{}.{}", b[0], b[1].max(1));
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    for port in spec["ports"].as_array_mut().into_iter().flatten() {
        if port["protocol"].is_null() {
            port["protocol"] = json!("TCP");
        }
        if port["targetPort"].is_null() {
            port["targetPort"] = port["port"].clone();
        }
    }
    if obj["status"].is_null() {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

fn pod(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("serviceAccountName", json!("default")),
        ("terminationGracePeriodSeconds", json!(30)),
    ] {
        if spec[field].is_null() {
            spec[field] = default;
        }
    }
    if old.is_none() && obj["status"]["phase"].is_null() {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
}
