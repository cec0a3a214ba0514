//! From a parsed request to a reply: routing to discovery, OpenAPI and the resource verbs,
//! checking scope, subresource and the forbid rules, and the helpers every verb shares
//! (presenting stored objects in the requested version and representation).

pub mod modify;
pub mod read;
pub mod remove;
pub mod reviews;
pub mod write;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::app::{App, State};
use crate::apply::Scope;
use crate::auth::{Attributes, User, forbidden_message};
use crate::request::{Accept, Query, ResourcePath, Route};
use crate::resources::{ResourceInfo, Shape, Special};
use crate::status::{ApiError, Target};
use crate::{discovery, events, openapi, table, watch};

/// A request, parsed.
pub struct Call {
    pub method: http::Method,
    pub route: Route,
    pub query: Query,
    pub accept: Accept,
    pub content_type: String,
    pub body: Bytes,
    pub user: User,
    pub user_agent: String,
}

/// What to answer.
pub enum Reply {
    Json {
        code: u16,
        body: Value,
        content_type: String,
        warnings: Vec<String>,
    },
    Text(u16, &'static str),
    Watch(Box<watch::Plan>),
}

impl Reply {
    pub fn json(code: u16, body: Value) -> Self {
        Reply::Json {
            code,
            body,
            content_type: "application/json".to_string(),
            warnings: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    pub fn error(e: &ApiError) -> Self {
        Self::json(e.code, e.to_status())
    }

    pub fn with_warnings(mut self, w: Vec<String>) -> Self {
        if let Reply::Json { warnings, .. } = &mut self {
            *warnings = w;
        }
        self
    }
}

pub fn handle(app: &App, call: &Call) -> Reply {
    let result = match &call.route {
        Route::Version => Ok(Reply::ok(discovery::version())),
        Route::Health => Ok(Reply::Text(200, "ok")),
        Route::CoreVersions | Route::Groups | Route::Group(_) | Route::GroupVersion(..) => {
            discovery::serve(&app.lock().registry, call, &app.settings.address)
        }
        Route::OpenApiV2 | Route::OpenApiV3 | Route::OpenApiV3Doc(_) => {
            openapi::serve(&app.lock().registry, &call.route)
        }
        Route::Resource(p) => resource(app, call, p),
        Route::Unknown => Err(ApiError::no_route()),
    };
    result.unwrap_or_else(|e| Reply::error(&e))
}

/// The RBAC verb of a request.
fn verb(call: &Call, p: &ResourcePath) -> &'static str {
    use http::Method;
    match (&call.method, p.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if call.query.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

fn resource(app: &App, call: &Call, p: &ResourcePath) -> Result<Reply, ApiError> {
    let mut state = app.lock();
    let info = state
        .registry
        .find(&p.group, &p.version, &p.plural)
        .ok_or_else(ApiError::no_route)?;
    let verb = verb(call, p);
    let scope = check(app, call, p, &info, verb)?;
    let ns = p.namespace.as_deref();
    let state = &mut *state;
    match (info.special, verb, p.name.as_deref()) {
        (Special::TokenReview, "create", None) => reviews::token_review(state, call),
        (Special::AccessReview, "create", None) => {
            Ok(reviews::access_review(call, &app.settings.forbid))
        }
        (Special::Stored, "get", Some(n)) => read::get(state, call, &info, ns, n),
        (Special::Stored, "list", None) => read::list(state, call, &info, ns),
        (Special::Stored, "watch", None) => {
            watch::plan(state, call, &info, ns).map(|p| Reply::Watch(Box::new(p)))
        }
        (Special::Stored, "create", None) => write::create(state, call, &info, ns),
        (Special::Stored, "create", Some(n)) if p.sub.as_deref() == Some("token") => {
            reviews::token_request(state, call, ns.unwrap_or_default(), n)
        }
        (Special::Stored, "update", Some(n)) => write::update(state, call, &info, ns, n, scope),
        (Special::Stored, "patch", Some(n)) => modify::patch(state, call, &info, ns, n, scope),
        (Special::Stored, "delete", Some(n)) if p.sub.is_none() => {
            remove::delete(state, call, &info, ns, n)
        }
        (Special::Stored, "deletecollection", None) if info.allows("deletecollection") => {
            remove::collection(state, call, &info, ns)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Checks scope, subresource and the forbid rules; returns what a write may touch.
fn check(
    app: &App,
    call: &Call,
    p: &ResourcePath,
    info: &ResourceInfo,
    verb: &str,
) -> Result<Scope, ApiError> {
    let collection_verb = matches!(verb, "list" | "watch" | "deletecollection");
    let cluster_wide_item = info.namespaced
        && p.namespace.is_none()
        && !collection_verb
        && info.special == Special::Stored;
    if (!info.namespaced && p.namespace.is_some()) || cluster_wide_item {
        return Err(ApiError::no_route());
    }
    let scope = match p.sub.as_deref() {
        None => Scope::Main {
            status_separate: info.status_subresource,
        },
        Some("status") if info.status_subresource => Scope::Status,
        Some(s) if info.extra_subresources.iter().any(|(n, _)| n == s) => Scope::Status,
        Some(_) => return Err(ApiError::no_route()),
    };
    let attrs = Attributes {
        verb,
        group: &info.group,
        resource: &info.plural,
        sub: p.sub.as_deref(),
        namespace: p.namespace.as_deref(),
        name: p.name.as_deref(),
    };
    if app.settings.forbid.iter().any(|r| r.matches(&attrs)) {
        let t = Target {
            group: &info.group,
            resource: &info.plural,
            name: p.name.as_deref().unwrap_or_default(),
        };
        return Err(ApiError::forbidden(
            forbidden_message(&call.user, &attrs),
            t,
        ));
    }
    Ok(scope)
}

/// A stored object as the requested group-version serves it.
pub fn present(info: &ResourceInfo, stored: &Value) -> Value {
    let mut v = match info.shape {
        Shape::EventsV1 => events::to_v1(stored),
        Shape::Plain => stored.clone(),
    };
    v["apiVersion"] = json!(info.api_version());
    v["kind"] = json!(info.kind);
    v
}

/// A served object in the stored shape.
pub fn unpresent(info: &ResourceInfo, mut served: Value) -> Value {
    served["apiVersion"] = json!(info.api_version());
    served["kind"] = json!(info.kind);
    match info.shape {
        Shape::EventsV1 => events::from_v1(&served),
        Shape::Plain => served,
    }
}

pub fn target<'a>(info: &'a ResourceInfo, name: &'a str) -> Target<'a> {
    Target {
        group: &info.group,
        resource: &info.plural,
        name,
    }
}

/// The printer columns of a resource.
pub fn columns(info: &ResourceInfo) -> Value {
    info.columns
        .clone()
        .unwrap_or_else(|| table::builtin_columns(&info.kind))
}

pub fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// One object in the representation asked for.
pub fn render_one(info: &ResourceInfo, accept: &Accept, query: &Query, obj: Value) -> Value {
    match accept {
        Accept::Table(v) => {
            let include = query.get("includeObject").unwrap_or("Metadata");
            let rv = obj["metadata"]["resourceVersion"].clone();
            let mut t = table::to_table(
                &columns(info),
                &[obj],
                include,
                json!({"resourceVersion": rv}),
            );
            t["apiVersion"] = json!(format!("meta.k8s.io/{v}"));
            t
        }
        Accept::Metadata => partial(&obj),
        _ => obj,
    }
}

/// The request body as JSON (YAML is accepted too).
pub fn parse_body(call: &Call) -> Result<Value, ApiError> {
    if call.content_type.contains("protobuf") {
        return crate::proto::decode(&call.body).map_err(|e| {
            ApiError::unsupported_media_type(&e, &["application/json", "application/yaml"])
        });
    }
    let parsed = if call.content_type.contains("yaml") {
        serde_yaml::from_slice::<Value>(&call.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&call.body).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: {e}"
        ))),
    }
}

/// The name of the field manager of a write.
pub fn manager(call: &Call) -> String {
    call.query
        .get("fieldManager")
        .map(str::to_string)
        .unwrap_or_else(|| {
            call.user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string()
        })
}

/// Refuses a namespace that does not exist or is going away.
pub fn usable_namespace(
    state: &State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<(), ApiError> {
    let Some(ns) = ns else {
        return Ok(());
    };
    let Some(n) = state.store.get("namespaces", "", ns) else {
        return Err(ApiError::not_found(Target {
            group: "",
            resource: "namespaces",
            name: ns,
        }));
    };
    if crate::meta::is_deleting(&n) {
        let t = target(info, name);
        return Err(ApiError::forbidden(
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                t.qualified()
            ),
            t,
        ));
    }
    Ok(())
}
