//! `/version` and API discovery: the plain documents (APIVersions, APIGroupList, APIGroup,
//! APIResourceList) and aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1), built from
//! the registry on every request, so a CRD shows up as soon as it is stored.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::handlers::{Call, Reply};
use crate::request::{Accept, Route};
use crate::resources::{Registry, ResourceInfo};
use crate::status::ApiError;

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-proxlet-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn serve(registry: &Registry, call: &Call, address: &str) -> Result<Reply, ApiError> {
    match (&call.route, &call.accept) {
        (Route::CoreVersions, Accept::Discovery(v)) => Ok(aggregated(registry, true, v)),
        (Route::Groups, Accept::Discovery(v)) => Ok(aggregated(registry, false, v)),
        (Route::CoreVersions, _) => Ok(Reply::ok(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }))),
        (Route::Groups, _) => {
            let groups: Vec<Value> = registry
                .groups()
                .iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| group_doc(g, v))
                .collect();
            Ok(Reply::ok(
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            ))
        }
        (Route::Group(g), _) => registry
            .groups()
            .iter()
            .find(|(name, _)| name == g)
            .map(|(name, v)| {
                let mut doc = group_doc(name, v);
                doc["kind"] = json!("APIGroup");
                doc["apiVersion"] = json!("v1");
                Reply::ok(doc)
            })
            .ok_or_else(ApiError::no_route),
        (Route::GroupVersion(g, v), _) => resource_list(registry, g, v),
        _ => Err(ApiError::no_route()),
    }
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

fn resource_list(registry: &Registry, group: &str, version: &str) -> Result<Reply, ApiError> {
    let infos = registry.in_group_version(group, version);
    if infos.is_empty() {
        return Err(ApiError::no_route());
    }
    let mut resources = Vec::new();
    for i in &infos {
        let mut r = json!({
            "name": i.plural,
            "singularName": i.singular,
            "namespaced": i.namespaced,
            "kind": i.kind,
            "verbs": i.verbs,
        });
        if !i.short_names.is_empty() {
            r["shortNames"] = json!(i.short_names);
        }
        if !i.categories.is_empty() {
            r["categories"] = json!(i.categories);
        }
        resources.push(r);
        for (sub, verbs) in subresources(i) {
            resources.push(json!({
                "name": format!("{}/{sub}", i.plural),
                "singularName": "",
                "namespaced": i.namespaced,
                "kind": if sub == "token" { "TokenRequest" } else { i.kind.as_str() },
                "verbs": verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(Reply::ok(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })))
}

fn subresources(i: &ResourceInfo) -> Vec<(String, Vec<String>)> {
    let mut subs = Vec::new();
    if i.status_subresource {
        subs.push((
            "status".to_string(),
            vec!["get".to_string(), "patch".to_string(), "update".to_string()],
        ));
    }
    subs.extend(i.extra_subresources.iter().cloned());
    subs
}

fn aggregated_resource(i: &Arc<ResourceInfo>) -> Value {
    let kind = json!({"group": i.group, "version": i.version, "kind": i.kind});
    let mut r = json!({
        "resource": i.plural,
        "responseKind": kind,
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": i.singular,
        "verbs": i.verbs,
    });
    if !i.short_names.is_empty() {
        r["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        r["categories"] = json!(i.categories);
    }
    let subs: Vec<Value> = subresources(i)
        .into_iter()
        .map(|(sub, verbs)| {
            let response = if sub == "token" {
                json!({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"})
            } else {
                kind.clone()
            };
            json!({"subresource": sub, "responseKind": response, "verbs": verbs})
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

fn aggregated(registry: &Registry, core: bool, version: &str) -> Reply {
    let items: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .in_group_version(g, v)
                        .iter()
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let content_type =
        format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    Reply::Json {
        code: 200,
        body: json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": format!("apidiscovery.k8s.io/{version}"),
            "metadata": {},
            "items": items,
        }),
        content_type,
        warnings: Vec::new(),
    }
}
