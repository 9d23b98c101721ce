//! berthd: flags → configuration → logging → run. The one home of anyhow.

use std::process::ExitCode;

use clap::Parser;

use berthd::cli::Cli;
use berthd::{config, daemon, release};

fn main() -> ExitCode {
    // Started by containerd's shim as a container's logger (binary:// URI).
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == berthd::backends::logging::copier::SUBCOMMAND) {
        let code = berthd::backends::logging::copier::main(args.next().as_deref());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    if cli.version {
        println!("{}", release::version_line());
        return ExitCode::SUCCESS;
    }
    let config = match config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.validate {
        return match daemon::check_tls(&config) {
            Ok(()) => {
                eprintln!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    berthd::logging::init(&config);
    // Before the runtime's threads exist: this edits the environment.
    berthd::server::listeners::take_activated_sockets();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(daemon::run(config, cli));
    // Blocking threads (a FIFO open waiting for a shim that never came) must
    // not keep a daemon that has finished shutting down alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
