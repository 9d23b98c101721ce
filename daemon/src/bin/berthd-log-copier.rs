//! `berthd-log-copier log-copier CONFIG`: the per-container logger that
//! containerd's shim starts (see backends/logging/copier.rs). A binary of
//! its own rather than `berthd log-copier`: one runs beside every logged
//! container, and a small program costs each of them far less memory
//! (the daemon's relocated tables alone are ~0.5 MB per process) and
//! starts faster, on the container start's critical path.

use std::process::ExitCode;

use berthd::backends::logging::copier;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if !args.next().is_some_and(|a| a == copier::SUBCOMMAND) {
        eprintln!("usage: {} {} CONFIG", copier::PROGRAM, copier::SUBCOMMAND);
        return ExitCode::from(2);
    }
    ExitCode::from(u8::try_from(copier::main(args.next().as_deref())).unwrap_or(1))
}
