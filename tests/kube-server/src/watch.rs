//! Watches: where one starts (the current objects, or the history after a `resourceVersion`,
//! or 410 Expired when that history is gone), the initial-events-end bookmark of streaming
//! lists, selector transitions (an object leaving a selector is DELETED for that watch), and the
//! stream itself, which ends on `timeoutSeconds` or when the client goes away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::app::State;
use crate::handlers::read::Filter;
use crate::handlers::{Call, present, render_one};
use crate::request::{Accept, Query};
use crate::resources::ResourceInfo;
use crate::status::ApiError;
use crate::store::{Change, ChangeKind, Replay};

const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Everything a watch stream needs, decided under the state lock.
pub struct Plan {
    initial: Vec<Value>,
    rx: broadcast::Receiver<Arc<Change>>,
    info: Arc<ResourceInfo>,
    filter: Filter,
    from_rv: u64,
    bookmarks: bool,
    timeout: Duration,
    accept: Accept,
    query: Query,
}

fn event(kind: &str, object: Value) -> Value {
    let mut e = json!({ "type": kind });
    e["object"] = object;
    e
}

fn bookmark(info: &ResourceInfo, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event(
        "BOOKMARK",
        json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
    )
}

fn expired(e: &ApiError) -> Value {
    event("ERROR", e.to_status())
}

pub fn plan(
    state: &State,
    call: &Call,
    info: &Arc<ResourceInfo>,
    ns: Option<&str>,
) -> Result<Plan, ApiError> {
    let filter = Filter::parse(call, info, ns)?;
    let rv = call.query.get("resourceVersion").unwrap_or("");
    let bookmarks = call.query.flag("allowWatchBookmarks");
    let send_initial = call.query.get("sendInitialEvents");
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let current = state.store.current_rv();
    let mut p = Plan {
        initial: Vec::new(),
        rx: state.store.subscribe(),
        info: info.clone(),
        filter,
        from_rv: current,
        bookmarks,
        timeout,
        accept: call.accept.clone(),
        query: call.query.clone(),
    };
    let from_scratch = rv.is_empty() || rv == "0" || send_initial == Some("true");
    if from_scratch && send_initial != Some("false") {
        for obj in state.store.list(&info.storage, ns) {
            if p.filter.matches(&obj) {
                p.initial.push(event("ADDED", p.render(&obj)));
            }
        }
        if send_initial == Some("true") && bookmarks {
            p.initial.push(bookmark(info, current, true));
        }
        return Ok(p);
    }
    let n: u64 = rv.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid value: {rv:?}: resourceVersion must be an integer"
        ))
    })?;
    match state.store.replay(n) {
        Replay::Expired { oldest } => p.initial.push(expired(&ApiError::expired(n, oldest))),
        Replay::Changes(changes) => {
            for c in changes {
                if let Some(e) = p.event_for(&c) {
                    p.initial.push(e);
                }
            }
        }
    }
    Ok(p)
}

impl Plan {
    fn render(&self, stored: &Value) -> Value {
        render_one(
            &self.info,
            &self.accept,
            &self.query,
            present(&self.info, stored),
        )
    }

    /// The event this watch sees for a change, if any.
    fn event_for(&self, c: &Change) -> Option<Value> {
        if c.storage != self.info.storage {
            return None;
        }
        let now = self.filter.matches(&c.object);
        let before = c.previous.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match c.kind {
            ChangeKind::Added if now => "ADDED",
            ChangeKind::Deleted if before || now => "DELETED",
            ChangeKind::Modified if now && before => "MODIFIED",
            ChangeKind::Modified if now => "ADDED",
            ChangeKind::Modified if before => "DELETED",
            _ => return None,
        };
        Some(event(kind, self.render(&c.object)))
    }

    /// Runs the watch, sending newline-delimited events until it ends.
    pub async fn run(mut self, tx: mpsc::Sender<Result<Frame<Bytes>, Infallible>>) {
        let send = |v: &Value| {
            let mut line = v.to_string().into_bytes();
            line.push(b'\n');
            Ok(Frame::data(Bytes::from(line)))
        };
        for e in &self.initial {
            if tx.send(send(e)).await.is_err() {
                return;
            }
        }
        if self.initial.iter().any(|e| e["type"] == "ERROR") {
            return;
        }
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        let mut last_rv = self.from_rv;
        loop {
            let out = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if self.bookmarks => Some(bookmark(&self.info, last_rv, false)),
                r = self.rx.recv() => match r {
                    Ok(c) => {
                        last_rv = last_rv.max(c.rv);
                        if c.rv <= self.from_rv { None } else { self.event_for(&c) }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(send(&expired(&ApiError::expired(last_rv, last_rv)))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(e) = out
                && tx.send(send(&e)).await.is_err()
            {
                return;
            }
        }
    }
}
