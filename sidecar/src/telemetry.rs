//! Logs and traces: the `tracing` subscriber, OTLP export, and W3C trace-context propagation.
//!
//! Logs go to stderr, as text or JSON, filtered by `RUST_LOG` (default `info`). When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, request spans are also exported over OTLP/HTTP and the
//! upstream request carries a `traceparent` continuing the client's trace; without it the
//! client's `traceparent` passes through unchanged.

use std::sync::OnceLock;

use http::{HeaderMap, Request, StatusCode};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::metrics::Protocol;

/// Set once when OTLP export is on; the request path checks it to skip propagation work.
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot install the log subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace exporter alive; flushes pending spans when dropped.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}

/// Installs the global subscriber. Spans are exported from the batch processor's own thread
/// with a blocking HTTP client, so export never competes with the data path's runtime.
pub fn init(format: LogFormat) -> Result<Guard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(_) => Some(otlp_provider()?),
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("proxlet-sidecar"))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span()))
    });
    if provider.is_some() {
        let _ = PROPAGATOR.set(TraceContextPropagator::new());
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(Guard { provider })
}

fn otlp_provider() -> Result<SdkTracerProvider, TelemetryError> {
    // Reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other standard OTEL_* variables) itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("proxlet-sidecar")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The span of one request. With OTLP export on it is an INFO span continuing the client's
/// `traceparent`; otherwise a DEBUG span, which costs nothing unless `RUST_LOG` asks for it.
pub fn request_span<B>(req: &Request<B>, protocol: Protocol) -> tracing::Span {
    macro_rules! span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "request",
                otel.kind = "server",
                http.request.method = %req.method(),
                url.path = req.uri().path(),
                network.protocol.name = protocol.label(),
                http.response.status_code = tracing::field::Empty,
            )
        };
    }
    match PROPAGATOR.get() {
        Some(propagator) => {
            let span = span!(tracing::Level::INFO);
            let parent = propagator.extract(&HeaderExtractor(req.headers()));
            let _ = span.set_parent(parent);
            span
        }
        None => span!(tracing::Level::DEBUG),
    }
}

/// Writes the span's context as `traceparent` into the upstream request's headers.
pub fn inject_context(span: &tracing::Span, headers: &mut HeaderMap) {
    if let Some(propagator) = PROPAGATOR.get() {
        propagator.inject_context(&span.context(), &mut HeaderInjector(headers));
    }
}

pub fn record_status(span: &tracing::Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
}
