//! The real `h2load` binary (nghttp2) as a load generator, and the counts its report gives.

use std::{process::Stdio, time::Duration};

use anyhow::{Context, Result, ensure};
use tokio::process::Command;

/// An h2load run under construction: h2c prior knowledge unless [`H2load::h1`].
#[derive(Clone, Debug)]
pub struct H2load {
    url: String,
    requests: u64,
    clients: u32,
    streams: u32,
    h1: bool,
    headers: Vec<String>,
    timeout: Duration,
}

/// The counts of h2load's `requests:` and `status codes:` lines, and its whole output.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    pub status_2xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub output: String,
}

impl Summary {
    /// Fails unless all `requests` were made, succeeded and got a 2xx.
    pub fn all_succeeded(&self, requests: u64) -> Result<()> {
        ensure!(
            self.total == requests
                && self.succeeded == requests
                && self.status_2xx == requests
                && self.failed == 0
                && self.errored == 0
                && self.timeout == 0,
            "want {requests} requests all succeeded with a 2xx; h2load said:\n{}",
            self.output
        );
        Ok(())
    }
}

impl H2load {
    /// `h2load -n 1000 -c 10 -m 10 URL`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            requests: 1000,
            clients: 10,
            streams: 10,
            h1: false,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }

    /// `-n`: requests in all.
    pub fn requests(mut self, requests: u64) -> Self {
        self.requests = requests;
        self
    }

    /// `-c`: concurrent clients (connections).
    pub fn clients(mut self, clients: u32) -> Self {
        self.clients = clients;
        self
    }

    /// `-m`: concurrent streams per connection (pipelined requests with `--h1`).
    pub fn streams(mut self, streams: u32) -> Self {
        self.streams = streams;
        self
    }

    /// `--h1`: HTTP/1.1 instead of h2c.
    pub fn h1(mut self) -> Self {
        self.h1 = true;
        self
    }

    /// `-H "name: value"` on every request.
    pub fn header(mut self, line: &str) -> Self {
        self.headers.push(line.to_owned());
        self
    }

    /// Runs h2load to completion; fails when it exits non-zero or its report cannot be read.
    pub async fn run(&self) -> Result<Summary> {
        let mut command = Command::new("h2load");
        command
            .arg("-n")
            .arg(self.requests.to_string())
            .arg("-c")
            .arg(self.clients.to_string())
            .arg("-m")
            .arg(self.streams.to_string());
        if self.h1 {
            command.arg("--h1");
        }
        for line in &self.headers {
            command.args(["-H", line]);
        }
        let child = command
            .arg(&self.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run h2load: install the `nghttp2-client` package")?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .with_context(|| format!("h2load did not finish within {:?}", self.timeout))??;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(
            output.status.success(),
            "h2load exited {}:\n{text}",
            output.status
        );
        summarize(text)
    }
}

/// The number just before `word` in `line` (`2000 succeeded` → 2000).
fn count_before(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == word)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

fn summarize(output: String) -> Result<Summary> {
    let line = |prefix: &str| {
        output
            .lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .with_context(|| format!("no `{prefix}` line in h2load's output:\n{output}"))
    };
    let (requests, statuses) = (line("requests:")?, line("status codes:")?);
    let get = |line: &str, word: &str| {
        count_before(line, word).with_context(|| format!("no `{word}` count in {line:?}"))
    };
    Ok(Summary {
        total: get(&requests, "total")?,
        succeeded: get(&requests, "succeeded")?,
        failed: get(&requests, "failed")?,
        errored: get(&requests, "errored")?,
        timeout: get(&requests, "timeout")?,
        status_2xx: get(&statuses, "2xx")?,
        status_4xx: get(&statuses, "4xx")?,
        status_5xx: get(&statuses, "5xx")?,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_report() -> Result<()> {
        let output = "requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 10 failed, \
                      10 errored, 0 timeout\n\
                      status codes: 1990 2xx, 0 3xx, 4 4xx, 6 5xx\n";
        let summary = summarize(output.to_owned())?;
        assert_eq!(
            (summary.total, summary.succeeded, summary.failed),
            (2000, 1990, 10)
        );
        assert_eq!((summary.errored, summary.timeout), (10, 0));
        assert_eq!(
            (summary.status_2xx, summary.status_4xx, summary.status_5xx),
            (1990, 4, 6)
        );
        assert!(summary.all_succeeded(2000).is_err());
        Ok(())
    }
}
