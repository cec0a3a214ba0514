//! The real `curl` binary as a client.
//!
//! A [`Curl`] is built like a command line and run to completion; the reply carries the status,
//! the HTTP version curl negotiated, the final response's headers and the body (in memory, or
//! only its [`Checksum`] for large downloads).

use std::{
    ffi::OsString,
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::{ChildStdin, Command},
};

use crate::support::pattern::{self, Checksum};

const MARKER: &str = "@@curl-result";

/// What a curl run produced.
#[derive(Clone, Debug)]
pub struct CurlReply {
    /// The HTTP status, 0 when there was no response.
    pub status: u16,
    /// `%{http_version}`: "1.1", "2", or "0" when there was no response.
    pub http_version: String,
    /// The final response's headers (names lower-cased), in order.
    pub headers: Vec<(String, String)>,
    /// Everything curl's `-D` wrote: every response head, and trailers after the last one.
    pub header_dump: String,
    /// The body, unless it was only checksummed.
    pub body: Vec<u8>,
    /// The body's checksum and length.
    pub checksum: Checksum,
    /// curl's exit status and its error output.
    pub exit: ExitStatus,
    pub stderr: String,
}

impl CurlReply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Fails unless curl exited 0.
    pub fn ok(&self) -> Result<&Self> {
        if !self.exit.success() {
            bail!("curl failed ({}): {}", self.exit, self.stderr.trim());
        }
        Ok(self)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Fails unless curl got a `status` answer; the message shows the whole reply.
    pub fn expect_status(&self, status: u16) -> Result<&Self> {
        self.ok()?;
        if self.status != status {
            bail!(
                "want {status}, got {} over HTTP/{} with headers {:?} and body {:?}",
                self.status,
                self.http_version,
                self.headers,
                self.text()
            );
        }
        Ok(self)
    }
}

/// The two cleartext protocols the plugin tests run each case over.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    Http1,
    H2c,
}

impl Protocol {
    /// A curl command speaking this protocol.
    pub fn curl(self, url: String) -> Curl {
        match self {
            Self::Http1 => Curl::new(url).http1(),
            Self::H2c => Curl::new(url).h2c(),
        }
    }

    /// What curl's `%{http_version}` says for it.
    pub fn curl_version(self) -> &'static str {
        match self {
            Self::Http1 => "1.1",
            Self::H2c => "2",
        }
    }
}

/// A curl command line under construction.
#[derive(Clone, Debug)]
pub struct Curl {
    url: String,
    args: Vec<OsString>,
    upload: Option<u64>,
    keep_body: bool,
    max_time: Duration,
}

impl Curl {
    /// A GET of `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            args: Vec::new(),
            upload: None,
            keep_body: true,
            max_time: Duration::from_secs(30),
        }
    }

    /// Adds raw arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `--http1.1`.
    pub fn http1(self) -> Self {
        self.args(["--http1.1"])
    }

    /// `--http2-prior-knowledge` (h2c).
    pub fn h2c(self) -> Self {
        self.args(["--http2-prior-knowledge"])
    }

    /// `--http2` over TLS trusting `cacert` (ALPN h2).
    pub fn h2_tls(self, cacert: &Path) -> Self {
        self.args([OsString::from("--http2"), "--cacert".into(), cacert.into()])
    }

    /// `--http1.1` over TLS trusting `cacert` (ALPN http/1.1).
    pub fn http1_tls(self, cacert: &Path) -> Self {
        self.args([
            OsString::from("--http1.1"),
            "--cacert".into(),
            cacert.into(),
        ])
    }

    /// `-H "name: value"`.
    pub fn header(self, line: &str) -> Self {
        self.args(["-H", line])
    }

    /// `-X method`.
    pub fn method(self, method: &str) -> Self {
        self.args(["-X", method])
    }

    /// POSTs the contents of `path` (`--data-binary @path`).
    pub fn post_file(self, path: &Path) -> Self {
        let mut arg = OsString::from("@");
        arg.push(path);
        self.args([OsString::from("--data-binary"), arg])
    }

    /// POSTs `len` bytes of the pattern, streamed through curl's stdin (`-T -`), never held in
    /// memory.
    pub fn post_pattern(mut self, len: u64) -> Self {
        self.upload = Some(len);
        self.args(["-X", "POST", "-T", "-"])
    }

    /// Only checksum the body instead of keeping it.
    pub fn checksum_only(mut self) -> Self {
        self.keep_body = false;
        self
    }

    /// `--max-time`.
    pub fn max_time(mut self, max_time: Duration) -> Self {
        self.max_time = max_time;
        self
    }

    /// Runs curl to completion.
    pub async fn run(self) -> Result<CurlReply> {
        let dir = tempfile::tempdir()?;
        let header_file = dir.path().join("headers");
        let mut child = Command::new("curl")
            .args(["-sS", "--no-progress-meter", "-o", "-", "-D"])
            .arg(&header_file)
            .arg("--max-time")
            .arg(format!("{:.3}", self.max_time.as_secs_f64()))
            .arg("-w")
            .arg(format!(
                "%{{stderr}}\n{MARKER} %{{http_code}} %{{http_version}}\n"
            ))
            .args(&self.args)
            .arg(&self.url)
            .stdin(if self.upload.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run curl: install the `curl` package")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("curl stdout")?;
        let mut stderr = child.stderr.take().context("curl stderr")?;
        let upload = feed_pattern(stdin, self.upload.unwrap_or(0));
        let body = read_body(stdout, self.keep_body);
        let mut err_text = String::new();
        let errors = stderr.read_to_string(&mut err_text);
        let all = async { tokio::join!(upload, body, errors, child.wait()) };
        let limit = self.max_time + Duration::from_secs(10);
        let (_, body, _, exit) = tokio::time::timeout(limit, all)
            .await
            .with_context(|| format!("curl {} did not finish within {limit:?}", self.url))?;
        let (body, checksum) = body?;
        let header_dump = std::fs::read_to_string(&header_file).unwrap_or_default();
        let (status, http_version, stderr) = split_marker(&err_text);
        let headers = last_headers(&header_dump);
        Ok(CurlReply {
            status,
            http_version,
            headers,
            header_dump,
            body,
            checksum,
            exit: exit?,
            stderr,
        })
    }
}

async fn feed_pattern(stdin: Option<ChildStdin>, len: u64) -> Result<()> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let mut sent = 0;
    while sent < len {
        let chunk = pattern::chunk(sent, (len - sent).min(pattern::MAX_CHUNK as u64) as usize);
        // curl stops reading when the transfer fails; the reply says why.
        if stdin.write_all(&chunk).await.is_err() {
            return Ok(());
        }
        sent += chunk.len() as u64;
    }
    Ok(())
}

async fn read_body(mut stdout: impl AsyncRead + Unpin, keep: bool) -> Result<(Vec<u8>, Checksum)> {
    let mut body = Vec::new();
    let mut sum = Checksum::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let read = stdout.read(&mut chunk).await.context("read curl output")?;
        if read == 0 {
            return Ok((body, sum));
        }
        sum.update(&chunk[..read]);
        if keep {
            body.extend_from_slice(&chunk[..read]);
        }
    }
}

fn split_marker(stderr: &str) -> (u16, String, String) {
    let mut status = 0;
    let mut version = String::from("0");
    let mut rest = String::new();
    for line in stderr.lines() {
        match line.strip_prefix(MARKER) {
            Some(fields) => {
                let mut fields = fields.split_whitespace();
                status = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                version = fields.next().unwrap_or("0").to_owned();
            }
            None if !line.is_empty() => {
                rest.push_str(line);
                rest.push('\n');
            }
            None => {}
        }
    }
    (status, version, rest)
}

/// The headers of the last response block in a `-D` dump (after any 1xx responses).
fn last_headers(dump: &str) -> Vec<(String, String)> {
    let blocks = dump.split("\r\n\r\n").filter(|b| b.starts_with("HTTP/"));
    let Some(last) = blocks.last() else {
        return Vec::new();
    };
    last.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}
