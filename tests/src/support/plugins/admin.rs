//! The admin API's view of plugins: `GET /api/plugins` and `GET /api/plugins/{name}/logs`.
//!
//! The JSON is read field by field: a documented field that is missing or of the wrong type fails
//! the test that reads it, so the tests also pin the API's shape.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Map, Value};

use crate::support::{sidecar::Sidecar, wait};

/// One plugin as `GET /api/plugins` shows it.
#[derive(Clone, Debug)]
pub struct PluginStatus {
    pub name: String,
    /// `request` or `background`.
    pub kind: String,
    pub root_id: String,
    pub vm_id: String,
    pub source: String,
    pub digest: String,
    pub abi: String,
    pub phase: Option<String>,
    pub priority: i64,
    pub failure_policy: String,
    /// `running` or `failed`.
    pub state: String,
    pub last_error: Option<String>,
    /// When the last error happened (RFC 3339), with it.
    pub last_error_at: Option<String>,
    /// Instances running, of `pool`.
    pub instances: u64,
    pub pool: u64,
    /// What looked wrong when the plugin loaded.
    pub warnings: Vec<String>,
    /// Refusals by the plugin's permissions, by call.
    pub denied: BTreeMap<String, u64>,
    /// `compiled`, `memory-cache` or `disk-cache`, and how long it took.
    pub compile_source: String,
    pub compile_ms: f64,
    pub counters: Counters,
}

/// The `counters` object of a [`PluginStatus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub request_headers_calls: u64,
    pub response_headers_calls: u64,
    pub log_calls: u64,
    pub tick_calls: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_cap_hits: u64,
    pub fail_open_skips: u64,
    pub local_responses: u64,
}

/// One line of `GET /api/plugins/{name}/logs`.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub time_ms: u64,
    /// `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub level: String,
    pub message: String,
}

/// Every plugin of the chain, as `GET /api/plugins` lists them.
pub async fn plugins(sidecar: &Sidecar) -> Result<Vec<PluginStatus>> {
    let json = admin_json(sidecar, "/api/plugins").await?;
    let list = json
        .as_array()
        .context("/api/plugins is not a JSON array")?;
    list.iter()
        .map(|item| PluginStatus::from_json(item).with_context(|| format!("in {item}")))
        .collect()
}

/// The plugin called `name` in `GET /api/plugins`.
pub async fn plugin(sidecar: &Sidecar, name: &str) -> Result<PluginStatus> {
    let all = plugins(sidecar).await?;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter()
        .find(|p| p.name == name)
        .with_context(|| format!("no plugin {name:?} in /api/plugins (there are {names:?})"))
}

/// The log lines of plugin `name`, oldest first.
pub async fn logs(sidecar: &Sidecar, name: &str) -> Result<Vec<LogLine>> {
    let path = format!("/api/plugins/{name}/logs");
    let json = admin_json(sidecar, &path).await?;
    let list = json
        .as_array()
        .with_context(|| format!("{path} is not a JSON array"))?;
    list.iter()
        .map(|item| LogLine::from_json(item).with_context(|| format!("in {item}")))
        .collect()
}

/// Waits up to 5 s for a log line of plugin `name` that `matches`, described by `what`.
pub async fn wait_for_log(
    sidecar: &Sidecar,
    name: &str,
    what: &str,
    matches: impl Fn(&LogLine) -> bool,
) -> Result<LogLine> {
    let matches = &matches;
    let found = wait::until(what, Duration::from_secs(5), || async move {
        let lines = logs(sidecar, name).await.ok()?;
        lines.into_iter().find(|line| matches(line))
    })
    .await;
    match found {
        Ok(line) => Ok(line),
        Err(error) => {
            let lines = logs(sidecar, name).await.unwrap_or_default();
            Err(error.context(format!("plugin {name:?} logged: {lines:#?}")))
        }
    }
}

async fn admin_json(sidecar: &Sidecar, path: &str) -> Result<Value> {
    let reply = sidecar.admin_get(path).await?;
    ensure!(
        reply.status == 200,
        "GET {path} answered {}: {}",
        reply.status,
        reply.text()
    );
    serde_json::from_slice(&reply.body)
        .with_context(|| format!("GET {path} is not JSON: {}", reply.text()))
}

fn object(value: &Value) -> Result<&Map<String, Value>> {
    value.as_object().context("not a JSON object")
}

fn string(object: &Map<String, Value>, field: &str) -> Result<String> {
    let value = object.get(field).with_context(|| format!("no `{field}`"))?;
    let text = value
        .as_str()
        .with_context(|| format!("`{field}` is not a string: {value}"))?;
    Ok(text.to_owned())
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match object.get(field).with_context(|| format!("no `{field}`"))? {
        Value::Null => Ok(None),
        _ => string(object, field).map(Some),
    }
}

fn integer(object: &Map<String, Value>, field: &str) -> Result<i64> {
    let value = object.get(field).with_context(|| format!("no `{field}`"))?;
    value
        .as_i64()
        .with_context(|| format!("`{field}` is not an integer: {value}"))
}

fn count(object: &Map<String, Value>, field: &str) -> Result<u64> {
    let value = object.get(field).with_context(|| format!("no `{field}`"))?;
    value
        .as_u64()
        .with_context(|| format!("`{field}` is not a count: {value}"))
}

impl PluginStatus {
    fn from_json(value: &Value) -> Result<Self> {
        let o = object(value)?;
        let counters = object(o.get("counters").context("no `counters`")?)?;
        let compile = object(o.get("compile").context("no `compile`")?)?;
        let warnings = o
            .get("warnings")
            .and_then(Value::as_array)
            .context("no `warnings` list")?
            .iter()
            .map(|w| {
                w.as_str()
                    .map(str::to_owned)
                    .context("a warning is not a string")
            })
            .collect::<Result<_>>()?;
        let denied = object(o.get("denied").context("no `denied`")?)?
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_u64().context("a denial is not a count")?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            name: string(o, "name")?,
            kind: string(o, "kind")?,
            root_id: string(o, "root_id")?,
            vm_id: string(o, "vm_id")?,
            source: string(o, "source")?,
            digest: string(o, "digest")?,
            abi: string(o, "abi")?,
            phase: optional_string(o, "phase")?,
            priority: integer(o, "priority")?,
            failure_policy: string(o, "failure_policy")?,
            state: string(o, "state")?,
            last_error: optional_string(o, "last_error")?,
            last_error_at: optional_string(o, "last_error_at")?,
            instances: count(o, "instances")?,
            pool: count(o, "pool")?,
            warnings,
            denied,
            compile_source: string(compile, "source")?,
            compile_ms: compile
                .get("ms")
                .and_then(Value::as_f64)
                .context("`compile.ms` is not a number")?,
            counters: Counters {
                request_headers_calls: count(counters, "request_headers_calls")?,
                response_headers_calls: count(counters, "response_headers_calls")?,
                log_calls: count(counters, "log_calls")?,
                tick_calls: count(counters, "tick_calls")?,
                traps: count(counters, "traps")?,
                timeouts: count(counters, "timeouts")?,
                memory_cap_hits: count(counters, "memory_cap_hits")?,
                fail_open_skips: count(counters, "fail_open_skips")?,
                local_responses: count(counters, "local_responses")?,
            },
        })
    }
}

impl LogLine {
    fn from_json(value: &Value) -> Result<Self> {
        let o = object(value)?;
        Ok(Self {
            time_ms: count(o, "time_ms")?,
            level: string(o, "level")?,
            message: string(o, "message")?,
        })
    }
}
