//! The demo: a demo upstream, the sidecar in front of it with three example plugins
//! (header-modifier, request-validator, logger), and a few requests a user can repeat.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, deps, root, sh};

const UPSTREAM: &str = "127.0.0.1:18080";
const LISTEN: &str = "127.0.0.1:15001";
const ADMIN: &str = "127.0.0.1:15000";

/// Kills the demo's processes however the demo ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn requests() -> Result<()> {
    let base = format!("http://{LISTEN}");
    let show = |title: &str, args: &[&str]| -> Result<()> {
        let shown: Vec<String> = args.iter().map(|a| quote(a)).collect();
        println!("\n$ curl {}", shown.join(" "));
        println!("  ({title})");
        let out = Command::new("curl").args(args).output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!(
                "curl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let echo = format!("{base}/echo");
    show(
        "HTTP/1.1 through the sidecar",
        &[
            "-sS",
            "--http1.1",
            "-w",
            "  -> %{http_code} over HTTP/%{http_version}\\n",
            "-d",
            "hello over HTTP/1.1",
            &echo,
        ],
    )?;
    show(
        "cleartext HTTP/2 (h2c) through the sidecar",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "-w",
            "  -> %{http_code} over HTTP/%{http_version}\\n",
            "-d",
            "hello over HTTP/2",
            &echo,
        ],
    )?;
    let headers = format!("{base}/headers");
    show(
        "what the upstream saw: X-Forwarded-*, the header-modifier's x-demo, no hop-by-hop headers",
        &[
            "-sS",
            "-H",
            "Connection: x-secret",
            "-H",
            "x-secret: 1",
            &headers,
        ],
    )?;
    show(
        "the header-modifier's response header",
        &["-sS", "-o", "/dev/null", "-D", "-", &echo],
    )?;
    show(
        "refused by the request-validator (only GET and POST are allowed)",
        &["-sS", "-X", "DELETE", "-w", "  -> %{http_code}\\n", &echo],
    )?;
    show(
        "the logger's access-log lines, from the admin API",
        &["-sS", &format!("http://{ADMIN}/api/plugins/logger/logs")],
    )?;
    let metrics = format!("http://{ADMIN}/metrics");
    let out = Command::new("curl").args(["-sS", &metrics]).output()?;
    println!("\n$ curl -s {metrics} | grep proxlet_requests_total");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with("proxlet_requests_total") && !line.ends_with(" 0") {
            println!("{line}");
        }
    }
    Ok(())
}

pub fn run(once: bool) -> Result<()> {
    deps::ensure(&deps::DEMO)?;
    crate::plugins()?;
    run_build()?;
    let config = write_config()?;
    let bin = root().join("target/debug");
    let mut procs = Processes(Vec::new());
    procs.0.push(
        Command::new(bin.join("proxlet-echo"))
            .args(["--listen", UPSTREAM])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the demo upstream")?,
    );
    procs.0.push(
        Command::new(bin.join("proxlet-sidecar"))
            .arg("--config")
            .arg(&config)
            .spawn()
            .context("cannot start proxlet-sidecar")?,
    );
    wait_ready()?;
    println!("\nproxlet-sidecar listens on {LISTEN} in front of the demo upstream on {UPSTREAM}.");
    requests()?;
    println!(
        "\nPlugins: http://{ADMIN}/api/plugins   Metrics: http://{ADMIN}/metrics   Health: http://{ADMIN}/healthz  http://{ADMIN}/readyz"
    );
    println!(
        "The sidecar's configuration (edit it while the demo runs: it reloads): {}",
        config.display()
    );
    if once {
        return Ok(());
    }
    println!("Try your own requests against http://{LISTEN}/ ; press Ctrl-C to stop.");
    for child in &mut procs.0 {
        let _ = child.wait();
    }
    Ok(())
}

/// Quotes an argument the way a shell user would type it.
fn quote(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{arg}'")
    }
}

/// Writes the demo's sidecar configuration (under target/, beside the built plugins).
fn write_config() -> Result<std::path::PathBuf> {
    let plugins = root().join("plugins/target/wasm32-wasip1/release");
    let module = |name: &str| plugins.join(format!("{name}.wasm")).display().to_string();
    let yaml = format!(
        r#"# The demo sidecar: edit the plugins' config here while the demo runs; it reloads.
listener: {{address: {LISTEN}}}
upstream: {{address: {UPSTREAM}}}
admin: {{address: {ADMIN}}}
plugins:
  - name: logger
    path: {logger}
    priority: 100
    config: {{"format": "{{method}} {{path}} -> {{status}} in {{duration_ms}}ms"}}
    failure_policy: FailOpen
  - name: request-validator
    path: {validator}
    config: {{"methods": ["GET", "POST"]}}
  - name: header-modifier
    path: {modifier}
    config: {{"request": {{"set": {{"x-demo": "added by a plugin"}}}}, "response": {{"set": {{"x-powered-by": "proxlet"}}}}}}
"#,
        logger = module("logger"),
        validator = module("request_validator"),
        modifier = module("header_modifier"),
    );
    let dir = root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sidecar.yaml");
    std::fs::write(&path, yaml)?;
    Ok(path)
}

fn run_build() -> Result<()> {
    sh(cargo().args([
        "build",
        "-p",
        "proxlet-sidecar",
        "-p",
        "proxlet-tests",
        "--bins",
    ]))
}

fn wait_ready() -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("http://{ADMIN}/readyz");
    while Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", &url])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("proxlet-sidecar did not become ready at {url} within 10s")
}
