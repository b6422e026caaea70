//! `velos runtime` (installed as `velos-runtime` too): velos as a container's main
//! process.
//!
//! Order: the runtime becomes a child subreaper (as PID 1 it reaps every orphan anyway),
//! installs its signal handlers, checks that no daemon answers on the home, and starts
//! `velosd --no-daemon` as its child, in a process group of its own (a terminal's Ctrl-C
//! reaches the runtime only; the runtime decides how the apps stop) and, unless
//! `--keep-logs`, with `--no-log-files`: the apps' lines stay in the daemon's memory and go
//! to the runtime's stdout and stderr, where the container's log driver takes them. It then
//! follows every process's lines (before the first start, so no line is missed) and the
//! event stream, and starts the apps as `velos start` does, on a thread of its own, so a
//! signal that comes while an app gets ready is acted on at once.
//!
//! Then it waits for one of:
//! - SIGTERM, SIGINT or SIGHUP: every process is stopped at once, in parallel, each with its kill
//!   signal and kill timeout (`stop all`); then the daemon is shut down and the runtime
//!   exits 0 when every app ended cleanly (none errored or waiting to restart before the
//!   signal, none needing SIGKILL), else 1 ([`after_signal`]);
//! - every process has ended for good (`stopped` or `errored`: nothing runs, nothing
//!   waits to restart), unless `--no-auto-exit`: the runtime exits with the code of the
//!   first app that failed (a signal counts as 128 + its number), or 0 when all exited 0
//!   ([`Ends`]);
//! - the daemon exits by itself (a crash): exit 1.
//!
//! Every SIGCHLD reaps whatever child is done (`waitpid(-1)`): orphans re-parented to the
//! runtime (as PID 1, or as the subreaper of a `docker exec`'s leftovers) never stay
//! zombies, and the daemon's own exit is noticed there.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_io::block_on;
use async_signal::{Signal, Signals};
use clap::{CommandFactory, FromArgMatches};
use futures_lite::{FutureExt, StreamExt};
use velos_proto::{Home, ProcessEvent, ProcessInfo, ProcessStatus, Target};
use velos_sdk::Client;

use super::explain;
use super::logs::{Relay, relay};
use super::start::Prepared;
use crate::autostart;
use crate::cli::{Cli, Command as CliCommand, RuntimeArgs};
use crate::output::Style;

/// The daemon's variable naming the parent it stops with (velosd's `PARENT_ENV`).
const PARENT_ENV: &str = "VELOSD_PARENT_PID";

/// How long the daemon may take to answer after it was started.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the runtime waits for the daemon to exit once asked to, and for the last
/// lines to be written, before it goes anyway.
const DAEMON_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two looks at whether the daemon answers yet.
const START_POLL: Duration = Duration::from_millis(10);

/// The exit code the runtime ends with, without an error line: `main` exits with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// How the runtime was asked to behave.
struct Options {
    mode: Relay,
    style: Style,
    /// Exit once every app has ended (not `--no-auto-exit`).
    auto_exit: bool,
}

/// What woke the runtime up.
enum Wake {
    Signal(Signal),
    Event(Option<ProcessEvent>),
    Started(Result<()>),
}

/// Runs `velos runtime`; the exit code comes back as an [`Exit`] error.
pub fn run(args: RuntimeArgs, style: Style) -> Result<()> {
    let home = Home::from_env()?;
    become_subreaper();
    // Before the daemon exists, so that neither its exit nor a signal is missed.
    // SIGHUP (the terminal of a foreground runtime closed, or `docker kill -s HUP`) is a
    // SIGTERM: its default action would end the runtime alone, leaving the daemon and the
    // apps running unsupervised. `velos signal HUP APP` sends an app its own.
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup, Signal::Child])
        .context("installing the signal handlers")?;
    let socket = home.socket_path();
    if velos_sdk::blocking::Client::connect(&socket).is_ok() {
        bail!(
            "a velos daemon already runs on {} (stop it with 'velos kill', or give the \
             runtime its own VELOS_HOME)",
            home.root().display()
        );
    }
    let RuntimeArgs {
        start,
        raw,
        json,
        no_auto_exit,
        keep_logs,
    } = args;
    // Read the config (node may run for it) before any child is reaped here.
    let prepared = super::start::prepare(*start)?;
    let mut daemon = Daemon::start(&home, keep_logs)?;
    let client = daemon.connect(&socket, &mut signals)?;
    let mode = match (raw, json) {
        (_, true) => Relay::Json,
        (true, false) => Relay::Raw,
        (false, false) => Relay::Prefixed,
    };
    let options = Options {
        mode,
        style,
        auto_exit: !no_auto_exit,
    };
    let result = supervise(client, &mut daemon, &mut signals, prepared, options);
    daemon.end(&mut signals);
    let code = result?;
    Err(Exit(code).into())
}

/// Follows, starts the apps, and waits (see the module docs); the exit code.
fn supervise(
    mut client: Client,
    daemon: &mut Daemon,
    signals: &mut Signals,
    prepared: Prepared,
    Options {
        mode,
        style,
        auto_exit,
    }: Options,
) -> Result<u8> {
    let follow = block_on(client.follow_logs(Target::All, 0)).map_err(explain)?;
    let lookup = block_on(Client::connect(client.socket_path())).map_err(explain)?;
    daemon.relay = Some(std::thread::spawn(move || {
        relay(follow, mode, style, lookup)
    }));
    let mut events = block_on(client.events()).map_err(explain)?;
    let (started_tx, started_rx) = async_channel::bounded(1);
    std::thread::spawn(move || {
        let result = super::start::run_prepared(prepared, &mut io::stderr());
        let _ = started_tx.send_blocking(result);
    });
    let mut started = false;
    let mut ends = Ends::default();
    loop {
        let wake = block_on(
            async { Wake::Signal(next_signal(signals).await) }
                .or(async { Wake::Event(events.next().await.and_then(|event| event.ok())) })
                .or(async {
                    match started_rx.recv().await {
                        Ok(result) => Wake::Started(result),
                        // Sent once: never again.
                        Err(_) => futures_lite::future::pending().await,
                    }
                }),
        );
        match wake {
            Wake::Signal(Signal::Child) => {
                if let Some(status) = daemon.reap() {
                    bail!("the daemon exited ({status}); see its lines above");
                }
                continue;
            }
            Wake::Signal(signal) => {
                note(&format!(
                    "{}: stopping every process",
                    match signal {
                        Signal::Int => "SIGINT",
                        Signal::Hup => "SIGHUP",
                        _ => "SIGTERM",
                    }
                ));
                return stop_everything(&mut client);
            }
            Wake::Started(result) => {
                started = true;
                if let Err(error) = result {
                    let list = block_on(client.list()).map_err(explain)?;
                    if list.is_empty() {
                        return Err(error);
                    }
                    note(&format!("{error:#}"));
                }
            }
            Wake::Event(None) => {
                if let Some(status) = daemon.wait_exit(signals) {
                    bail!("the daemon exited ({status}); see its lines above");
                }
                bail!("the daemon closed its event stream");
            }
            Wake::Event(Some(_)) => {}
        }
        if !started {
            continue;
        }
        let list = block_on(client.list()).map_err(explain)?;
        if let Some(code) = ends.observe(&list)
            && auto_exit
        {
            note(&format!(
                "every process has ended; exiting with {}",
                match code {
                    0 => "0".to_owned(),
                    code => format!("{code} (the first failure's)"),
                }
            ));
            return Ok(code);
        }
    }
}

/// `velos runtime`'s own messages, on stderr.
fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "velos-runtime: {text}");
}

/// The next signal (a failed read of the stream is skipped).
async fn next_signal(signals: &mut Signals) -> Signal {
    loop {
        match signals.next().await {
            Some(Ok(signal)) => return signal,
            Some(Err(_)) => {}
            None => futures_lite::future::pending::<()>().await,
        }
    }
}

/// Stops every process at once and says how that went (see [`after_signal`]).
fn stop_everything(client: &mut Client) -> Result<u8> {
    let before = block_on(client.list()).map_err(explain)?;
    let stopped = block_on(client.stop(Target::All)).map_err(explain)?;
    Ok(after_signal(&before, &stopped))
}

/// The exit code after a signal: 0 when every app ended cleanly (none was errored or
/// waiting to restart before the signal, none needed SIGKILL), else 1.
fn after_signal(before: &[ProcessInfo], stopped: &[ProcessInfo]) -> u8 {
    let failed_before = before.iter().any(|process| {
        matches!(
            process.status,
            ProcessStatus::Errored | ProcessStatus::Waiting
        )
    });
    let killed = stopped.iter().any(|process| process.killed);
    u8::from(failed_before || killed)
}

/// The exit code of a failed run: its code (1 when the code is a multiple of 256, which
/// an exit status cannot carry), 128 + the signal that ended it, or 1 (it never ran).
fn failure_code(process: &ProcessInfo) -> u8 {
    match (process.exit_code, process.signal) {
        (Some(code), _) if code != 0 => u8::try_from(code & 0xff)
            .ok()
            .filter(|&code| code != 0)
            .unwrap_or(1),
        (_, Some(signal)) => u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(1),
        _ => 1,
    }
}

/// Watches the list for the moment every process has ended for good, remembering which
/// one failed first.
#[derive(Debug, Default)]
struct Ends {
    /// The exit code of the first process seen errored.
    first_failure: Option<u8>,
}

impl Ends {
    /// Looks at the list after an event: `Some(code)` once every process is `stopped` or
    /// `errored` (or none is left): the first failure's code, or 0.
    fn observe(&mut self, list: &[ProcessInfo]) -> Option<u8> {
        if self.first_failure.is_none() {
            // Several failing between two looks: the lowest id counts as first.
            self.first_failure = list
                .iter()
                .filter(|process| process.status == ProcessStatus::Errored)
                .min_by_key(|process| process.id)
                .map(failure_code);
        }
        let ended = list.iter().all(|process| {
            matches!(
                process.status,
                ProcessStatus::Stopped | ProcessStatus::Errored
            )
        });
        ended.then(|| self.first_failure.unwrap_or(0))
    }
}

/// The daemon, our child, and the thread writing its processes' lines.
struct Daemon {
    pid: rustix::process::Pid,
    exited: Option<ExitStatus>,
    relay: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Daemon {
    /// Starts `velosd --no-daemon` for `home`. On the main thread: the daemon's
    /// parent-death signal comes when the thread that started it ends.
    fn start(home: &Home, keep_logs: bool) -> Result<Daemon> {
        let binary = autostart::daemon_binary();
        let mut command = Command::new(&binary);
        command.arg("--no-daemon");
        if !keep_logs {
            command.arg("--no-log-files");
        }
        command
            .env(velos_proto::home::HOME_ENV, home.root())
            // It stops every app, as on SIGTERM, should the runtime die without doing it
            // (SIGKILL), instead of running on unsupervised (Linux).
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .process_group(0);
        let child = command.spawn().with_context(|| {
            format!(
                "cannot start the daemon {} (set {} to the velosd binary)",
                binary.display(),
                autostart::DAEMON_ENV
            )
        })?;
        let pid = rustix::process::Pid::from_child(&child);
        // Reaped by `reap` (every child of the runtime is), never through `child`.
        drop(child);
        Ok(Daemon {
            pid,
            exited: None,
            relay: None,
        })
    }

    /// Waits until the daemon answers at `socket`, and connects.
    fn connect(&mut self, socket: &std::path::Path, signals: &mut Signals) -> Result<Client> {
        let deadline = Instant::now() + DAEMON_START_TIMEOUT;
        loop {
            if let Ok(client) = block_on(Client::connect(socket)) {
                return Ok(client);
            }
            if let Some(status) = self.reap() {
                bail!("the daemon exited during start-up ({status})");
            }
            // A SIGTERM now ends the start-up: nothing runs yet.
            if let Some(Some(Ok(Signal::Term | Signal::Int | Signal::Hup))) =
                block_on(futures_lite::future::poll_once(signals.next()))
            {
                bail!("stopped by a signal before the daemon answered");
            }
            if Instant::now() >= deadline {
                bail!(
                    "the daemon did not answer within {} s",
                    DAEMON_START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(START_POLL);
        }
    }

    /// Reaps every child that has exited (orphans included); the daemon's exit status
    /// once it has exited.
    fn reap(&mut self) -> Option<ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        while let Ok(Some((pid, status))) =
            rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        {
            if pid == self.pid {
                self.exited = Some(ExitStatus::from_raw(status.as_raw()));
            }
        }
        self.exited
    }

    /// Waits (bounded) for the daemon to exit, reaping as SIGCHLD comes.
    fn wait_exit(&mut self, signals: &mut Signals) -> Option<ExitStatus> {
        let deadline = Instant::now() + DAEMON_EXIT_TIMEOUT;
        while self.reap().is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // SIGCHLD, or a look every 100 ms at most (a signal merged with another).
            let _ = block_on(async { Some(next_signal(signals).await) }.or(async {
                async_io::Timer::after(left.min(Duration::from_millis(100))).await;
                None
            }));
        }
        self.exited
    }

    /// Shuts the daemon down (every process still running stopped gracefully first), lets
    /// the last lines be written, and makes sure the daemon is gone.
    fn end(&mut self, signals: &mut Signals) {
        if self.exited.is_none() {
            let socket = Home::from_env().map(|home| home.socket_path());
            if let Ok(socket) = socket
                && let Ok(mut client) = block_on(Client::connect(&socket))
            {
                let _ = block_on(client.kill());
            } else {
                let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::TERM);
            }
            if self.wait_exit(signals).is_none() {
                let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::KILL);
                self.wait_exit(signals);
            }
        }
        // The relay ends when the daemon's stream does: with the daemon gone, at once.
        if let Some(relay) = self.relay.take()
            && let Ok(Err(error)) = relay.join()
        {
            note(&format!("writing the apps' lines: {error:#}"));
        }
    }
}

/// As PID 1 the runtime reaps every orphan of its namespace anyway; elsewhere it asks to
/// be their reaper, so a `docker exec`'s leftovers do not escape to the host's init.
fn become_subreaper() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if std::process::id() != 1 {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
}

/// The name this binary answers to when run through a link of that name.
const RUNTIME_NAME: &str = "velos-runtime";

/// Whether this binary was run as `velos-runtime` (a link to `velos`).
pub fn invoked_as_runtime(args: &[OsString]) -> bool {
    args.first()
        .and_then(|arg0| std::path::Path::new(arg0).file_name())
        .is_some_and(|name| name == RUNTIME_NAME)
}

/// `velos-runtime ARGS`, parsed as `velos runtime ARGS` would be, by the `runtime`
/// subcommand itself under the name the user typed: its usage line, help, error tips and
/// `--version` say `velos-runtime ...`, which the user can type again (not `velos-runtime
/// runtime ...`).
pub fn parse_as_runtime(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    let command = Cli::command()
        .find_subcommand("runtime")
        .cloned()
        .expect("velos has a runtime subcommand")
        .name(RUNTIME_NAME)
        .bin_name(RUNTIME_NAME)
        .version(env!("CARGO_PKG_VERSION"));
    let mut matches = command.try_get_matches_from(args)?;
    let args = RuntimeArgs::from_arg_matches_mut(&mut matches)?;
    Ok(Cli {
        command: CliCommand::Runtime(crate::cli::Deferred(args)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::process;

    fn ended(
        id: u32,
        status: ProcessStatus,
        code: Option<i32>,
        signal: Option<i32>,
    ) -> ProcessInfo {
        let mut process = process(id, &format!("app{id}"), status);
        process.exit_code = code;
        process.signal = signal;
        process
    }

    #[test]
    fn the_runtime_exits_once_everything_ended_with_the_first_failure() {
        let mut ends = Ends::default();
        let running = ended(0, ProcessStatus::Running, None, None);
        let failed = ended(1, ProcessStatus::Errored, Some(3), None);
        assert_eq!(ends.observe(&[running.clone(), failed.clone()]), None);
        let later = ended(0, ProcessStatus::Errored, Some(4), None);
        assert_eq!(
            ends.observe(&[later, failed]),
            Some(3),
            "the first failure seen decides"
        );

        let mut ends = Ends::default();
        let done = ended(0, ProcessStatus::Stopped, Some(0), None);
        assert_eq!(ends.observe(&[done.clone(), done]), Some(0));
        assert_eq!(Ends::default().observe(&[]), Some(0));
        let waiting = ended(0, ProcessStatus::Waiting, Some(1), None);
        assert_eq!(Ends::default().observe(&[waiting]), None);
    }

    #[test]
    fn failure_codes_fit_an_exit_status() {
        let code = |code, signal| failure_code(&ended(0, ProcessStatus::Errored, code, signal));
        assert_eq!(code(Some(3), None), 3);
        assert_eq!(code(Some(256), None), 1);
        assert_eq!(code(Some(-1), None), 255);
        assert_eq!(code(None, Some(9)), 137);
        assert_eq!(code(None, None), 1, "a spawn failure");
    }

    #[test]
    fn a_signal_ends_with_0_only_when_everything_ended_cleanly() {
        let running = ended(0, ProcessStatus::Running, None, None);
        let mut stopped = ended(0, ProcessStatus::Stopped, None, Some(15));
        let one = std::slice::from_ref;
        assert_eq!(after_signal(one(&running), one(&stopped)), 0);
        stopped.killed = true;
        assert_eq!(after_signal(one(&running), one(&stopped)), 1);
        stopped.killed = false;
        let errored = ended(1, ProcessStatus::Errored, Some(1), None);
        assert_eq!(after_signal(&[running, errored], &[stopped]), 1);
    }

    #[test]
    fn velos_runtime_is_velos_runtime() {
        let args = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        let runtime = args(&["/usr/bin/velos-runtime", "app.js", "--raw"]);
        assert!(invoked_as_runtime(&runtime));
        assert!(!invoked_as_runtime(&args(&["velos", "list"])));
        let cli = parse_as_runtime(runtime).expect("parsed");
        let CliCommand::Runtime(crate::cli::Deferred(parsed)) = cli.command else {
            panic!("not the runtime: {:?}", cli.command);
        };
        assert_eq!(parsed.start.script, "app.js");
        assert!(parsed.raw);
        let error = parse_as_runtime(args(&["velos-runtime", "app.js", "--rwa"]))
            .expect_err("a mistyped flag");
        let text = error.render().to_string();
        assert!(text.contains("Usage: velos-runtime "), "{text}");
        assert!(!text.contains("velos-runtime runtime"), "{text}");
    }
}
