//! `velos`: the command line of the velos process manager.
//!
//! This file parses the command line, runs the command, and is the only place that
//! prints errors and decides the exit code: `error: ...` on one line on stderr and exit 1.
//! A closed stdout (`velos list | head -1`) is not an error: the reader got what it wanted.

#![forbid(unsafe_code)]

mod autostart;
mod bounds;
// Its doc comments are clap's help text, where `[default: 5s]` is a note, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
mod cli;
mod commands;
mod config;
mod output;
mod size;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
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
