//! DELETE and DELETE of a collection: preconditions, dry run, finalizers (the object stays,
//! marked with `deletionTimestamp`, until they are gone), and namespaces, which take their
//! objects with them.

use serde_json::{Value, json};

use super::read::Filter;
use super::write::after_delete;
use super::{Call, Reply, present, target};
use crate::app::State;
use crate::meta;
use crate::resources::ResourceInfo;
use crate::status::{self, ApiError};

fn options(call: &Call) -> Value {
    serde_json::from_slice(&call.body).unwrap_or(Value::Null)
}

fn check_preconditions(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    opts: &Value,
) -> Result<(), ApiError> {
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        let actual = obj["metadata"]["uid"].as_str().unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict(
                target(info, name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        let actual = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if rv != actual {
            return Err(ApiError::conflict(
                target(info, name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Deletes one stored object; returns what the reply shows of it.
fn delete_one(state: &mut State, info: &ResourceInfo, obj: &Value, dry_run: bool) -> Value {
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if dry_run {
        return obj.clone();
    }
    if info.group.is_empty() && info.plural == "namespaces" {
        return delete_namespace(state, obj);
    }
    if meta::has_finalizers(obj) {
        if meta::is_deleting(obj) {
            return obj.clone();
        }
        let mut marked = obj.clone();
        marked["metadata"]["deletionTimestamp"] = json!(meta::now());
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        return (*state.store.put(&info.storage, marked)).clone();
    }
    match state.store.remove(&info.storage, &ns, &name) {
        Some(gone) => {
            let gone = (*gone).clone();
            after_delete(state, info, &gone);
            gone
        }
        None => obj.clone(),
    }
}

pub fn delete(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<Reply, ApiError> {
    let obj = state
        .store
        .get(&info.storage, ns.unwrap_or_default(), name)
        .ok_or_else(|| ApiError::not_found(target(info, name)))?;
    let opts = options(call);
    check_preconditions(info, name, &obj, &opts)?;
    let dry_run = call.query.get("dryRun") == Some("All")
        || opts["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let shown = delete_one(state, info, &obj, dry_run);
    let still_there = meta::is_deleting(&shown)
        && state
            .store
            .get(&info.storage, ns.unwrap_or_default(), name)
            .is_some();
    if info.delete_returns_object || still_there {
        return Ok(Reply::ok(present(info, &shown)));
    }
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
    Ok(Reply::ok(status::success(target(info, name), uid)))
}

pub fn collection(
    state: &mut State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
) -> Result<Reply, ApiError> {
    let filter = Filter::parse(call, info, ns)?;
    let dry_run = call.query.get("dryRun") == Some("All");
    let targets: Vec<Value> = state
        .store
        .list(&info.storage, ns)
        .into_iter()
        .filter(|o| filter.matches(o))
        .map(|o| (*o).clone())
        .collect();
    let items: Vec<Value> = targets
        .iter()
        .map(|o| present(info, &delete_one(state, info, o, dry_run)))
        .collect();
    Ok(Reply::ok(json!({
        "kind": info.list_kind,
        "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": state.store.current_rv().to_string()},
        "items": items,
    })))
}

/// Marks a namespace Terminating and deletes what it holds; it goes once it is empty.
fn delete_namespace(state: &mut State, ns_obj: &Value) -> Value {
    let ns = ns_obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !meta::is_deleting(ns_obj) {
        let mut marked = ns_obj.clone();
        marked["metadata"]["deletionTimestamp"] = json!(meta::now());
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        marked["status"]["phase"] = json!("Terminating");
        state.store.put("namespaces", marked);
    }
    for (storage, name) in state.store.keys_in_namespace(&ns) {
        let Some(obj) = state.store.get(&storage, &ns, &name) else {
            continue;
        };
        if meta::has_finalizers(&obj) {
            if !meta::is_deleting(&obj) {
                let mut marked = (*obj).clone();
                marked["metadata"]["deletionTimestamp"] = json!(meta::now());
                marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                state.store.put(&storage, marked);
            }
        } else {
            state.store.remove(&storage, &ns, &name);
        }
    }
    finish_namespace(state, &ns);
    state
        .store
        .get("namespaces", "", &ns)
        .map(|o| (*o).clone())
        .unwrap_or_else(|| ns_obj.clone())
}

/// Removes a terminating namespace once nothing is left in it.
pub fn finish_namespace(state: &mut State, ns: &str) {
    let Some(obj) = state.store.get("namespaces", "", ns) else {
        return;
    };
    if meta::is_deleting(&obj) && state.store.keys_in_namespace(ns).is_empty() {
        state.store.remove("namespaces", "", ns);
    }
}
