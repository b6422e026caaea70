//! Runs a parsed [`Command`]: the I/O half of the command line.
//!
//! `start`, `list` and `logs` have their own files; the rest are short and live here.
//! Every command that needs the daemon gets it from [`autostart::connect`] (which starts
//! one if needed), except `kill`, which must never start a daemon just to stop it.
//! Results go to stdout, hints to stderr; errors are returned to `main`, which prints them.
//! SDK errors pass through [`explain`], which adds what to do next.

mod list;
mod logs;
mod start;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures_lite::future::block_on;
use rustix::process::{Pid, Signal};
use velos_proto::{ErrorCode, Home, ProcessInfo, RestartParams, Target};
use velos_sdk::{Client, Error as SdkError};

use crate::autostart;
use crate::cli::{Cli, Command};
use crate::output::Style;

/// The shortest a `velos kill` waits for the daemon to remove its pid file.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How often `velos kill` looks at the pid file.
const KILL_POLL: Duration = Duration::from_millis(20);

/// Runs the command.
pub fn run(cli: Cli) -> Result<()> {
    let style = Style::detect();
    match cli.command {
        Command::Start(args) => start::run(args),
        Command::Stop { target } => change(&target, Change::Stop),
        Command::Restart { target, update_env } => change(&target, Change::Restart { update_env }),
        Command::Delete { target } => change(&target, Change::Delete),
        Command::List { json } => list::run(json, style),
        Command::Logs(args) => logs::run(args, style),
        Command::Ping => ping(),
        Command::Kill => kill(),
    }
}

/// A client of the running daemon, started if there is none.
fn daemon() -> Result<Client> {
    let home = Home::from_env()?;
    autostart::connect(&home)
}

/// Turns an SDK error into the one-line message the user sees, with what to do next.
pub fn explain(err: SdkError) -> anyhow::Error {
    match err {
        SdkError::VersionMismatch { daemon, client } => anyhow!(
            "the running daemon is a different version of velos (it speaks protocol {daemon}, \
             this velos {client}): run 'velos kill' and retry"
        ),
        SdkError::Daemon {
            code: ErrorCode::UnknownMethod,
            message,
        } => anyhow!(
            "the running daemon is a different version of velos ({message}): run 'velos kill' \
             and retry"
        ),
        // The daemon's message usually carries the hint already; add it once otherwise.
        SdkError::Daemon {
            code: ErrorCode::NotFound,
            message,
        } if !message.contains("velos list") => anyhow!("{message} (see 'velos list')"),
        SdkError::Daemon { message, .. } => anyhow!(message),
        // An answer we cannot read most likely comes from another version.
        SdkError::Protocol(err) => anyhow!(
            "cannot understand the daemon's answer ({err}); if it is another version of velos, \
             run 'velos kill' and retry"
        ),
        other => anyhow::Error::new(other),
    }
}

/// What `stop`, `restart` and `delete` do to their targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Stop,
    Restart { update_env: bool },
    Delete,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Stop => "stop",
            Change::Restart { .. } => "restart",
            Change::Delete => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Change::Stop => "stopped",
            Change::Restart { .. } => "restarted",
            Change::Delete => "deleted",
        }
    }
}

/// `velos stop|restart|delete <name|id|all>`
fn change(target: &str, change: Change) -> Result<()> {
    let target = Target::parse(target);
    let mut client = daemon()?;
    let changed = match change {
        Change::Stop => block_on(client.stop(target.clone())),
        Change::Restart { update_env: false } => block_on(client.restart(target.clone())),
        Change::Restart { update_env: true } => block_on(client.restart_with(RestartParams {
            target: target.clone(),
            env: Some(start::current_env()),
        })),
        Change::Delete => block_on(client.delete(target.clone())),
    }
    .map_err(explain)?;

    if changed.is_empty() && target == Target::All {
        eprintln!("no processes to {}", change.verb());
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    for process in &changed {
        writeln!(stdout, "{}", change_line(change, process))?;
    }
    Ok(())
}

/// `stopped 'api' (id 0)`, `restarted 'api' (id 0, pid 1234)`.
fn change_line(change: Change, process: &ProcessInfo) -> String {
    let (name, id) = (&process.name, process.id);
    match (change, process.pid) {
        (Change::Restart { .. }, Some(pid)) => {
            format!("{} '{name}' (id {id}, pid {pid})", change.past())
        }
        (Change::Restart { .. }, None) => format!(
            "{} '{name}' (id {id}), now {}{}",
            change.past(),
            process.status,
            process
                .error
                .as_deref()
                .map(|error| format!(": {error}"))
                .unwrap_or_default()
        ),
        _ => format!("{} '{name}' (id {id})", change.past()),
    }
}

/// `velos ping`
fn ping() -> Result<()> {
    let info = block_on(daemon()?.ping()).map_err(explain)?;
    writeln!(
        io::stdout().lock(),
        "velosd {} is running (pid {})",
        info.version,
        info.pid
    )?;
    let ours = env!("CARGO_PKG_VERSION");
    if info.version != ours {
        eprintln!(
            "warning: velosd is version {}, this velos {ours}: run 'velos kill' to switch",
            info.version
        );
    }
    Ok(())
}

/// `velos kill`: never starts a daemon; waits until the running one has removed its pid
/// file, which it does last.
fn kill() -> Result<()> {
    let home = Home::from_env()?;
    let mut client = match block_on(Client::connect(home.socket_path())) {
        Ok(client) => client,
        Err(SdkError::NotRunning { .. } | SdkError::Refused { .. }) => {
            autostart::remove_stale_files(&home)?;
            writeln!(io::stdout().lock(), "the daemon is not running")?;
            return Ok(());
        }
        Err(err) => return Err(explain(err)),
    };

    // The daemon stops every process before it exits, each within its kill timeout.
    let longest_stop = block_on(client.list())
        .ok()
        .and_then(|processes| processes.iter().map(|p| p.kill_timeout_ms).max())
        .map_or(Duration::ZERO, Duration::from_millis);
    let wait = KILL_WAIT.max(longest_stop + Duration::from_secs(5));

    match block_on(client.kill()) {
        Ok(()) => {}
        // A daemon of another version may not read our request, but it does stop on
        // SIGTERM; this is what makes "run 'velos kill' and retry" work.
        Err(SdkError::VersionMismatch { .. })
        | Err(SdkError::Daemon {
            code: ErrorCode::UnknownMethod,
            ..
        }) => terminate_by_pid(&home)?,
        Err(err) => return Err(explain(err)),
    }
    drop(client);

    let pid_path = home.pid_path();
    let deadline = Instant::now() + wait;
    while pid_path.exists() {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the daemon is still shutting down after {}; see {}",
                humantime::format_duration(wait),
                home.daemon_log_path().display()
            );
        }
        std::thread::sleep(KILL_POLL);
    }
    writeln!(io::stdout().lock(), "daemon stopped")?;
    Ok(())
}

/// Sends SIGTERM to the pid in `velos.pid`.
fn terminate_by_pid(home: &Home) -> Result<()> {
    let pid_path = home.pid_path();
    let text = std::fs::read_to_string(&pid_path)
        .with_context(|| format!("reading {}", pid_path.display()))?;
    let pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(Pid::from_raw)
        .with_context(|| format!("{} does not hold a pid", pid_path.display()))?;
    rustix::process::kill_process(pid, Signal::TERM)
        .map_err(io::Error::from)
        .with_context(|| {
            format!(
                "sending SIGTERM to the daemon (pid {})",
                pid.as_raw_nonzero()
            )
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use velos_proto::ProcessStatus;

    use super::*;

    fn process(pid: Option<u32>, status: ProcessStatus) -> ProcessInfo {
        ProcessInfo {
            id: 3,
            name: "api".into(),
            pid,
            status,
            exit_code: None,
            signal: None,
            restarts: 1,
            uptime_ms: None,
            script: "/srv/api.js".into(),
            interpreter: None,
            args: vec![],
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            out_log: String::new(),
            err_log: String::new(),
            error: None,
            log_error: None,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            max_log_bytes: None,
            log_files: 5,
            restart_in_ms: None,
            cpu_percent: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn each_change_says_what_happened_to_whom() {
        let stopped = process(None, ProcessStatus::Stopped);
        assert_eq!(change_line(Change::Stop, &stopped), "stopped 'api' (id 3)");
        assert_eq!(
            change_line(Change::Delete, &stopped),
            "deleted 'api' (id 3)"
        );
        let running = process(Some(77), ProcessStatus::Running);
        assert_eq!(
            change_line(Change::Restart { update_env: false }, &running),
            "restarted 'api' (id 3, pid 77)"
        );
        let mut errored = process(None, ProcessStatus::Errored);
        errored.error = Some("node: not found".into());
        assert_eq!(
            change_line(Change::Restart { update_env: true }, &errored),
            "restarted 'api' (id 3), now errored: node: not found"
        );
    }

    #[test]
    fn not_found_gets_the_list_hint_once() {
        let err = explain(SdkError::Daemon {
            code: ErrorCode::NotFound,
            message: "no process named 'api'".into(),
        });
        assert_eq!(err.to_string(), "no process named 'api' (see 'velos list')");
        let err = explain(SdkError::Daemon {
            code: ErrorCode::NotFound,
            message: "no process named 'api' (see 'velos list')".into(),
        });
        assert_eq!(err.to_string(), "no process named 'api' (see 'velos list')");
    }

    #[test]
    fn other_versions_are_named_with_the_way_out() {
        for err in [
            SdkError::VersionMismatch {
                daemon: 2,
                client: 1,
            },
            SdkError::Daemon {
                code: ErrorCode::UnknownMethod,
                message: "unknown method 'log.read'".into(),
            },
        ] {
            let text = format!("{:#}", explain(err));
            assert!(text.contains("different version"), "{text}");
            assert!(text.ends_with("run 'velos kill' and retry"), "{text}");
        }
    }

    #[test]
    fn connection_errors_keep_the_sdks_words() {
        let socket = PathBuf::from("/h/velos.sock");
        let sdk_text = SdkError::Refused {
            socket: socket.clone(),
        }
        .to_string();
        assert_eq!(
            format!("{:#}", explain(SdkError::Refused { socket })),
            sdk_text
        );
    }
}
