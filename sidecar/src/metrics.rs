//! The sidecar's Prometheus metrics.
//!
//! Every series a request touches is resolved once, at start-up, into plain counters and
//! histograms indexed by closed enums ([`Method`], [`CodeClass`], [`Protocol`], [`ErrorKind`]),
//! so the request path does no label hashing and no string building.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::error::ErrorKind;

/// Downstream protocol of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub const ALL: [Self; 2] = [Self::Http1, Self::Http2];

    pub fn of(version: http::Version) -> Self {
        if version == http::Version::HTTP_2 {
            Self::Http2
        } else {
            Self::Http1
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Http1 => "http1",
            Self::Http2 => "http2",
        }
    }
}

/// Request methods, with everything unusual folded into `other` to bound cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
    Other,
}

impl Method {
    const ALL: [Self; 10] = [
        Self::Get,
        Self::Head,
        Self::Post,
        Self::Put,
        Self::Delete,
        Self::Patch,
        Self::Options,
        Self::Connect,
        Self::Trace,
        Self::Other,
    ];

    pub fn of(m: &http::Method) -> Self {
        match *m {
            http::Method::GET => Self::Get,
            http::Method::HEAD => Self::Head,
            http::Method::POST => Self::Post,
            http::Method::PUT => Self::Put,
            http::Method::DELETE => Self::Delete,
            http::Method::PATCH => Self::Patch,
            http::Method::OPTIONS => Self::Options,
            http::Method::CONNECT => Self::Connect,
            http::Method::TRACE => Self::Trace,
            _ => Self::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Options => "OPTIONS",
            Self::Connect => "CONNECT",
            Self::Trace => "TRACE",
            Self::Other => "other",
        }
    }
}

/// The class of a response status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    Informational,
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl CodeClass {
    const ALL: [Self; 5] = [
        Self::Informational,
        Self::Success,
        Self::Redirection,
        Self::ClientError,
        Self::ServerError,
    ];

    pub fn of(status: http::StatusCode) -> Self {
        match status.as_u16() {
            0..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
        }
    }
}

/// Request latency buckets, in seconds: 100 µs to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Every metric of the proxy, registered in one registry served by the admin server.
pub struct Metrics {
    registry: Registry,
    requests: Vec<IntCounter>,
    request_duration: [Histogram; 2],
    pub upstream_duration: Histogram,
    pub request_bytes: IntCounter,
    pub response_bytes: IntCounter,
    pub connections_open: IntGauge,
    connections: [IntCounter; 2],
    pub streams_open: IntGauge,
    upstream_errors: Vec<IntCounter>,
}

impl Metrics {
    /// Registers every series. Fails only on a programming error (a duplicate or invalid name).
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "proxlet_requests_total",
                "Requests answered, by method, status code class and downstream protocol.",
            ),
            &["method", "code_class", "protocol"],
        )?;
        let mut requests = Vec::with_capacity(Method::ALL.len() * CodeClass::ALL.len() * 2);
        for m in Method::ALL {
            for c in CodeClass::ALL {
                for p in Protocol::ALL {
                    requests.push(requests_vec.get_metric_with_label_values(&[
                        m.label(),
                        c.label(),
                        p.label(),
                    ])?);
                }
            }
        }
        let duration_vec = prometheus::HistogramVec::new(
            HistogramOpts::new("proxlet_request_duration_seconds", "Time from a request's arrival to the end of its response body, by downstream protocol.")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["protocol"],
        )?;
        let request_duration = Protocol::ALL.map(|p| duration_vec.with_label_values(&[p.label()]));
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "proxlet_upstream_duration_seconds",
                "Time from sending a request upstream to receiving its response headers.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let request_bytes = IntCounter::new(
            "proxlet_request_bytes_total",
            "Request body bytes received from clients.",
        )?;
        let response_bytes = IntCounter::new(
            "proxlet_response_bytes_total",
            "Response body bytes sent to clients.",
        )?;
        let connections_open = IntGauge::new(
            "proxlet_connections_open",
            "Downstream connections currently open.",
        )?;
        let connections_vec = IntCounterVec::new(
            Opts::new(
                "proxlet_connections_total",
                "Downstream connections accepted, by transport.",
            ),
            &["transport"],
        )?;
        let connections = ["tcp", "tls"].map(|t| connections_vec.with_label_values(&[t]));
        let streams_open = IntGauge::new(
            "proxlet_streams_open",
            "Requests (HTTP/1.1 exchanges and HTTP/2 streams) currently in flight.",
        )?;
        let errors_vec = IntCounterVec::new(
            Opts::new(
                "proxlet_upstream_errors_total",
                "Requests the sidecar answered itself instead of the upstream, by error kind.",
            ),
            &["kind"],
        )?;
        let upstream_errors = ErrorKind::ALL
            .iter()
            .map(|k| errors_vec.with_label_values(&[k.label()]))
            .collect();

        registry.register(Box::new(requests_vec))?;
        registry.register(Box::new(duration_vec))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(request_bytes.clone()))?;
        registry.register(Box::new(response_bytes.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(connections_vec))?;
        registry.register(Box::new(streams_open.clone()))?;
        registry.register(Box::new(errors_vec))?;
        Ok(Self {
            registry,
            requests,
            request_duration,
            upstream_duration,
            request_bytes,
            response_bytes,
            connections_open,
            connections,
            streams_open,
            upstream_errors,
        })
    }

    pub fn request(&self, method: Method, code: CodeClass, protocol: Protocol) -> &IntCounter {
        let idx = (method as usize * CodeClass::ALL.len() + code as usize) * 2 + protocol as usize;
        &self.requests[idx]
    }

    pub fn request_duration(&self, protocol: Protocol) -> &Histogram {
        &self.request_duration[protocol as usize]
    }

    pub fn connection_accepted(&self, tls: bool) {
        self.connections[usize::from(tls)].inc();
    }

    pub fn upstream_error(&self, kind: ErrorKind) -> &IntCounter {
        &self.upstream_errors[kind as usize]
    }

    /// The registry, for the plugin host's metric families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}
