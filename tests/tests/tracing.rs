//! Distributed tracing: the upstream gets a W3C `traceparent` continuing the client's trace, and
//! spans are exported over OTLP/HTTP to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{curl::Curl, otlp::Collector, sidecar::Sidecar, upstream::Upstream};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// A parsed `traceparent`: version, trace id, parent span id, flags.
fn parse_traceparent(value: &str) -> Result<[String; 4]> {
    let fields: Vec<&str> = value.split('-').collect();
    let [version, trace, span, flags] = fields[..] else {
        anyhow::bail!("traceparent {value:?} does not have four fields");
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    ensure!(
        version == "00" && hex(trace, 32) && hex(span, 16) && hex(flags, 2),
        "malformed traceparent {value:?}"
    );
    ensure!(
        trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'),
        "all-zero id in {value:?}"
    );
    Ok([version, trace, span, flags].map(str::to_owned))
}

async fn traced_sidecar(upstream: &Upstream, collector: &Collector) -> Result<Sidecar> {
    Sidecar::builder(upstream.addr())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn incoming_trace_is_continued_and_spans_are_exported() -> Result<()> {
    let collector = Collector::start().await?;
    let upstream = Upstream::start().await?;
    let sidecar = traced_sidecar(&upstream, &collector).await?;
    let incoming = format!("traceparent: 00-{TRACE_ID}-{CLIENT_SPAN}-01");
    for (name, curl) in [
        ("HTTP/1.1", Curl::new(sidecar.url("/echo")).http1()),
        ("h2c", Curl::new(sidecar.url("/echo")).h2c()),
    ] {
        let reply = curl.header(&incoming).run().await?;
        ensure!(reply.status == 200, "{name}: status {}", reply.status);
        let seen = upstream.last().context("the upstream saw no request")?;
        let traceparent = seen
            .header("traceparent")
            .context("the upstream got no traceparent")?;
        let [_, trace, span, flags] = parse_traceparent(traceparent)?;
        ensure!(
            trace == TRACE_ID,
            "{name}: the upstream's trace id {trace} is not the client's {TRACE_ID}"
        );
        ensure!(
            span != CLIENT_SPAN,
            "{name}: the sidecar passed the client's span id on instead of its own span's"
        );
        ensure!(
            flags == "01",
            "{name}: the sampled flag was lost: {traceparent}"
        );
    }

    let export = collector
        .wait_for("/v1/traces", Duration::from_secs(10))
        .await?;
    ensure!(export.method == "POST", "export used {}", export.method);
    let content_type = export.content_type.unwrap_or_default();
    ensure!(
        content_type.starts_with("application/x-protobuf"),
        "export content-type {content_type:?}"
    );
    ensure!(export.body_len > 0, "empty export body");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn request_without_traceparent_starts_a_trace() -> Result<()> {
    let collector = Collector::start().await?;
    let upstream = Upstream::start().await?;
    let sidecar = traced_sidecar(&upstream, &collector).await?;
    let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    let seen = upstream.last().context("the upstream saw no request")?;
    let traceparent = seen
        .header("traceparent")
        .context("the upstream got no traceparent")?;
    parse_traceparent(traceparent)?;
    collector
        .wait_for("/v1/traces", Duration::from_secs(10))
        .await?;
    Ok(())
}
