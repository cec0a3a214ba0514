//! What the upstream and the client see of each other's headers: hop-by-hop headers (those listed
//! in `Connection`, `Keep-Alive`, `TE` other than `trailers`, `Proxy-*`) stop at the sidecar in
//! both directions, X-Forwarded-For/-Proto/-Host are appended, and Host (`:authority`) is the
//! client's.

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::Curl,
    sidecar::Sidecar,
    tls::TestCerts,
    upstream::{SeenRequest, Upstream},
};

/// The X-Forwarded-For hops, across every header line.
fn xff_hops(seen: &SeenRequest) -> Vec<String> {
    let joined = seen.header_all("x-forwarded-for").join(",");
    joined
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_request_headers_do_not_reach_the_upstream() -> Result<()> {
    let upstream = Upstream::start().await?;
    for setting in ["http1", "http2"] {
        let sidecar = Sidecar::builder(upstream.addr())
            .set("upstream.protocol", setting)
            .start()
            .await?;
        let reply = Curl::new(sidecar.url("/headers"))
            .http1()
            .header("Connection: keep-alive, x-custom")
            .header("X-Custom: 1")
            .header("Keep-Alive: timeout=5")
            .header("TE: gzip")
            .header("Proxy-Authorization: Basic dXNlcjpwYXNz")
            .header("Proxy-Connection: keep-alive")
            .header("X-Kept: yes")
            .run()
            .await?;
        ensure!(
            reply.status == 200,
            "upstream.protocol {setting}: status {}",
            reply.status
        );
        let seen = upstream.last().context("the upstream saw no request")?;
        for name in [
            "x-custom",
            "keep-alive",
            "te",
            "proxy-authorization",
            "proxy-connection",
        ] {
            ensure!(
                seen.header(name).is_none(),
                "upstream.protocol {setting}: the upstream saw `{name}`: {:?}",
                seen.headers
            );
        }
        let connection = seen.header_all("connection").join(",").to_ascii_lowercase();
        ensure!(
            !connection.contains("x-custom"),
            "upstream.protocol {setting}: the upstream saw connection: {connection}"
        );
        ensure!(
            seen.header("x-kept") == Some("yes"),
            "upstream.protocol {setting}: an end-to-end header was dropped"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_response_headers_do_not_reach_the_client() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.protocol", "http1")
        .start()
        .await?;
    let url = sidecar
        .url("/response-headers?connection=x-resp&x-resp=1&keep-alive=timeout=5&proxy-authenticate=Basic&x-kept-resp=yes");
    for (name, curl) in [
        ("HTTP/1.1", Curl::new(url.clone()).http1()),
        ("h2c", Curl::new(url.clone()).h2c()),
    ] {
        let reply = curl.run().await?;
        reply.ok()?;
        ensure!(reply.status == 200, "{name}: status {}", reply.status);
        for hop in ["x-resp", "keep-alive", "proxy-authenticate"] {
            ensure!(
                reply.header(hop).is_none(),
                "{name}: the client saw `{hop}`: {:?}",
                reply.headers
            );
        }
        let connection = reply
            .header("connection")
            .unwrap_or("")
            .to_ascii_lowercase();
        ensure!(
            !connection.contains("x-resp"),
            "{name}: the client saw connection: {connection}"
        );
        ensure!(
            reply.header("x-kept-resp") == Some("yes"),
            "{name}: an end-to-end header was dropped"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_are_appended_and_host_is_kept() -> Result<()> {
    let upstream = Upstream::start().await?;
    for setting in ["http1", "http2"] {
        let sidecar = Sidecar::builder(upstream.addr())
            .set("upstream.protocol", setting)
            .start()
            .await?;
        let url = sidecar.url("/headers");
        for (name, h2c) in [("HTTP/1.1", false), ("h2c", true)] {
            let client = || {
                if h2c {
                    Curl::new(url.clone()).h2c()
                } else {
                    Curl::new(url.clone()).http1()
                }
            };
            let what = format!("{name} client, upstream.protocol {setting}");
            let reply = client()
                .header("Host: app.example")
                .header("X-Forwarded-For: 203.0.113.7")
                .run()
                .await?;
            ensure!(reply.status == 200, "{what}: status {}", reply.status);
            let seen = upstream.last().context("the upstream saw no request")?;
            ensure!(
                xff_hops(&seen) == ["203.0.113.7", "127.0.0.1"],
                "{what}: x-forwarded-for {:?}",
                xff_hops(&seen)
            );
            ensure!(
                seen.header("x-forwarded-proto") == Some("http"),
                "{what}: {:?}",
                seen.headers
            );
            ensure!(
                seen.header("x-forwarded-host") == Some("app.example"),
                "{what}: {:?}",
                seen.headers
            );
            ensure!(
                seen.host().as_deref() == Some("app.example"),
                "{what}: host {:?}",
                seen.host()
            );

            let plain = client().run().await?;
            ensure!(plain.status == 200, "{what}: status {}", plain.status);
            let seen = upstream.last().context("the upstream saw no request")?;
            ensure!(
                xff_hops(&seen) == ["127.0.0.1"],
                "{what}: x-forwarded-for {:?}",
                xff_hops(&seen)
            );
            ensure!(
                seen.host() == Some(sidecar.addr().to_string()),
                "{what}: host {:?}",
                seen.host()
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_proto_is_https_over_tls() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = TestCerts::generate(dir.path())?;
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .tls(&certs)
        .start()
        .await?;
    for (name, curl) in [
        (
            "TLS h2",
            Curl::new(sidecar.url("/headers")).h2_tls(&certs.cert),
        ),
        (
            "TLS HTTP/1.1",
            Curl::new(sidecar.url("/headers")).http1_tls(&certs.cert),
        ),
    ] {
        let reply = curl.run().await?;
        reply.ok()?;
        ensure!(reply.status == 200, "{name}: status {}", reply.status);
        let seen = upstream.last().context("the upstream saw no request")?;
        ensure!(
            seen.header("x-forwarded-proto") == Some("https"),
            "{name}: {:?}",
            seen.headers
        );
        ensure!(
            seen.host() == Some(sidecar.addr().to_string()),
            "{name}: host {:?}",
            seen.host()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_can_be_turned_off() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("forwarded.x_forwarded_for", false)
        .set("forwarded.x_forwarded_proto", false)
        .set("forwarded.x_forwarded_host", false)
        .start()
        .await?;
    let reply = Curl::new(sidecar.url("/headers"))
        .http1()
        .header("X-Forwarded-For: 203.0.113.7")
        .run()
        .await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    let seen = upstream.last().context("the upstream saw no request")?;
    ensure!(
        xff_hops(&seen) == ["203.0.113.7"],
        "x-forwarded-for {:?}",
        xff_hops(&seen)
    );
    ensure!(
        seen.header("x-forwarded-proto").is_none(),
        "{:?}",
        seen.headers
    );
    ensure!(
        seen.header("x-forwarded-host").is_none(),
        "{:?}",
        seen.headers
    );
    Ok(())
}
