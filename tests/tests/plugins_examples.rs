//! The example plugins in `plugins/` doing what their READMEs promise, in a real sidecar in front
//! of a real upstream, seen through curl and the admin API.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use futures_util::stream;
use http::Request;
use http_body::Frame;
use proxlet_tests::support::{
    body::{self, BoxError},
    client::{Connection, Reply},
    curl::{Curl, CurlReply, Protocol},
    pattern,
    plugins::{self, Plugin},
    sidecar::Sidecar,
    upstream::{AUTH_CHALLENGE, Upstream},
    wait,
};
use serde_json::json;

/// An address nothing listens on.
fn closed_port() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn header_modifier_over(protocol: Protocol) -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("header-modifier")?.config(json!({
        "request": {"set": {"x-env": "dev"}, "add": {"x-tag": "plugin"}, "remove": ["x-debug"]},
        "response": {"set": {"x-served-by": "proxlet"}, "remove": ["x-upstream-secret"]},
    }));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;

    let url = sidecar.url("/response-headers?x-upstream-secret=s3cret&x-kept=yes");
    let reply = protocol
        .curl(url)
        .header("x-env: prod")
        .header("x-debug: 1")
        .header("x-tag: client")
        .run()
        .await?;
    reply.expect_status(200)?;
    ensure!(reply.http_version == protocol.curl_version());

    let seen = upstream
        .last()
        .context("the request did not reach the upstream")?;
    ensure!(
        seen.header_all("x-env") == ["dev"],
        "upstream saw x-env {:?}",
        seen.header_all("x-env")
    );
    ensure!(
        seen.header("x-debug").is_none(),
        "upstream saw x-debug: {:?}",
        seen.header("x-debug")
    );
    ensure!(
        seen.header_all("x-tag") == ["client", "plugin"],
        "upstream saw x-tag {:?}",
        seen.header_all("x-tag")
    );

    ensure!(
        reply.header_values("x-served-by") == ["proxlet"],
        "client got x-served-by {:?}",
        reply.header_values("x-served-by")
    );
    ensure!(
        reply.header("x-upstream-secret").is_none(),
        "the removed response header reached the client: {:?}",
        reply.headers
    );
    ensure!(reply.header("x-kept") == Some("yes"), "{:?}", reply.headers);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn header_modifier_edits_headers_over_http1() -> Result<()> {
    header_modifier_over(Protocol::Http1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn header_modifier_edits_headers_over_h2c() -> Result<()> {
    header_modifier_over(Protocol::H2c).await
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_writes_one_line_per_request() -> Result<()> {
    let upstream = Upstream::start().await?;
    let format = "{method} {path} -> {status} ua={req.user-agent} type={resp.content-type} \
                  {duration_ms}ms";
    let plugin = Plugin::new("logger")?.config(json!({ "format": format }));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;

    let get = Curl::new(sidecar.url("/bytes/5?page=2"))
        .http1()
        .args(["-A", "proxlet-test/1"])
        .run()
        .await?;
    get.expect_status(200)?;
    // No body: the upstream answers /missing without reading one, and curl 7.88 fails an
    // HTTP/2 upload the server ends early (see docs/configuration.md, "Proxy semantics").
    let post = Curl::new(sidecar.url("/missing"))
        .h2c()
        .method("POST")
        .args(["-A", "proxlet-test/2"])
        .run()
        .await?;
    post.expect_status(404)?;

    for (prefix, protocol) in [
        (
            "GET /bytes/5?page=2 -> 200 ua=proxlet-test/1 type=application/octet-stream ",
            "HTTP/1.1",
        ),
        (
            "POST /missing -> 404 ua=proxlet-test/2 type=text/plain ",
            "h2c",
        ),
    ] {
        let line = plugins::wait_for_log(&sidecar, "logger", prefix, |line| {
            line.message.starts_with(prefix)
        })
        .await
        .with_context(|| format!("the {protocol} request's line"))?;
        let duration = line.message[prefix.len()..].trim_end_matches("ms");
        ensure!(
            duration.parse::<u64>().is_ok(),
            "duration is not whole milliseconds in {:?}",
            line.message
        );
        ensure!(line.level == "info", "logged at {}: {line:?}", line.level);
    }
    // Its own lines (the sidecar's line on what it may not do is a warning).
    let lines = plugins::logs(&sidecar, "logger").await?;
    let own = lines.iter().filter(|l| l.level == "info").count();
    ensure!(own == 2, "want one line per request: {lines:#?}");
    Ok(())
}

const API_KEY: &str = "x-api-key: k1";

#[tokio::test(flavor = "multi_thread")]
async fn request_validator_refuses_wrong_method_path_and_headers() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("request-validator")?.config(json!({
        "methods": ["GET", "POST"],
        "required_headers": ["x-api-key"],
        "paths": ["/echo", "/bytes/*"],
        "status": 422,
    }));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;
    let refusal = |reply: &CurlReply, status: u16, code: &str, body: &str| -> Result<()> {
        reply.expect_status(status)?;
        ensure!(
            reply.header("x-validation-error") == Some(code)
                && reply.header("content-type") == Some("text/plain")
                && reply.text().contains(body),
            "want x-validation-error {code} and body {body:?}; got {:?} {:?}",
            reply.headers,
            reply.text()
        );
        Ok(())
    };

    let url = |path: &str| sidecar.url(path);
    let delete = Curl::new(url("/bytes/10"))
        .http1()
        .header(API_KEY)
        .method("DELETE");
    let delete = delete.run().await?;
    refusal(
        &delete,
        405,
        "method-not-allowed",
        "method DELETE is not allowed",
    )?;
    ensure!(
        delete.header("allow") == Some("GET, POST"),
        "allow: {:?}",
        delete.header("allow")
    );
    let missing = Curl::new(url("/bytes/10")).h2c().run().await?;
    refusal(
        &missing,
        422,
        "missing-header",
        "missing required header x-api-key",
    )?;
    let blank = Curl::new(url("/bytes/10")).http1().header("x-api-key;");
    refusal(
        &blank.run().await?,
        422,
        "missing-header",
        "missing required header x-api-key",
    )?;
    for path in ["/headers", "/echo/more", "/bytes"] {
        let reply = Curl::new(url(path)).http1().header(API_KEY).run().await?;
        let message = format!("path {path} is not allowed");
        refusal(&reply, 422, "path-not-allowed", &message).with_context(|| path.to_owned())?;
    }
    ensure!(
        upstream.requests() == 0,
        "refused requests reached the upstream: {:?}",
        upstream.paths()
    );

    let deep = Curl::new(url("/bytes/10?from=/x")).h2c().header(API_KEY);
    let deep = deep.run().await?;
    deep.expect_status(200)?;
    ensure!(deep.body.len() == 10);
    let post = Curl::new(url("/echo"))
        .http1()
        .header(API_KEY)
        .args(["--data-binary", "hello"])
        .run()
        .await?;
    post.expect_status(200)?;
    ensure!(post.text() == "hello", "echo: {:?}", post.text());
    ensure!(
        upstream.paths() == ["/bytes/10", "/echo"],
        "{:?}",
        upstream.paths()
    );
    Ok(())
}

fn body_rules() -> serde_json::Value {
    json!({"max_body_bytes": 64, "json_body": true})
}

/// A request body to POST to `/sink`.
#[derive(Clone, Copy, Debug)]
enum Upload<'a> {
    /// These bytes, with a `content-length`.
    Sized(&'a str),
    /// This many bytes of the pattern, streamed without a `content-length`.
    Streamed(u64),
}

/// What the client got: status, `x-validation-error` and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    reason: Option<String>,
    body: String,
}

/// POSTs `upload` to `/sink`: with curl over HTTP/1.1, with hyper over h2c. curl 7.88 fails
/// (exit 52 or 92) when an HTTP/2 server sends a complete response and then RST_STREAM(NO_ERROR)
/// before curl has sent all of the body, which is what RFC 9113 §8.1 tells servers to do; and
/// hyper's HTTP/1.1 client reports the broken pipe instead of an early response.
async fn post(sidecar: &Sidecar, protocol: Protocol, upload: Upload<'_>) -> Result<Answer> {
    if let Protocol::Http1 = protocol {
        let curl = Curl::new(sidecar.url("/sink")).http1();
        let reply = match upload {
            Upload::Sized(data) => curl.args(["--data-binary", data]).run().await?,
            Upload::Streamed(len) => curl.post_pattern(len).run().await?,
        };
        reply.ok()?;
        return Ok(Answer {
            status: reply.status,
            reason: reply.header("x-validation-error").map(str::to_owned),
            body: reply.text(),
        });
    }
    let request = Request::post("/sink");
    let request = match upload {
        Upload::Sized(data) => request
            .header("content-length", data.len())
            .body(body::full(data.to_owned()))?,
        Upload::Streamed(len) => {
            const FRAME: u64 = 4096;
            let frames: Vec<Result<Frame<Bytes>, BoxError>> = (0..len.div_ceil(FRAME))
                .map(|i| {
                    let size = FRAME.min(len - i * FRAME) as usize;
                    Ok(Frame::data(pattern::chunk(i * FRAME, size)))
                })
                .collect();
            request.body(body::from_frames(stream::iter(frames)))?
        }
    };
    let reply = Connection::h2c(sidecar.addr()).await?.send(request).await?;
    Ok(Answer {
        status: reply.status.as_u16(),
        reason: reply.header("x-validation-error").map(str::to_owned),
        body: reply.text(),
    })
}

/// With body checks, a refused request's head may already be upstream (as in Envoy: headers go
/// on once the header hooks pass); what must never happen is the upstream reading a refused body
/// to its end. `/sink` records each body it read completely.
#[tokio::test(flavor = "multi_thread")]
async fn request_validator_checks_bodies_with_body_permission() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("request-validator")?
        .config(body_rules())
        .body();
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;

    let none = Curl::new(sidecar.url("/bytes/3")).h2c().run().await?;
    none.expect_status(200)
        .context("a request without a body")?;
    let too_long = format!("[{}]", "1,".repeat(40) + "1");
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let cases = [
            (Upload::Sized(r#"{"ok": true}"#), 200, None, r#""bytes":12"#),
            (
                Upload::Sized(r#"{"ok": "#),
                400,
                Some("invalid-json"),
                "request body is not valid JSON",
            ),
            (
                Upload::Sized(&too_long),
                413,
                Some("body-too-large"),
                "request body is larger than 64 bytes",
            ),
            (
                Upload::Streamed(64 * 1024),
                413,
                Some("body-too-large"),
                "request body is larger than 64 bytes",
            ),
        ];
        for (upload, status, reason, body) in cases {
            let answer = post(&sidecar, protocol, upload).await?;
            ensure!(
                answer.status == status
                    && answer.reason.as_deref() == reason
                    && answer.body.contains(body),
                "{upload:?} over {protocol:?}: want {status} {reason:?} {body:?}, got {answer:?}"
            );
        }
    }
    ensure!(
        upstream.sunk() == [12, 12],
        "the upstream read these bodies to the end: {:?} (only the valid 12 bytes may pass)",
        upstream.sunk()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn request_validator_sees_no_body_without_body_permission() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("request-validator")?.config(body_rules());
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;
    let invalid = Curl::new(sidecar.url("/echo"))
        .http1()
        .args(["--data-binary", r#"{"ok": "#])
        .run()
        .await?;
    invalid.expect_status(200)?;
    ensure!(invalid.text() == r#"{"ok": "#, "echo: {:?}", invalid.text());
    let streamed = Curl::new(sidecar.url("/sink"))
        .h2c()
        .post_pattern(64 * 1024)
        .run()
        .await?;
    streamed.expect_status(200)?;
    ensure!(
        streamed.text().contains("\"bytes\":65536"),
        "{}",
        streamed.text()
    );
    Ok(())
}

/// An app upstream behind a sidecar whose auth-callout asks `auth` at `/auth`.
async fn auth_sidecar(app: &Upstream, auth: SocketAddr) -> Result<Sidecar> {
    let plugin = Plugin::new("auth-callout")?
        .config(json!({"upstream": "auth", "path": "/auth", "timeout_ms": 500}))
        .set("phase", "AUTHN")
        .http_calls(&["auth"]);
    Sidecar::builder(app.addr())
        .plugin(&plugin)
        .cluster("auth", auth)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_callout_lets_authorized_requests_through_as_the_user() -> Result<()> {
    let (app, auth) = (Upstream::start().await?, Upstream::start().await?);
    let sidecar = auth_sidecar(&app, auth.addr()).await?;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/headers"))
            .header("authorization: Bearer user:alice")
            .header("cookie: session=7")
            .header("x-auth-user: mallory")
            .run()
            .await?;
        reply
            .expect_status(200)
            .with_context(|| format!("{protocol:?}"))?;
        let seen = app.last().context("the request did not reach the app")?;
        ensure!(
            seen.header_all("x-auth-user") == ["alice"],
            "over {protocol:?} the app saw x-auth-user {:?}",
            seen.header_all("x-auth-user")
        );
        let check = auth.last().context("the auth service was not asked")?;
        ensure!(
            check.method == "GET"
                && check.uri.path() == "/auth"
                && check.header("authorization") == Some("Bearer user:alice")
                && check.header("cookie") == Some("session=7"),
            "the auth service got {check:?}"
        );
    }
    ensure!(auth.requests() == 2 && app.requests() == 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_callout_passes_401_on_and_refuses_others_with_403() -> Result<()> {
    let (app, auth) = (Upstream::start().await?, Upstream::start().await?);
    let sidecar = auth_sidecar(&app, auth.addr()).await?;

    let anonymous = Curl::new(sidecar.url("/headers")).http1().run().await?;
    anonymous.expect_status(401)?;
    ensure!(
        anonymous.header("www-authenticate") == Some(AUTH_CHALLENGE)
            && anonymous.text().contains("unauthorized"),
        "{:?} {:?}",
        anonymous.headers,
        anonymous.text()
    );
    let wrong = Curl::new(sidecar.url("/headers"))
        .h2c()
        .header("authorization: Basic b3RoZXI6eA==")
        .run()
        .await?;
    wrong.expect_status(403)?;
    ensure!(
        wrong.text().contains("forbidden") && wrong.header("www-authenticate").is_none(),
        "{:?} {:?}",
        wrong.headers,
        wrong.text()
    );
    ensure!(auth.requests() == 2, "auth saw {}", auth.requests());
    ensure!(
        app.requests() == 0,
        "refused requests reached the app: {:?}",
        app.paths()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_callout_answers_503_when_the_auth_service_is_down() -> Result<()> {
    let app = Upstream::start().await?;
    let sidecar = auth_sidecar(&app, closed_port()?).await?;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/headers"))
            .header("authorization: Bearer user:alice")
            .run()
            .await?;
        reply
            .expect_status(503)
            .with_context(|| format!("{protocol:?}"))?;
        ensure!(
            reply.text().contains("auth service unavailable"),
            "body {:?}",
            reply.text()
        );
    }
    ensure!(
        app.requests() == 0,
        "the app was reached: {:?}",
        app.paths()
    );
    Ok(())
}

async fn get_as(connection: &mut Connection, key: &str) -> Result<Reply> {
    let request = Request::get("/bytes/1")
        .header("x-api-key", key)
        .body(body::empty())?;
    connection.send(request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limiter_refuses_the_request_over_capacity_until_the_refill() -> Result<()> {
    const INTERVAL_MS: u64 = 2000;
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("rate-limiter")?
        .config(json!({
            "key": "header:x-api-key",
            "capacity": 3,
            "refill_tokens": 3,
            "refill_interval_ms": INTERVAL_MS,
        }))
        .shared_data();
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;

    // One keep-alive connection: the burst takes milliseconds, far less than an interval.
    let mut connection = Connection::http1(sidecar.addr()).await?;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get_as(&mut connection, "alice").await?.status.as_u16());
    }
    ensure!(
        statuses == [200, 200, 200, 429],
        "a burst of 4 with capacity 3 got {statuses:?}"
    );
    let refused = get_as(&mut connection, "alice").await?;
    ensure!(
        refused.status == 429
            && refused.header("retry-after") == Some("2")
            && refused.header("content-type") == Some("text/plain")
            && refused.text().contains("rate limit exceeded"),
        "the refusal: {} {:?} {:?}",
        refused.status,
        refused.headers,
        refused.text()
    );
    let other = get_as(&mut connection, "bob").await?;
    ensure!(
        other.status == 200,
        "another key was limited too: {}",
        other.status
    );
    ensure!(upstream.requests() == 4, "{:?}", upstream.paths());

    let addr = sidecar.addr();
    wait::until_true(
        "alice to be allowed again after the refill",
        Duration::from_millis(2 * INTERVAL_MS + 1000),
        || async move {
            let Ok(mut connection) = Connection::http1(addr).await else {
                return false;
            };
            get_as(&mut connection, "alice")
                .await
                .is_ok_and(|r| r.status == 200)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn template_adds_its_header_to_every_response() -> Result<()> {
    let upstream = Upstream::start().await?;
    let template = Plugin::new("template")?.set("priority", 10);
    let refuser = Plugin::new("hostcalls")?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&template)
        .plugin(&refuser)
        .start()
        .await?;

    let plain = Curl::new(sidecar.url("/bytes/1")).h2c().run().await?;
    plain.expect_status(200)?;
    ensure!(
        plain.header_values("x-hello") == ["world"],
        "{:?}",
        plain.headers
    );
    let url = sidecar.url("/response-headers?x-hello=upstream");
    let both = Curl::new(url).http1().run().await?;
    both.expect_status(200)?;
    let mut values = both.header_values("x-hello");
    values.sort();
    ensure!(
        values == ["upstream", "world"],
        "want the upstream's x-hello and the plugin's: {:?}",
        both.headers
    );
    // `hostcalls` runs after `template` (lower priority) and answers this one locally.
    let local = Curl::new(sidecar.url("/bytes/1"))
        .http1()
        .header("x-test: local")
        .run()
        .await?;
    local.expect_status(418)?;
    ensure!(
        local.header_values("x-hello") == ["world"],
        "a local response of a later plugin: {:?}",
        local.headers
    );
    ensure!(upstream.requests() == 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn template_adds_the_configured_header() -> Result<()> {
    let upstream = Upstream::start().await?;
    let template = Plugin::new("template")?.config(json!({"header": "X-Greeting", "value": "hej"}));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&template)
        .start()
        .await?;
    let reply = Curl::new(sidecar.url("/bytes/1")).http1().run().await?;
    reply.expect_status(200)?;
    ensure!(
        reply.header_values("x-greeting") == ["hej"] && reply.header("x-hello").is_none(),
        "{:?}",
        reply.headers
    );
    Ok(())
}
