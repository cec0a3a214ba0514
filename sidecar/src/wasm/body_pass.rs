//! A body's passage through the body hooks of the plugins allowed to see bodies
//! (`permissions.body`). Plugins without that permission never slow a body down: when no plugin
//! of the chain has it, bodies bypass this module entirely.
//!
//! Each chunk goes through the plugins in hook order. A plugin that pauses keeps the data it
//! has seen (up to `limits.max_buffered_body_bytes`) and is called again with everything it
//! holds when the next chunk arrives, as in Envoy; when it continues, what it holds (possibly
//! rewritten) moves on to the next plugin. At the end of the body a pausing plugin is waited
//! for until it resumes the stream or answers it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::chain::Chain;
use super::instance::{Action, HookError};
use super::plugin::Binding;
use super::stream::{Phase, Stream};
use crate::body::BoxError;
use crate::config::plugins::FailurePolicy;

/// Which body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// Why a body stopped: a plugin answered, reset, failed closed, or held too much.
#[derive(Debug, thiserror::Error)]
#[error("body stopped by plugin hook: {0}")]
pub struct Stopped(&'static str);

pub struct BodyPass {
    pub(super) chain: Arc<Chain>,
    pub(super) stream: Arc<Stream>,
    pub(super) bindings: Vec<Option<Binding>>,
    pub(super) direction: Direction,
    /// (plugin index, data it holds), in hook order.
    pub(super) held: Vec<(usize, BytesMut)>,
    pub(super) cap: usize,
}

impl BodyPass {
    /// Runs the body hooks over `body` in a task; returns the body to send on.
    pub fn spawn<B>(mut self, body: B) -> ChannelBody
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut body = body;
            loop {
                let polled = body.frame().await;
                let done = polled.is_none();
                let frame = match polled {
                    None => None,
                    Some(Ok(f)) => Some(f),
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let out = match frame {
                    None => self
                        .data(Bytes::new(), true)
                        .await
                        .map(|d| vec![Frame::data(d)]),
                    Some(f) => match f.into_data() {
                        Ok(d) => self.data(d, false).await.map(|d| vec![Frame::data(d)]),
                        Err(f) => match f.into_trailers() {
                            Ok(t) => self.trailers(t).await,
                            Err(_) => Ok(Vec::new()),
                        },
                    },
                };
                let end = done || frame_is_last(&out);
                match out {
                    Ok(frames) => {
                        for f in frames {
                            if f.data_ref().is_some_and(Bytes::is_empty) {
                                continue;
                            }
                            if tx.send(Ok(f)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(stopped) => {
                        let _ = tx.send(Err(Box::new(stopped))).await;
                        return;
                    }
                }
                if end {
                    return;
                }
            }
        });
        ChannelBody { rx }
    }

    /// One chunk (`last`: the body ends with it); returns what moves on now.
    async fn data(&mut self, chunk: Bytes, last: bool) -> Result<Bytes, Stopped> {
        let mut carry = chunk;
        for k in 0..self.held.len() {
            let (i, _) = self.held[k];
            self.held[k].1.extend_from_slice(&carry);
            if self.held[k].1.is_empty() && !last {
                continue;
            }
            if self.held[k].1.len() > self.cap {
                return Err(Stopped("buffered body over limits.max_buffered_body_bytes"));
            }
            let action = self.call(k, i, last)?;
            if action == Action::Pause && last {
                self.wait(k).await?;
            } else if action == Action::Pause {
                return Ok(Bytes::new());
            }
            carry = self.held[k].1.split().freeze();
        }
        Ok(carry)
    }

    /// Trailers end the body: the held data goes through with `end_of_stream`, then the
    /// trailer hooks run.
    async fn trailers(&mut self, trailers: HeaderMap) -> Result<Vec<Frame<Bytes>>, Stopped> {
        let data = self.data(Bytes::new(), true).await?;
        let count = trailers.len();
        {
            let mut d = self.stream.lock();
            d.phase = match self.direction {
                Direction::Request => Phase::RequestTrailers,
                Direction::Response => Phase::ResponseTrailers,
            };
            match self.direction {
                Direction::Request => d.request_trailers = Some(trailers),
                Direction::Response => d.response_trailers = Some(trailers),
            }
        }
        for k in 0..self.held.len() {
            let (i, _) = self.held[k];
            let Some(b) = self.bindings[i] else { continue };
            let plugin = self.chain.plugins[i].clone();
            let direction = self.direction;
            let r = plugin.with_slot(b.slot, Some(b.generation), |inst| match direction {
                Direction::Request => inst.request_trailers(b.context, count),
                Direction::Response => inst.response_trailers(b.context, count),
            });
            if matches!(r, Ok((Err(_), _)) | Err(_))
                && plugin.settings.failure_policy == FailurePolicy::FailClosed
            {
                return Err(Stopped("plugin failed in its trailers hook"));
            }
            if self.stream.lock().finished() {
                return Err(Stopped("plugin answered or reset the stream"));
            }
        }
        let mut d = self.stream.lock();
        let trailers = match self.direction {
            Direction::Request => d.request_trailers.take(),
            Direction::Response => d.response_trailers.take(),
        };
        let mut out = vec![Frame::data(data)];
        if let Some(t) = trailers {
            out.push(Frame::trailers(t));
        }
        Ok(out)
    }

    /// Calls plugin `i`'s body hook with the data it holds (`held[k]`).
    fn call(&mut self, k: usize, i: usize, last: bool) -> Result<Action, Stopped> {
        let Some(b) = self.bindings[i] else {
            return Ok(Action::Continue);
        };
        let size = self.held[k].1.len();
        self.swap_in(k);
        let plugin = self.chain.plugins[i].clone();
        let direction = self.direction;
        let call = |b: Binding| {
            plugin.with_slot(b.slot, Some(b.generation), |inst| match direction {
                Direction::Request => inst.request_body(b.context, size, last),
                Direction::Response => inst.response_body(b.context, size, last),
            })
        };
        let r = match call(b) {
            // The context died with an instance another request trapped: go on in a fresh one.
            Err(HookError::Lost) => self.rebind(i).and_then(call),
            other => other,
        };
        self.swap_out(k);
        let action = match r {
            Ok((Ok(a), _)) => a,
            _ if plugin.settings.failure_policy == FailurePolicy::FailOpen => {
                plugin.shared.metrics.fail_open.inc();
                self.bindings[i] = None;
                Action::Continue
            }
            _ => {
                plugin.shared.metrics.local_responses.inc();
                self.stream.lock().plugin_failed = true;
                return Err(Stopped("plugin failed in its body hook"));
            }
        };
        if self.stream.lock().finished() {
            plugin.shared.metrics.local_responses.inc();
            return Err(Stopped("plugin answered or reset the stream"));
        }
        Ok(action)
    }

    /// A fresh context for the stream in plugin `i` (its old one died with its instance).
    fn rebind(&mut self, i: usize) -> Result<Binding, HookError> {
        let b = self.chain.plugins[i].open_stream(self.stream.clone())?;
        self.bindings[i] = Some(b);
        self.stream.lock().rebound.push((i, b));
        Ok(b)
    }

    /// Waits, holding the data in the stream's buffer, until plugin `k` resumes the stream.
    async fn wait(&mut self, k: usize) -> Result<(), Stopped> {
        self.swap_in(k);
        let result = loop {
            {
                let mut d = self.stream.lock();
                if d.finished() {
                    break Err(Stopped("plugin answered or reset the stream"));
                }
                let flag = match self.direction {
                    Direction::Request => &mut d.resume_request,
                    Direction::Response => &mut d.resume_response,
                };
                if std::mem::take(flag) {
                    break Ok(());
                }
            }
            self.stream.wait().await;
        };
        self.swap_out(k);
        result
    }

    /// Puts `held[k]` in the stream's body buffer, where the plugin's host calls see it.
    fn swap_in(&mut self, k: usize) {
        let mut d = self.stream.lock();
        let held = std::mem::take(&mut self.held[k].1);
        match self.direction {
            Direction::Request => {
                d.phase = Phase::RequestBody;
                d.request_body = held;
            }
            Direction::Response => {
                d.phase = Phase::ResponseBody;
                d.response_body = held;
            }
        }
    }

    fn swap_out(&mut self, k: usize) {
        let mut d = self.stream.lock();
        self.held[k].1 = match self.direction {
            Direction::Request => std::mem::take(&mut d.request_body),
            Direction::Response => std::mem::take(&mut d.response_body),
        };
    }
}

fn frame_is_last(out: &Result<Vec<Frame<Bytes>>, Stopped>) -> bool {
    match out {
        Ok(frames) => frames.iter().any(Frame::is_trailers),
        Err(_) => true,
    }
}

/// The body a [`BodyPass`] task produces.
pub struct ChannelBody {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }
}
