//! Errors on the data path, classified once into a closed [`ErrorKind`].
//!
//! The kind decides everything a user sees of a failure: the status code, the short body, the
//! `proxlet-error` response header that marks a response the sidecar made itself, and the
//! `kind` label of `proxlet_upstream_errors_total`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Response header set on every response the sidecar generates instead of the upstream.
pub const ERROR_HEADER: &str = "proxlet-error";

/// Which side failed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The upstream refused the connection or could not be reached in time.
    UpstreamConnect,
    /// The upstream closed or reset the connection before answering.
    UpstreamReset,
    /// The upstream did not send response headers within `upstream.response_timeout`.
    UpstreamTimeout,
    /// The downstream connection limit was reached.
    ConnectionLimit,
    /// The in-flight request limit was reached.
    ConcurrencyLimit,
    /// The client's request was malformed (bad framing, broken body).
    BadRequest,
    /// The client sent too many header fields.
    HeadersTooLarge,
    /// The sidecar is draining and takes no new requests.
    Draining,
    /// A FailClosed plugin trapped, overran its time cap or could not start.
    PluginFailed,
    /// A plugin reset the stream (`proxy_close_stream`).
    PluginReset,
}

impl ErrorKind {
    pub const ALL: [Self; 10] = [
        Self::UpstreamConnect,
        Self::UpstreamReset,
        Self::UpstreamTimeout,
        Self::ConnectionLimit,
        Self::ConcurrencyLimit,
        Self::BadRequest,
        Self::HeadersTooLarge,
        Self::Draining,
        Self::PluginFailed,
        Self::PluginReset,
    ];

    /// The metric label and `proxlet-error` header value.
    pub fn label(self) -> &'static str {
        match self {
            Self::UpstreamConnect => "upstream-connect",
            Self::UpstreamReset => "upstream-reset",
            Self::UpstreamTimeout => "upstream-timeout",
            Self::ConnectionLimit => "connection-limit",
            Self::ConcurrencyLimit => "concurrency-limit",
            Self::BadRequest => "bad-request",
            Self::HeadersTooLarge => "headers-too-large",
            Self::Draining => "draining",
            Self::PluginFailed => "plugin-failed",
            Self::PluginReset => "plugin-reset",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::UpstreamConnect | Self::UpstreamReset => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ConnectionLimit
            | Self::ConcurrencyLimit
            | Self::Draining
            | Self::PluginFailed
            | Self::PluginReset => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Self::UpstreamConnect => "upstream connect error\n",
            Self::UpstreamReset => "upstream reset before response\n",
            Self::UpstreamTimeout => "upstream response timeout\n",
            Self::ConnectionLimit => "too many connections\n",
            Self::ConcurrencyLimit => "too many requests in flight\n",
            Self::BadRequest => "bad request\n",
            Self::HeadersTooLarge => "request header fields too large\n",
            Self::Draining => "shutting down\n",
            Self::PluginFailed => "plugin failed\n",
            Self::PluginReset => "stream reset by a plugin\n",
        }
    }

    /// Whether the failure is on the upstream side (the request may be retried elsewhere).
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect | Self::UpstreamReset | Self::UpstreamTimeout
        )
    }

    /// The local response for this kind, with its marker header.
    pub fn response(self) -> Response<Full<Bytes>> {
        let mut res = Response::new(Full::new(Bytes::from_static(self.body().as_bytes())));
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        h.insert(ERROR_HEADER, HeaderValue::from_static(self.label()));
        res
    }
}
