//! The downstream byte stream as the listener sees it: activity for the idle timeout, and
//! the bytes fed to the HTTP/1.1 framing [`Tracker`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::framing::Tracker;

/// State shared between a connection's stream and its requests.
#[derive(Debug)]
pub struct ConnState {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte read or written.
    last_activity: AtomicU64,
    /// The framing tracker, while it still follows the stream.
    pub framing: Mutex<Option<Tracker>>,
}

impl ConnState {
    pub fn new(max_head: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last_activity: AtomicU64::new(0),
            framing: Mutex::new(Some(Tracker::new(max_head))),
        })
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_activity.store(now, Ordering::Relaxed);
    }

    /// How long since a byte moved on the connection.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = self.last_activity.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(last))
    }

    /// Whether the `index`-th request of the connection had ambiguous framing.
    pub fn ambiguous(&self, index: u64) -> bool {
        match self.framing.lock() {
            Ok(t) => t.as_ref().is_some_and(|t| t.is_ambiguous(index)),
            Err(_) => false,
        }
    }
}

pin_project_lite::pin_project! {
    /// Wraps a client stream (TCP or TLS).
    pub struct Watched<S> {
        #[pin]
        inner: S,
        state: Arc<ConnState>,
    }
}

impl<S> Watched<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<S: AsyncRead> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let polled = this.inner.poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.state.touch();
            if let Ok(mut guard) = this.state.framing.lock()
                && let Some(tracker) = guard.as_mut()
            {
                tracker.feed(read);
                // A tracker that stepped aside with no verdict has nothing left to say.
                if !tracker.active() && !tracker.flagged() {
                    *guard = None;
                }
            }
        }
        polled
    }
}

impl<S: AsyncWrite> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        this.state.touch();
        this.inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        this.state.touch();
        this.inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
