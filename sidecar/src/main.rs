//! Parses the command line, builds the runtime, and runs the sidecar until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use proxlet_sidecar::{Cli, Config};

fn main() -> ExitCode {
    let started = Instant::now();
    // One TLS provider for the whole process (the listener's and the OTLP exporter's clients):
    // ring. Installing fails only if one is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cli = Cli::parse();
    cli.plugin_flags = proxlet_sidecar::config::plugin_flags(std::env::args());
    let cfg = match Config::load(&cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(cfg, cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cfg: Config, cli: Cli, started: Instant) -> anyhow::Result<()> {
    let runtime = if cfg.workers.get() == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.workers.get())
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let _telemetry = proxlet_sidecar::telemetry::init(cfg.log_format)?;
        let watch = cli.config.clone().map(|path| (path, cli));
        proxlet_sidecar::run(cfg, watch, started, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; waiting for ctrl-c");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
