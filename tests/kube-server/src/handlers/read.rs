//! GET of one object and LIST: selectors, `limit` and `continue`, `resourceVersion` and
//! `resourceVersionMatch`, and the Table and metadata-only representations.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Call, Reply, columns, partial, present, render_one, target};
use crate::app::State;
use crate::request::Accept;
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector, supported_fields};
use crate::status::ApiError;
use crate::table;

pub fn get(
    state: &State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> Result<Reply, ApiError> {
    let obj = state
        .store
        .get(&info.storage, ns.unwrap_or_default(), name)
        .ok_or_else(|| ApiError::not_found(target(info, name)))?;
    Ok(Reply::ok(render_one(
        info,
        &call.accept,
        &call.query,
        present(info, &obj),
    )))
}

/// Which objects a list or watch wants.
#[derive(Debug, Clone)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn parse(call: &Call, info: &ResourceInfo, ns: Option<&str>) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(call.query.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(
            call.query.get("fieldSelector").unwrap_or_default(),
            &supported_fields(&info.plural),
        )
        .map_err(ApiError::bad_request)?;
        Ok(Filter {
            namespace: ns.map(str::to_string),
            labels,
            fields,
        })
    }

    /// Whether a stored object passes.
    pub fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

fn key(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or_default(),
        obj["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn encode_continue(rv: u64, after: &str) -> String {
    STANDARD.encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": after}).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["start"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// Checks `resourceVersion` / `resourceVersionMatch` against the history kept.
pub fn check_rv(state: &State, call: &Call) -> Result<(), ApiError> {
    let Some(rv) = call.query.get("resourceVersion") else {
        return Ok(());
    };
    let n: u64 = rv.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid value: {rv:?}: resourceVersion must be an integer"
        ))
    })?;
    if call.query.get("resourceVersionMatch") == Some("Exact")
        && n != 0
        && n < state.store.oldest_rv()
    {
        return Err(ApiError::expired(n, state.store.oldest_rv()));
    }
    Ok(())
}

pub fn list(
    state: &State,
    call: &Call,
    info: &ResourceInfo,
    ns: Option<&str>,
) -> Result<Reply, ApiError> {
    let filter = Filter::parse(call, info, ns)?;
    check_rv(state, call)?;
    let rv = state.store.current_rv();
    let mut items: Vec<Arc<Value>> = state
        .store
        .list(&info.storage, ns)
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    if let Some(token) = call.query.get("continue") {
        let (_, after) = decode_continue(token)?;
        items.retain(|o| key(o) > after);
    }
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    let limit = call
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    if limit > 0 && call.query.get("resourceVersion") != Some("0") && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            list_meta["continue"] = json!(encode_continue(rv, &key(last)));
            list_meta["remainingItemCount"] = json!(remaining);
        }
    }
    let items: Vec<Value> = items.iter().map(|o| present(info, o)).collect();
    let body = match call.accept {
        Accept::Table(v) => {
            let include = call.query.get("includeObject").unwrap_or("Metadata");
            let mut t = table::to_table(&columns(info), &items, include, list_meta);
            t["apiVersion"] = json!(format!("meta.k8s.io/{v}"));
            t
        }
        Accept::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": items.iter().map(partial).collect::<Vec<_>>(),
        }),
        _ => json!({
            "kind": info.list_kind,
            "apiVersion": info.api_version(),
            "metadata": list_meta,
            "items": items,
        }),
    };
    Ok(Reply::ok(body))
}
