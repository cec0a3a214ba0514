//! Body wrappers for the data path: they stream frames through untouched while counting bytes,
//! noticing a broken client body, and recording a request's duration when its response ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use prometheus::IntCounter;

use crate::metrics::Protocol;
use crate::proxy::InFlight;
use crate::wasm::body_pass::ChannelBody;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: the upstream's as it streams, a local one, or what the plugins' body hooks
/// let through.
pub type ReplyBody = Either<Either<Incoming, Full<Bytes>>, ChannelBody>;

pub fn upstream(b: Incoming) -> ReplyBody {
    Either::Left(Either::Left(b))
}

pub fn local(b: Full<Bytes>) -> ReplyBody {
    Either::Left(Either::Right(b))
}

pin_project_lite::pin_project! {
    /// A client's request body on its way upstream.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        bytes: IntCounter,
        broken: Arc<AtomicBool>,
    }
}

impl RequestBody {
    /// Wraps `inner`; `broken` is set if the client's body turns out malformed or cut short.
    pub fn new(inner: Incoming, bytes: IntCounter, broken: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            bytes,
            broken,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes.inc_by(data.len() as u64);
                }
            }
            Poll::Ready(Some(Err(_))) => this.broken.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a response's end reports: its duration and bytes.
pub struct ResponseStats {
    pub start: Instant,
    pub protocol: Protocol,
    /// Held until the response ends: the request counts as in flight until then.
    pub in_flight: InFlight,
    /// The request's passage through the plugins; dropping it runs their log hooks.
    pub chain: Option<crate::wasm::chain::ChainStream>,
}

pin_project_lite::pin_project! {
    /// A response on its way to the client: the upstream's streamed body or a local one.
    pub struct ResponseBody {
        #[pin]
        inner: ReplyBody,
        stats: ResponseStats,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let stats = &this.stats;
            stats
                .in_flight
                .metrics()
                .request_duration(stats.protocol)
                .observe(stats.start.elapsed().as_secs_f64());
        }
    }
}

impl ResponseBody {
    pub fn new(inner: ReplyBody, stats: ResponseStats) -> Self {
        Self { inner, stats }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.stats
                .in_flight
                .metrics()
                .response_bytes
                .inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
