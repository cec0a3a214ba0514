//! PATCH: merge, JSON and strategic patches of an existing object, and server-side apply
//! (which creates the object when it does not exist).

use serde_json::Value;

use super::write::{WriteCtx, commit};
use super::{Call, Reply, present, target, unpresent, usable_namespace};
use crate::app::State;
use crate::apply::{ApplyRequest, Scope, server_side_apply};
use crate::meta;
use crate::patch::{self, ACCEPTED, PatchError, PatchType};
use crate::resources::ResourceInfo;
use crate::status::ApiError;

pub fn patch(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
) -> Result<Reply, ApiError> {
    let kind = PatchType::from_content_type(&call.content_type)
        .filter(|k| !(*k == PatchType::Strategic && info.crd.is_some()))
        .ok_or_else(|| {
            let accepted: Vec<&str> = ACCEPTED
                .iter()
                .copied()
                .filter(|a| info.crd.is_none() || !a.contains("strategic"))
                .collect();
            ApiError::unsupported_media_type(&call.content_type, &accepted)
        })?;
    let old = state.store.get(&info.storage, ns.unwrap_or_default(), name);
    if kind == PatchType::Apply {
        return apply(state, call, info, ns, name, scope, old.as_deref());
    }
    let old = old.ok_or_else(|| ApiError::not_found(target(info, name)))?;
    let live = present(info, &old);
    let patched = patch::apply(kind, &live, &call.body, &info.structure).map_err(|e| match e {
        PatchError::Malformed(m) => ApiError::bad_request(m),
        PatchError::Rejected(m) => {
            let mut err = ApiError::invalid(&info.kind, &info.group, name, Vec::new());
            err.message = m;
            err.details = None;
            err
        }
    })?;
    if patched["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
        && !patched["metadata"]["resourceVersion"].is_null()
    {
        return Err(ApiError::stale(target(info, name)));
    }
    let ctx = WriteCtx::new(call, info, scope);
    let w = commit(state, &ctx, Some(&old), unpresent(info, patched))?;
    Ok(Reply::ok(present(info, &w.object)).with_warnings(w.warnings))
}

fn parse_config(call: &Call, info: &ResourceInfo, name: &str) -> Result<Value, ApiError> {
    let config: Value = serde_yaml::from_slice(&call.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "an apply configuration must be an object",
        ));
    }
    if config["apiVersion"].as_str() != Some(&info.api_version())
        || config["kind"].as_str() != Some(&info.kind)
    {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {}, Kind={}",
            config["apiVersion"].as_str().unwrap_or_default(),
            config["kind"].as_str().unwrap_or_default()
        )));
    }
    // An apply configuration may leave the name out (the URL names the object), as controllers
    // writing only `status` do; one that names another object is refused.
    let mut config = config;
    match config["metadata"]["name"].as_str() {
        Some(n) if n == name => Ok(config),
        None | Some("") => {
            config["metadata"]["name"] = Value::String(name.to_owned());
            Ok(config)
        }
        _ => Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            config["metadata"]["name"].as_str().unwrap_or_default()
        ))),
    }
}

fn apply(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    scope: Scope,
    old: Option<&Value>,
) -> Result<Reply, ApiError> {
    let Some(manager) = call.query.get("fieldManager") else {
        return Err(ApiError::bad_request(
            "PATCH with application/apply-patch+yaml requires the fieldManager query parameter",
        ));
    };
    let config = parse_config(call, info, name)?;
    let api_version = info.api_version();
    let req = ApplyRequest {
        manager,
        force: call.query.flag("force"),
        scope,
        schema: &info.structure,
        api_version: &api_version,
    };
    let mut ctx = WriteCtx::new(call, info, scope);
    ctx.applied = true;
    match old {
        Some(old) => {
            let wanted = config["metadata"]["resourceVersion"].as_str();
            if wanted.is_some_and(|rv| Some(rv) != old["metadata"]["resourceVersion"].as_str()) {
                return Err(ApiError::stale(target(info, name)));
            }
            let merged = server_side_apply(&present(info, old), &config, &req)?;
            let w = commit(state, &ctx, Some(old), unpresent(info, merged))?;
            Ok(Reply::ok(present(info, &w.object)).with_warnings(w.warnings))
        }
        None if scope == Scope::Status => Err(ApiError::not_found(target(info, name))),
        None => {
            usable_namespace(state, info, ns, name)?;
            let live = crate::apply::ssa::empty_live();
            let mut merged = server_side_apply(&live, &config, &req)?;
            merged["apiVersion"] = config["apiVersion"].clone();
            merged["kind"] = config["kind"].clone();
            let mut obj = unpresent(info, merged);
            meta::init_create(&mut obj, ns, name, info.generation);
            let w = commit(state, &ctx, None, obj)?;
            Ok(Reply::json(201, present(info, &w.object)).with_warnings(w.warnings))
        }
    }
}
