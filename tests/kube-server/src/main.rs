//! `kube-test-server`: parse flags → bind → write the kubeconfig → announce the address →
//! serve until stdin closes or SIGTERM/SIGINT arrives.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use proxlet_kube_test_server::app::{App, Settings};
use proxlet_kube_test_server::cli::Args;
use proxlet_kube_test_server::{kubeconfig, meta, server};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let token = args.token.clone().unwrap_or_else(|| {
        meta::random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    let app = Arc::new(App::new(Settings {
        admin_token: token.clone(),
        forbid: args.forbid.clone(),
        history: args.watch_history,
        address: addr.to_string(),
    }));
    if let Some(path) = &args.kubeconfig {
        kubeconfig::write(path, addr, &token)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}").context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    drop(out);
    server::serve(listener, app, args.log, stop(args.ignore_stdin)).await;
    Ok(())
}

/// Completes on SIGTERM, SIGINT, or (unless ignored) the end of stdin.
async fn stop(ignore_stdin: bool) {
    let (tx, stdin_closed) = oneshot::channel::<()>();
    if !ignore_stdin {
        // A plain thread: the blocking read must not keep the runtime from shutting down.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        });
    }
    let stdin = async {
        if ignore_stdin || stdin_closed.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = stdin => {}
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
