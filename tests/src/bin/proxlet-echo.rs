//! `proxlet-echo`: the end-to-end tests' upstream as a standalone process, for the demo and for
//! trying the sidecar by hand (`proxlet-echo --listen 127.0.0.1:8080`). Routes are listed in
//! `proxlet_tests::support::upstream`. Stops on SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

/// A test upstream speaking HTTP/1.1 and h2c on one port.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    eprintln!("proxlet-echo listening on {}", listener.local_addr()?);
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        () = proxlet_tests::support::upstream::serve(listener) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
