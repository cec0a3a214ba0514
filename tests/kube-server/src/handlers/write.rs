//! Create (POST) and update (PUT), and the pipeline every write goes through before it is
//! stored: subresource isolation, immutable metadata, type defaults, schema validation with
//! pruning and defaults, finalizer rules, generation, field ownership, no-op detection, dry run,
//! and what a stored change sets off (CRDs installing resources, namespaces getting their
//! service account, objects being deleted once their finalizers are gone).

use serde_json::{Value, json};

use super::{Call, Reply, manager, parse_body, present, target, unpresent, usable_namespace};
use crate::app::{self, State};
use crate::apply::{self, Scope};
use crate::crd;
use crate::kinds;
use crate::meta;
use crate::resources::ResourceInfo;
use crate::schema::{self, FieldErrorKind};
use crate::status::{ApiError, Cause};

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    Strict,
    Warn,
    Ignore,
}

/// The settings of one write.
pub struct WriteCtx<'a> {
    pub info: &'a ResourceInfo,
    pub scope: Scope,
    pub manager: String,
    pub dry_run: bool,
    pub validation: Validation,
    /// `managedFields` were already computed (server-side apply).
    pub applied: bool,
}

impl<'a> WriteCtx<'a> {
    pub fn new(call: &Call, info: &'a ResourceInfo, scope: Scope) -> Self {
        let validation = match call.query.get("fieldValidation") {
            Some("Strict") => Validation::Strict,
            Some("Ignore") => Validation::Ignore,
            _ => Validation::Warn,
        };
        WriteCtx {
            info,
            scope,
            manager: manager(call),
            dry_run: call.query.get("dryRun") == Some("All"),
            validation,
            applied: false,
        }
    }
}

/// The outcome of a write: the object as stored (or as it would be) and any warnings.
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

fn check_type(info: &ResourceInfo, body: &Value) -> Result<(), ApiError> {
    let av = body["apiVersion"].as_str().unwrap_or_default();
    let kind = body["kind"].as_str().unwrap_or_default();
    if !av.is_empty() && av != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    Ok(())
}

fn check_namespace(body: &Value, ns: Option<&str>) -> Result<(), ApiError> {
    match (body["metadata"]["namespace"].as_str(), ns) {
        (Some(b), Some(u)) if !b.is_empty() && b != u => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

pub fn create(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
) -> Result<Reply, ApiError> {
    let body = parse_body(call)?;
    check_type(info, &body)?;
    check_namespace(&body, ns)?;
    let name = match (
        body["metadata"]["name"].as_str(),
        body["metadata"]["generateName"].as_str(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) if !g.is_empty() => format!("{g}{}", meta::name_suffix()),
        _ => {
            return Err(ApiError::invalid(
                &info.kind,
                &info.group,
                "",
                vec![Cause {
                    reason: "FieldValueRequired".to_string(),
                    message: "Required value: name or generateName is required".to_string(),
                    field: "metadata.name".to_string(),
                }],
            ));
        }
    };
    usable_namespace(state, info, ns, &name)?;
    if state
        .store
        .get(&info.storage, ns.unwrap_or_default(), &name)
        .is_some()
    {
        return Err(ApiError::already_exists(target(info, &name)));
    }
    let mut obj = unpresent(info, body);
    meta::init_create(&mut obj, ns, &name, info.generation);
    let ctx = WriteCtx::new(
        call,
        info,
        Scope::Main {
            status_separate: info.status_subresource,
        },
    );
    let w = commit(state, &ctx, None, obj)?;
    Ok(Reply::json(201, present(info, &w.object)).with_warnings(w.warnings))
}

pub fn update(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
) -> Result<Reply, ApiError> {
    let mut body = parse_body(call)?;
    check_type(info, &body)?;
    check_namespace(&body, ns)?;
    match body["metadata"]["name"].as_str() {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
        None => body["metadata"]["name"] = json!(name),
    }
    let old = state
        .store
        .get(&info.storage, ns.unwrap_or_default(), name)
        .ok_or_else(|| ApiError::not_found(target(info, name)))?;
    match body["metadata"]["resourceVersion"].as_str() {
        Some(rv) if Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
            return Err(ApiError::stale(target(info, name)));
        }
        None if info.require_rv_on_update => {
            return Err(ApiError::invalid(
                &info.kind,
                &info.group,
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".to_string(),
                    message: "Invalid value: 0x0: must be specified for an update".to_string(),
                    field: "metadata.resourceVersion".to_string(),
                }],
            ));
        }
        _ => {}
    }
    let ctx = WriteCtx::new(call, info, scope);
    let w = commit(state, &ctx, Some(&old), unpresent(info, body))?;
    Ok(Reply::ok(present(info, &w.object)).with_warnings(w.warnings))
}

/// Takes from `incoming` only what a write in `scope` may change.
fn isolate(scope: Scope, old: Option<&Value>, incoming: Value) -> Value {
    match (scope, old) {
        (Scope::Status, Some(old)) => {
            let mut new = old.clone();
            new["status"] = incoming["status"].clone();
            if new["status"].is_null()
                && let Some(m) = new.as_object_mut()
            {
                m.remove("status");
            }
            new["metadata"]["managedFields"] = incoming["metadata"]["managedFields"].clone();
            new
        }
        (
            Scope::Main {
                status_separate: true,
            },
            _,
        ) => {
            let mut new = incoming;
            match old.map(|o| o["status"].clone()) {
                Some(s) if !s.is_null() => new["status"] = s,
                _ => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            new
        }
        _ => incoming,
    }
}

fn reason(kind: FieldErrorKind) -> &'static str {
    match kind {
        FieldErrorKind::Required => "FieldValueRequired",
        FieldErrorKind::Invalid => "FieldValueInvalid",
        FieldErrorKind::NotSupported => "FieldValueNotSupported",
        FieldErrorKind::TooLong => "FieldValueTooLong",
        FieldErrorKind::TooMany => "FieldValueTooMany",
        FieldErrorKind::Forbidden => "FieldValueForbidden",
        FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
        FieldErrorKind::Duplicate => "FieldValueDuplicate",
    }
}

/// Schema validation of a custom resource; returns the warnings of `fieldValidation=Warn`.
fn validate_custom(
    ctx: &WriteCtx<'_>,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = &ctx.info.schema else {
        return Ok(Vec::new());
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pruned = schema::validate(schema, obj, old).map_err(|errors| {
        let causes = errors
            .into_iter()
            .map(|e| Cause {
                reason: reason(e.kind).to_string(),
                message: e.message,
                field: e.path,
            })
            .collect();
        ApiError::invalid(&ctx.info.kind, &ctx.info.group, &name, causes)
    })?;
    let unknown: Vec<String> = pruned
        .iter()
        .map(|p| format!("unknown field {p:?}"))
        .collect();
    match ctx.validation {
        Validation::Strict if !unknown.is_empty() => Err(ApiError::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = ctx.info.kind,
            v = ctx.info.version,
        ))),
        Validation::Warn => Ok(unknown),
        _ => Ok(Vec::new()),
    }
}

/// Validates `incoming` as the next state of `old` (or a new object) and stores it.
pub fn commit(
    state: &mut State,
    ctx: &WriteCtx<'_>,
    old: Option<&Value>,
    incoming: Value,
) -> Result<Written, ApiError> {
    let (new, warnings) = next_state(ctx, old, incoming)?;
    if let Some(old) = old
        && meta::same_object(old, &new)
    {
        let object = old.clone();
        return Ok(Written { object, warnings });
    }
    if ctx.dry_run {
        return Ok(Written {
            object: new,
            warnings,
        });
    }
    let object = store(state, ctx.info, new);
    Ok(Written { object, warnings })
}

/// The object `incoming` becomes once the server's rules are applied, with any warnings.
fn next_state(
    ctx: &WriteCtx<'_>,
    old: Option<&Value>,
    incoming: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let info = ctx.info;
    let mut new = isolate(ctx.scope, old, incoming);
    if let Some(old) = old {
        meta::keep_immutable(old, &mut new);
    }
    kinds::prepare(info, &mut new, old)?;
    let warnings = validate_custom(ctx, &mut new, old)?;
    if let Some(old) = old {
        if let Some(c) = meta::check_new_finalizers(old, &new) {
            let name = new["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::invalid(&info.kind, &info.group, name, vec![c]));
        }
        if info.generation {
            meta::bump_generation(old, &mut new);
        }
    }
    if !ctx.applied {
        let api_version = info.api_version();
        let (manager, scope) = (&ctx.manager, ctx.scope);
        apply::track_update(old, &mut new, manager, scope, &info.structure, &api_version);
    }
    Ok((new, warnings))
}

/// Stores `new`, or removes it when it is being deleted and has no finalizers left.
fn store(state: &mut State, info: &ResourceInfo, new: Value) -> Value {
    if !meta::is_deleting(&new) || meta::has_finalizers(&new) {
        let stored = (*state.store.put(&info.storage, new)).clone();
        after_store(state, info, &stored);
        return stored;
    }
    let ns = new["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = new["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    state.store.put(&info.storage, new);
    let gone = state.store.remove(&info.storage, &ns, &name);
    let gone = gone.map(|g| (*g).clone()).unwrap_or_default();
    after_delete(state, info, &gone);
    gone
}

fn is_crd(info: &ResourceInfo) -> bool {
    info.group == "apiextensions.k8s.io" && info.plural == "customresourcedefinitions"
}

/// What a stored object sets off.
pub fn after_store(state: &mut State, info: &ResourceInfo, stored: &Value) {
    let name = stored["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if is_crd(info) {
        state.registry.set_custom(&name, crd::resources(stored));
    }
    if info.group.is_empty() && info.plural == "namespaces" && !meta::is_deleting(stored) {
        app::add_default_service_account(state, &name);
    }
}

/// What a removed object sets off: a CRD takes its resources along; the last object of a
/// terminating namespace lets the namespace go.
pub fn after_delete(state: &mut State, info: &ResourceInfo, gone: &Value) {
    if is_crd(info) {
        let name = gone["metadata"]["name"].as_str().unwrap_or_default();
        state.registry.remove_custom(name);
        state.store.remove_all(name);
    }
    if let Some(ns) = gone["metadata"]["namespace"].as_str() {
        super::remove::finish_namespace(state, ns);
    }
}
