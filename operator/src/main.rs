//! `proxlet-operator`: parse the command line, install the TLS crypto provider, start logging,
//! build the runtime, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use proxlet_operator::cli::{Cli, Command, CommandError};
use serde::Serialize;

fn main() -> ExitCode {
    proxlet_operator::fetch::install_crypto();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Run(args) => match runtime.block_on(args.run()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Fetch(args) => report(runtime.block_on(args.run())),
        Command::Publish(args) => report(runtime.block_on(args.run())),
    }
}

/// Prints the result as JSON on stdout, or `error: <Reason>: <message>` on stderr.
fn report<T: Serialize>(result: Result<T, CommandError>) -> ExitCode {
    match result.map(|value| serde_json::to_string(&value)) {
        Ok(Ok(json)) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{json}");
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: cannot print the result: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
