//! Test helpers: the server as a child process, kubectl pointed at it, and a small HTTP client
//! for raw requests and watch streams.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

pub const TOKEN: &str = "test-admin-token";

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running `kube-test-server`; stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-test-server"))
            .args(["--listen", "127.0.0.1:0", "--token", TOKEN, "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            addr,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Closes the server's stdin (or sends it `signal` with kill(1)) and waits up to five
    /// seconds for it to exit; true when it did.
    pub fn stop_with(&mut self, signal: Option<&str>) -> bool {
        match signal {
            Some(sig) => {
                let pid = self.child.id().to_string();
                let status = Command::new("kill")
                    .args(["-s", sig, &pid])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            None => drop(self.child.stdin.take()),
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self._dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and returns its stdout; panics with its stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure; returns its stderr.
    pub fn kubectl_err(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_output(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> hyper::Response<Incoming> {
        self.send_as(TOKEN, method, path, content_type, body).await
    }

    pub async fn send_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> hyper::Response<Incoming> {
        let stream = TcpStream::connect(&self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .header("user-agent", "kube-server-tests/1.0")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        sender.send_request(req).await.unwrap()
    }

    /// One request; the status code and the JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let resp = self.send(method, path, content_type, body).await;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (code, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, "application/json", "").await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, "application/json", &body.to_string())
            .await
    }

    pub async fn watch(&self, path: &str) -> Watch {
        let resp = self.send("GET", path, "application/json", "").await;
        assert_eq!(resp.status(), 200, "watch {path}");
        Watch {
            body: resp.into_body(),
            buf: Vec::new(),
            ended: false,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A watch stream, read event by event.
pub struct Watch {
    body: Incoming,
    buf: Vec<u8>,
    /// The server closed the stream (as opposed to nothing arriving in time).
    pub ended: bool,
}

impl Watch {
    /// The next event, or None when the stream ends or nothing comes within two seconds.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let next = tokio::time::timeout(Duration::from_secs(2), self.body.frame())
                .await
                .ok()?;
            let Some(frame) = next else {
                self.ended = true;
                return None;
            };
            let frame = frame.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// `(type, name)` of the next event.
    pub async fn next_summary(&mut self) -> Option<(String, String)> {
        let e = self.next().await?;
        Some((
            e["type"].as_str().unwrap_or_default().to_string(),
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ))
    }
}

// Shared by the raw-HTTP tests: the ProxyPlugin CRD installed, and objects of it.

pub const PP: &str = "/apis/proxlet.dev/v1alpha1/namespaces/default/proxyplugins";

pub async fn with_crd(extra: &[&str]) -> Server {
    let s = Server::start(extra);
    let crd: Value =
        serde_yaml::from_str(&std::fs::read_to_string(fixture("proxyplugin-crd.yaml")).unwrap())
            .unwrap();
    let (code, body) = s
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let conds = body["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    s
}

pub fn plugin(name: &str, priority: i64) -> Value {
    json!({"apiVersion": "proxlet.dev/v1alpha1", "kind": "ProxyPlugin",
        "metadata": {"name": name, "labels": {"team": "edge"}},
        "spec": {"image": "oci://r/p:1", "priority": priority}})
}

pub fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn apply_path(name: &str, sub: &str, manager: &str, force: bool) -> String {
    format!("{PP}/{name}{sub}?fieldManager={manager}&force={force}")
}
