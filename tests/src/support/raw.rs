//! A raw TCP client, for requests no well-behaved client would send (smuggling probes, slowloris,
//! malformed request lines, upgrades).

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The head of an HTTP/1.x response.
#[derive(Clone, Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What reading until the peer closes produced.
#[derive(Clone, Debug)]
pub struct Drained {
    /// Every byte received.
    pub bytes: Vec<u8>,
    /// The status codes of the responses found in those bytes, in order.
    pub statuses: Vec<u16>,
}

/// A raw TCP connection with a read buffer.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .context("write to sidecar")
    }

    /// Reads a response head (status line and headers), bounded by `timeout`.
    pub async fn read_head(&mut self, timeout: Duration) -> Result<Head> {
        let end = tokio::time::timeout(timeout, self.fill_until_head_end())
            .await
            .with_context(|| format!("no response head within {timeout:?}"))??;
        let head: Vec<u8> = self.buffer.drain(..end).collect();
        parse_head(&String::from_utf8_lossy(&head))
    }

    /// Reads exactly `n` bytes (after any head already read), bounded by `timeout`.
    pub async fn read_exact(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>> {
        let fill = async {
            let mut chunk = vec![0u8; 16 * 1024];
            while self.buffer.len() < n {
                let read = self.stream.read(&mut chunk).await?;
                if read == 0 {
                    bail!("connection closed after {} of {n} bytes", self.buffer.len());
                }
                self.buffer.extend_from_slice(&chunk[..read]);
            }
            Ok(())
        };
        tokio::time::timeout(timeout, fill)
            .await
            .with_context(|| format!("{n} bytes did not arrive within {timeout:?}"))??;
        Ok(self.buffer.drain(..n).collect())
    }

    /// Reads until the peer closes the connection (EOF or reset), bounded by `timeout`.
    pub async fn read_until_close(&mut self, timeout: Duration) -> Result<Drained> {
        let drain = async {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                }
            }
        };
        if tokio::time::timeout(timeout, drain).await.is_err() {
            bail!(
                "connection still open after {timeout:?}; received so far: {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
        }
        let bytes = std::mem::take(&mut self.buffer);
        let statuses = statuses(&bytes);
        Ok(Drained { bytes, statuses })
    }

    async fn fill_until_head_end(&mut self) -> Result<usize> {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if let Some(pos) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(pos + 4);
            }
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                bail!(
                    "connection closed before a response head; received {:?}",
                    String::from_utf8_lossy(&self.buffer)
                );
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn parse_head(text: &str) -> Result<Head> {
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(Head { status, headers })
}

/// The status codes of the HTTP/1.x status lines found at line starts in `bytes`.
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n")
        .filter_map(|line| {
            line.strip_prefix("HTTP/1.1 ")
                .or_else(|| line.strip_prefix("HTTP/1.0 "))
        })
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}
