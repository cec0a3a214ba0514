//! OpenAPI as kubectl reads it: `/openapi/v3` (an index of group-version documents) and one
//! document per group-version whose operations declare the query parameters the server
//! supports (`fieldValidation` among them, so kubectl validates on the server) and whose
//! components hold the custom resources' schemas. `/openapi/v2` carries the same paths.
//!
//! Built-in kinds have no component schemas: kubectl then uses its compiled-in types.

use serde_json::{Map, Value, json};

use crate::handlers::Reply;
use crate::request::Route;
use crate::resources::{Registry, ResourceInfo};
use crate::status::ApiError;

pub fn serve(registry: &Registry, route: &Route) -> Result<Reply, ApiError> {
    match route {
        Route::OpenApiV3 => Ok(Reply::ok(index(registry))),
        Route::OpenApiV3Doc(path) => {
            let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
                ["api", v] => (String::new(), v.to_string()),
                ["apis", g, v] => (g.to_string(), v.to_string()),
                _ => return Err(ApiError::no_route()),
            };
            let infos = registry.in_group_version(&group, &version);
            if infos.is_empty() {
                return Err(ApiError::no_route());
            }
            Ok(Reply::ok(document(&infos)))
        }
        _ => Ok(Reply::ok(v2(registry))),
    }
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for v in versions {
            let path = gv_path(&group, &v);
            let doc = document(&registry.in_group_version(&group, &v));
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc.to_string()))}),
            );
        }
    }
    json!({ "paths": paths })
}

fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `dev.proxlet.v1alpha1.ProxyPlugin`, the way kube-apiserver names CRD schemas.
fn schema_name(info: &ResourceInfo) -> String {
    let mut parts: Vec<&str> = info.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), info.version, info.kind)
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(info: &ResourceInfo, action: &str, params: &[&str]) -> Value {
    let body = match &info.schema {
        Some(_) => json!({"$ref": format!("#/components/schemas/{}", schema_name(info))}),
        None => json!({"type": "object"}),
    };
    json!({
        "operationId": format!("{action}{}", info.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": body}}}},
    })
}

const WRITE: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "pretty"];
const PATCH: &[&str] = &[
    "dryRun",
    "fieldManager",
    "fieldValidation",
    "force",
    "pretty",
];
const LIST: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];

fn paths_of(info: &ResourceInfo) -> Vec<(String, Value)> {
    let base = format!("/{}", gv_path(&info.group, &info.version));
    let collection = if info.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", info.plural)
    } else {
        format!("{base}/{}", info.plural)
    };
    let item = format!("{collection}/{{name}}");
    let mut out = vec![(
        collection,
        json!({
            "get": operation(info, "list", LIST),
            "post": operation(info, "post", WRITE),
            "delete": operation(info, "deletecollection", &["dryRun"]),
        }),
    )];
    if info.verbs.iter().any(|v| v == "get") {
        out.push((
            item.clone(),
            json!({
                "get": operation(info, "get", &[]),
                "put": operation(info, "put", WRITE),
                "patch": operation(info, "patch", PATCH),
                "delete": operation(info, "delete", &["dryRun"]),
            }),
        ));
    }
    if info.status_subresource {
        out.push((
            format!("{item}/status"),
            json!({
                "get": operation(info, "get", &[]),
                "put": operation(info, "put", WRITE),
                "patch": operation(info, "patch", PATCH),
            }),
        ));
    }
    out
}

fn document(infos: &[std::sync::Arc<ResourceInfo>]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for info in infos {
        for (p, ops) in paths_of(info) {
            paths.insert(p, ops);
        }
        if let Some(schema) = &info.schema {
            let mut s = schema.clone();
            s["x-kubernetes-group-version-kind"] =
                json!([{"group": info.group, "version": info.version, "kind": info.kind}]);
            schemas.insert(schema_name(info), s);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Swagger 2.0 with the same operations (parameters in v2 form) and CRD definitions.
fn v2(registry: &Registry) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for info in registry.all() {
        for (p, mut ops) in paths_of(&info) {
            for op in ops.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                for param in op["parameters"].as_array_mut().into_iter().flatten() {
                    param["type"] = json!("string");
                    if let Some(m) = param.as_object_mut() {
                        m.remove("schema");
                    }
                }
                op["responses"] = json!({"200": {"description": "OK"}});
            }
            paths.insert(p, ops);
        }
        if let Some(schema) = &info.schema {
            let mut s = schema.clone();
            s["x-kubernetes-group-version-kind"] =
                json!([{"group": info.group, "version": info.version, "kind": info.kind}]);
            definitions.insert(schema_name(&info), s);
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "definitions": definitions,
    })
}
