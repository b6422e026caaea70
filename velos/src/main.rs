//! `velos`: the command line of the velos process manager.
//!
//! This file parses the command line, runs the command, and is the only place that
//! prints errors and decides the exit code: `error: ...` on one line on stderr and exit 1.
//! A closed stdout (`velos list | head -1`) is not an error: the reader got what it wanted.

// No unsafe code but the allocator's (`arena`, which allows it for itself).
#![deny(unsafe_code)]

mod arena;
mod autostart;
mod bounds;
mod build_skew;
// Its doc comments are clap's help text, where `[default: 5s]` is a note, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
mod cli;
mod commands;
mod config;
mod ecosystem;
mod output;
mod process_args;
mod size;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use velos_proto::{ECHO_CHARS, echo};

use crate::cli::Cli;

fn main() -> ExitCode {
    // `velos-runtime ARGS` (a link to this binary) is `velos runtime ARGS`.
    let args: Vec<_> = std::env::args_os().collect();
    let parsed = if commands::runtime::invoked_as_runtime(&args) {
        commands::runtime::parse_as_runtime(args)
    } else {
        Cli::try_parse_from(args)
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<commands::runtime::Exit>() {
            // `velos runtime` ends with its apps' verdict, which is not an error to print.
            Some(exit) => ExitCode::from(exit.0),
            None => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Prints clap's usage error (or help, or version) and gives its exit code. An argument
/// longer than [`ECHO_CHARS`] is shown cut (`velos_proto::echo`): a 100,000-character
/// value must not come back whole in the error.
fn usage_error(err: clap::Error) -> ExitCode {
    let long: Vec<String> = std::env::args_os()
        .filter_map(|arg| arg.into_string().ok())
        .filter(|arg| arg.chars().count() > ECHO_CHARS)
        .collect();
    if long.is_empty() || !err.use_stderr() {
        err.exit();
    }
    let mut text = err.render().to_string();
    for arg in &long {
        text = text.replace(arg.as_str(), &echo(arg));
    }
    eprint!("{text}");
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// Whether writing to stdout failed because its reader went away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn a_broken_pipe_anywhere_in_the_chain_counts_as_success() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing the table")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no process named 'api'")));
    }
}
