//! The command line as typed values: [`Cli`] and its [`Command`]s, parsed by clap.
//!
//! Each command's doc comment is its help: the first line is the short help, and the
//! long help ends with an example. Values are parsed into types here (`--kill-timeout`
//! through humantime), so a bad duration is a usage error before anything happens.
//! Everything that needs I/O (absolute script paths, the environment, the daemon) is
//! done by `commands`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A process manager: keeps your programs running, and their logs, in the background
///
/// velos starts a small daemon (velosd) on first use, which supervises the programs you
/// start and keeps what they write in $VELOS_HOME/logs (default ~/.velos/logs).
///
/// Example: velos start app.js --name api && velos list
#[derive(Debug, Parser)]
#[command(name = "velos", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every velos command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a script or program as a managed process
    ///
    /// The interpreter comes from the script's `#!` line, its executable bit, or its
    /// extension (.js .mjs .cjs: node, .py: python3, .sh: sh, .rb: ruby). The process gets
    /// this shell's environment and working directory, which velos remembers for restarts.
    ///
    /// Example: velos start server.js --name api --kill-timeout 10s -- --port 8080
    Start(StartArgs),

    /// Stop a process gracefully: SIGTERM, then SIGKILL after its kill timeout
    ///
    /// The entry stays in the list with status `stopped`; `velos restart` starts it again.
    ///
    /// Example: velos stop api
    Stop {
        /// A process name, an id, or `all`.
        target: String,
    },

    /// Stop a process (if it runs) and start it again with the same settings
    ///
    /// It keeps its name and id and gets a new pid.
    ///
    /// Example: velos restart api --update-env
    Restart {
        /// A process name, an id, or `all`.
        target: String,
        /// Start it with this shell's environment instead of the one it was started with.
        #[arg(long)]
        update_env: bool,
    },

    /// Stop a process if it runs, then remove it from the list
    ///
    /// Its log files stay in $VELOS_HOME/logs.
    ///
    /// Example: velos delete api
    #[command(visible_alias = "rm", alias = "del")]
    Delete {
        /// A process name, an id, or `all`.
        target: String,
    },

    /// Show every process: id, name, pid, status, uptime, restarts, last exit
    ///
    /// With --json, print a JSON array with one object per process instead, for scripts
    /// (keys include id, name, pid, status and exit_code).
    ///
    /// Example: velos list --json | jq '.[] | select(.status == "errored") | .name'
    #[command(visible_aliases = ["ls", "ps"])]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Print the last lines a process wrote to stdout and stderr
    ///
    /// Each line is prefixed with the process's name; stderr lines' prefix is red on a
    /// terminal. Without a target, show every process's lines.
    ///
    /// Example: velos logs api -n 50
    Logs(LogsArgs),

    /// Check that the daemon answers (starting it if needed)
    ///
    /// Example: velos ping
    Ping,

    /// Stop every process gracefully, then shut the daemon down
    ///
    /// Does nothing when no daemon runs. The next command starts a fresh daemon.
    ///
    /// Example: velos kill
    Kill,
}

/// `velos start`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The script or program to run (relative to the current directory).
    pub script: String,

    /// The process name [default: the script's file stem, `app.js` -> `app`].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// How long `stop` waits after SIGTERM before SIGKILL, like `500ms` or `10s` [default: 5s].
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub kill_timeout: Option<Duration>,

    /// The program that runs the script, instead of the one velos picks.
    #[arg(long, value_name = "PROG")]
    pub interpreter: Option<String>,

    /// Do not start it again when it exits unexpectedly (non-zero, or a signal).
    #[arg(long)]
    pub no_autorestart: bool,

    /// Arguments passed to the script, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// `velos logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A process name, an id, or `all` [default: all].
    pub target: Option<String>,

    /// How many of the last lines to print.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 15)]
    pub lines: u32,

    /// Print the lines exactly as written: no prefix, no colour.
    #[arg(long)]
    pub raw: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("velos").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn start_reads_name_duration_and_args_after_the_separator() {
        let cli = parse(&[
            "start",
            "app.js",
            "--name",
            "api",
            "--kill-timeout",
            "1s 500ms",
            "--",
            "--port",
            "3000",
        ])
        .unwrap();
        let Command::Start(start) = cli.command else {
            panic!("not start: {cli:?}");
        };
        assert_eq!(start.script, "app.js");
        assert_eq!(start.name.as_deref(), Some("api"));
        assert_eq!(start.kill_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(start.args, ["--port", "3000"]);
    }

    #[test]
    fn a_bad_duration_is_a_usage_error() {
        let err = parse(&["start", "app.js", "--kill-timeout", "soon"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn pm2_aliases_work() {
        for alias in ["list", "ls", "ps"] {
            assert!(matches!(
                parse(&[alias]).unwrap().command,
                Command::List { json: false }
            ));
        }
        for alias in ["delete", "rm", "del"] {
            assert!(matches!(
                parse(&[alias, "api"]).unwrap().command,
                Command::Delete { .. }
            ));
        }
    }

    #[test]
    fn logs_default_to_fifteen_lines_and_take_a_short_flag() {
        let Command::Logs(logs) = parse(&["logs", "api"]).unwrap().command else {
            panic!("not logs");
        };
        assert_eq!(
            (logs.target.as_deref(), logs.lines, logs.raw),
            (Some("api"), 15, false)
        );
        let Command::Logs(logs) = parse(&["logs", "0", "-n", "50", "--raw"]).unwrap().command
        else {
            panic!("not logs");
        };
        assert_eq!(
            (logs.target.as_deref(), logs.lines, logs.raw),
            (Some("0"), 50, true)
        );
    }
}
