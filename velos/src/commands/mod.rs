//! Runs a parsed [`Command`]: the I/O half of the command line.
//!
//! Most commands have their own file; `ping`, `kill` and `completions` are short and live
//! here.
//! Every command that needs the daemon gets it from [`autostart::connect`] (which starts
//! one if needed), except `kill`, which must never start a daemon just to stop it.
//! Results go to stdout, hints to stderr; errors are returned to `main`, which prints them.
//! SDK errors pass through [`explain`], which adds what to do next.

mod apply;
mod change;
mod import;
mod info;
mod list;
mod list_json;
pub mod log_filter;
mod logs;
mod metrics;
mod monit;
mod outcome;
mod reload;
pub mod runtime;
mod save;
mod scale;
mod signal;
mod start;
mod startup;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::CommandFactory;
use futures_lite::future::block_on;
use rustix::process::{Pid, Signal};
use velos_proto::{ErrorCode, Home};
use velos_sdk::{Client, Error as SdkError};

use crate::autostart;
use crate::cli::{Cli, Command};
use crate::output::Style;

use change::Change;

/// The shortest a `velos kill` waits for the daemon to remove its pid file.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How often `velos kill` looks at the pid file.
const KILL_POLL: Duration = Duration::from_millis(20);

/// Runs the command.
pub fn run(cli: Cli) -> Result<()> {
    let style = Style::detect();
    match cli.command {
        Command::Start(args) => start::run(args.0),
        Command::Scale { name, count } => scale::run(&name, &count),
        Command::Stop { target, file } => change::run(&target, Change::Stop, &file),
        Command::Restart {
            target,
            update_env,
            file,
        } => change::run(&target, Change::Restart { update_env }, &file),
        Command::Reload {
            target,
            parallel,
            update_env,
            file,
        } => reload::run(&target, parallel, update_env, &file),
        Command::Signal { signal, target } => signal::run(&signal, &target),
        Command::Delete { target, logs, file } => {
            change::run(&target, Change::Delete { logs }, &file)
        }
        Command::List { json } => list::run(json, style),
        Command::Logs(args) => logs::run(args, style),
        Command::Monit => monit::run(),
        Command::Metrics { action } => metrics::run(action),
        Command::Info { target, json } => info::run(&target, json, style),
        Command::Flush { target } => logs::flush(target.as_deref()),
        Command::Save { force } => save::save(force),
        Command::Resurrect => save::resurrect(),
        Command::Import(args) => import::run(&args),
        Command::Startup { system } => startup::run(system),
        Command::Runtime(args) => runtime::run(args.0, style),
        Command::Completions { shell } => completions(shell),
        Command::Ping => ping(),
        Command::Kill => kill(),
    }
}

/// A client of the running daemon, started if there is none.
fn daemon() -> Result<Client> {
    let home = Home::from_env()?;
    autostart::connect(&home)
}

/// Runs `request`, which changes nothing, on the daemon (started if needed). It goes
/// first to whatever accepts on the socket, without the ping [`daemon`] sends first: its
/// answer is proof enough of a live daemon, and saves a round trip. A daemon that closes
/// the connection before answering (or is gone by the time the SDK connects again after
/// a failed write) has died meanwhile, or was dying: the request is sent
/// again on a client of [`daemon`], and once more should that daemon die too, each time
/// to the daemon started in its place. Requests that change something are never resent
/// this way: they may have been carried out.
fn retrying<T>(request: impl Fn(&mut Client) -> std::result::Result<T, SdkError>) -> Result<T> {
    let home = Home::from_env()?;
    if let Some(mut client) = autostart::connect_unpinged(&home)? {
        match request(&mut client) {
            // Closed unanswered, or gone when the SDK connected again after a failed
            // write: what the ping of `daemon` would have found.
            Err(
                SdkError::Disconnected | SdkError::NotRunning { .. } | SdkError::Refused { .. },
            ) => {}
            result => return result.map_err(explain),
        }
    }
    match request(&mut autostart::connect(&home)?) {
        Err(SdkError::Disconnected) => request(&mut autostart::connect(&home)?).map_err(explain),
        result => result.map_err(explain),
    }
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
        // The daemon's messages say what to do next themselves (`not-found` for a process
        // points to 'velos list', for a resurrect with nothing saved to 'velos save'): shown
        // as they are, whatever the code.
        SdkError::Daemon { message, .. } => anyhow!(message),
        // An answer we cannot read most likely comes from another version.
        SdkError::Protocol(err) => anyhow!(
            "cannot understand the daemon's answer ({err}); if it is another version of velos, \
             run 'velos kill' and retry"
        ),
        // Read-only requests were sent again (see `retrying`); anything else may have
        // been done before the daemon went away.
        SdkError::Disconnected => anyhow!(
            "{}; the request may or may not have been carried out: see 'velos list'",
            SdkError::Disconnected
        ),
        other => anyhow::Error::new(other),
    }
}

/// [`explain`] for a request that changes something (`what`: `the start of 'api'`,
/// `the save`): when no answer came in time, or the connection closed first, the daemon
/// may still carry it out, so the message says the outcome is unknown and where to look,
/// rather than that it failed.
pub fn explain_change(err: SdkError, what: &str) -> anyhow::Error {
    match err {
        SdkError::Timeout { after } => anyhow!(
            "the daemon did not answer within {}; {what} may still happen: check 'velos list'",
            humantime::format_duration(after)
        ),
        SdkError::Disconnected => anyhow!(
            "{}; {what} may or may not have happened: check 'velos list'",
            SdkError::Disconnected
        ),
        other => explain(other),
    }
}

/// `velos completions <shell>`: the script clap_complete writes. Written to a buffer
/// first: clap_complete panics on a write error, and a closed stdout is not a panic.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "velos", &mut script);
    let mut stdout = io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

/// `velos ping`
fn ping() -> Result<()> {
    let info = retrying(|client| block_on(client.ping()))?;
    crate::build_skew::warn(&info);
    writeln!(
        io::stdout().lock(),
        "velosd {} is running (pid {})",
        info.version,
        info.pid
    )?;
    if let (Some(limit), Some(room)) = (info.max_open_files, info.max_processes) {
        writeln!(
            io::stdout().lock(),
            "open files limit {limit}: room for about {room} processes"
        )?;
    }
    if let Some(error) = &info.state_error {
        eprintln!("warning: the daemon's process list is not saved: {error}");
    }
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
    let mut client = match Client::connect_blocking(home.socket_path()) {
        Ok(client) => client,
        Err(SdkError::NotRunning { .. } | SdkError::Refused { .. }) => {
            if let autostart::Stale::Removed {
                previous: Some(pid),
            } = autostart::remove_stale_files(&home)?
            {
                eprintln!("{}", autostart::crash_note(pid));
            }
            writeln!(io::stdout().lock(), "the daemon is not running")?;
            return Ok(());
        }
        Err(err) => return Err(explain(err)),
    };

    // The pid file of this daemon, to wait for: once it is gone, a daemon that a racing
    // command started meanwhile has a pid file of its own, which is no reason to wait.
    // A daemon whose pid file was removed by hand is waited for by its socket instead
    // (it removes that just before the pid file).
    let pid_path = home.pid_path();
    let pid_file = autostart::open_pid_file(&pid_path)?;
    let socket_path = home.socket_path();
    let socket = identity(&socket_path);
    let still_there = || match &pid_file {
        Some(file) => autostart::names_file(&pid_path, file),
        None => socket.is_some() && identity(&socket_path) == socket,
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

    let deadline = Instant::now() + wait;
    while still_there() {
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

/// The device and inode of the file at `path`, if there is one (not following a link).
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

/// Sends SIGTERM to the pid in `velos.pid`.
fn terminate_by_pid(home: &Home) -> Result<()> {
    let pid_path = home.pid_path();
    let mut text = String::new();
    autostart::open_pid_file(&pid_path)?
        .with_context(|| format!("{} is gone", pid_path.display()))?
        .read_to_string(&mut text)
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

    use super::*;

    #[test]
    fn not_found_messages_are_the_daemons_whatever_they_say() {
        let err = explain(SdkError::Daemon {
            code: ErrorCode::NotFound,
            message: "no process named 'api' (see 'velos list')".into(),
        });
        assert_eq!(err.to_string(), "no process named 'api' (see 'velos list')");
        // Not a process: no pointer to the list is added (it used to be, unless the
        // message happened to mention 'velos list').
        let err = explain(SdkError::Daemon {
            code: ErrorCode::NotFound,
            message: "nothing saved yet: run 'velos save' first".into(),
        });
        assert_eq!(err.to_string(), "nothing saved yet: run 'velos save' first");
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
    fn a_change_without_an_answer_has_an_unknown_outcome() {
        let err = explain_change(
            SdkError::Timeout {
                after: Duration::from_secs(10),
            },
            "the start of 'api'",
        );
        assert_eq!(
            err.to_string(),
            "the daemon did not answer within 10s; the start of 'api' may still happen: check \
             'velos list'"
        );
        let err = explain_change(SdkError::Disconnected, "the save");
        assert!(
            err.to_string()
                .ends_with("the save may or may not have happened: check 'velos list'")
        );
        let err = explain_change(
            SdkError::Daemon {
                code: ErrorCode::NotFound,
                message: "no process named 'x' (see 'velos list')".into(),
            },
            "the stop of 'x'",
        );
        assert_eq!(err.to_string(), "no process named 'x' (see 'velos list')");
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
