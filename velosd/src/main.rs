//! velosd, the velos daemon: supervises processes, keeps their logs, and answers the CLI
//! and SDK on a Unix socket.
//!
//! `velosd` detaches into the background (see [`daemonize`]); `velosd --no-daemon` stays
//! in the foreground for systemd, containers and debugging. Start-up order: create the
//! home, take the pid file lock, bind the socket, then start the runtime. Shutdown (a
//! signal or `daemon.kill`) stops every process, then removes the socket and pid file.

#![deny(unsafe_code)]

mod cron;
mod daemon_log;
mod daemonize;
mod error;
mod fd_limit;
mod follow;
mod handoff;
mod launch;
mod lifecycle;
mod listen;
mod logfile;
mod logread;
mod logs;
mod memory;
mod memory_limit;
mod metrics;
mod notify;
mod orphans;
mod paths;
mod persist;
mod pidfile;
mod platform;
mod process;
mod procstat;
mod readiness;
mod refusals;
mod ring;
mod server;
mod service_notify;
mod signals;
mod socket_watch;
mod stamp;
mod state;
mod supervisor;
mod watch;

use std::any::Any;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Duration;

use futures_lite::FutureExt;
use velos_proto::Home;

use crate::pidfile::{LockError, PidFile};
use crate::supervisor::Supervisor;

pub use crate::daemon_log::log;

/// How long the daemon waits at exit for its last log lines to be written.
const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

const USAGE: &str = "usage: velosd [--no-daemon] [--resurrect] [--no-log-files]

The velos daemon. The velos CLI starts it when needed; run it yourself to control how.

  --no-daemon   stay in the foreground (for systemd, containers, debugging); with
                $NOTIFY_SOCKET set, READY=1 is sent there once the socket answers
                (and WATCHDOG=1 every $WATCHDOG_USEC/2)
  --resurrect   bring back the processes of $VELOS_HOME/state.msgpack (same ids, names
                and settings; those that were running are started again)
  --no-log-files
                write no log files: each process's lines stay in memory (its last
                1000) and go to followers (what `velos runtime` runs)
  -V, --version print the version
  -h, --help    print this help

Uses $VELOS_HOME, or ~/.velos.";

fn main() -> ExitCode {
    let mut no_daemon = false;
    let mut resurrect = false;
    let mut no_log_files = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-daemon" => no_daemon = true,
            "--resurrect" => resurrect = true,
            "--no-log-files" => no_log_files = true,
            "-V" | "--version" => {
                // Errors ignored here and below: nothing is left to tell (`| head -0`).
                let _ = writeln!(std::io::stdout(), "velosd {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                let _ = writeln!(
                    std::io::stderr(),
                    "velosd: unknown argument '{other}' (see 'velosd --help')"
                );
                return ExitCode::from(2);
            }
        }
    }
    let home = match Home::from_env() {
        Ok(home) => home,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "velosd: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Absolute, because the detached daemon moves to `/`.
    let home = match std::path::absolute(home.root()) {
        Ok(root) => Home::at(root),
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "velosd: cannot resolve {}: {error}",
                home.root().display()
            );
            return ExitCode::FAILURE;
        }
    };
    if !no_daemon && !daemonize::is_detached() {
        let args: Vec<String> = [(resurrect, "--resurrect"), (no_log_files, "--no-log-files")]
            .into_iter()
            .filter(|(given, _)| *given)
            .map(|(_, flag)| flag.to_owned())
            .collect();
        return daemonize::launch(&home, &args);
    }
    if no_log_files {
        logs::without_files();
    }
    let detached = daemonize::is_detached();
    let timeouts = server::Timeouts::from_env();
    let internal = daemonize::take_internal_env();
    let service = service_notify::take_from_env();
    if let Some(name) = internal.test_panic {
        let _ = supervisor::TEST_PANIC.set(name);
    }
    if let Some(parent) = internal.parent
        && !platform::stop_with_parent(parent)
    {
        let _ = writeln!(
            std::io::stderr(),
            "velosd: its parent (pid {parent}) is gone"
        );
        return ExitCode::FAILURE;
    }
    if detached {
        daemonize::detach();
    }
    // Before anything else is opened: descriptors 3.. are where runs expect their sockets.
    listen::reserve_descriptors();
    if detached {
        daemon_log::start(daemon_log::Target::File(home.daemon_log_path()));
    } else {
        daemon_log::start(daemon_log::Target::Stderr);
    }
    let service = service.unwrap_or_else(|problem| {
        log(problem);
        None
    });
    match timeouts {
        Ok(timeouts) => timeouts.install(),
        Err(error) => {
            log(format_args!("{error}"));
            daemon_log::flush(LOG_FLUSH_TIMEOUT);
            return ExitCode::FAILURE;
        }
    }
    let code = match run_daemon(&home, resurrect, service) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log(format_args!("{error:#}"));
            if let Some(LockError::Held { .. }) = error.downcast_ref::<LockError>() {
                ExitCode::from(daemonize::ALREADY_RUNNING)
            } else {
                ExitCode::FAILURE
            }
        }
    };
    daemon_log::flush(LOG_FLUSH_TIMEOUT);
    code
}

fn run_daemon(
    home: &Home,
    resurrect: bool,
    service: Option<service_notify::ServiceNotify>,
) -> anyhow::Result<()> {
    memory::give_large_blocks_back();
    paths::create_home(home)?;
    let pid_file = PidFile::acquire(&home.pid_path())?;
    // Ours now: what a SIGKILLed daemon left of its runs' notify sockets goes.
    let stale = notify::remove_stale(home.root());
    if stale > 0 {
        log(format_args!(
            "removed {stale} notify socket(s) a previous daemon left"
        ));
    }
    let socket = home.socket_path();
    let listener = server::bind(&socket)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", socket.display()))?;
    let signals = signals::listen()?;
    let (state, state_thread) = persist::StateWriter::start(home.state_path())?;
    orphans::become_subreaper();
    log(format_args!(
        "velosd {} (pid {}) listening on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        socket.display()
    ));
    fd_limit::raise();
    let died = smol::block_on(async {
        let (commands, inbox) = async_channel::unbounded();
        let (exit, exit_requested) = async_channel::bounded(1);
        let supervisor = Supervisor::new(home.clone(), commands.clone(), exit.clone(), state);
        // Panics are caught here rather than by the executor (which would keep it to
        // itself), so that the daemon learns the task is gone.
        let supervisor = smol::spawn(AssertUnwindSafe(supervisor.serve(inbox)).catch_unwind());
        let metrics = metrics::Service::start(home.clone(), commands.clone());
        // Boxed: the server's future is large, and each move of it through the
        // combinators below would take a copy's room on the main thread's stack, whose
        // pages, once touched, stay resident for the daemon's life.
        let server = Box::pin(server::serve(
            listener,
            &socket,
            commands.clone(),
            exit,
            metrics,
        ));
        let signals = smol::spawn(
            AssertUnwindSafe(signals::forward(signals, commands.clone())).catch_unwind(),
        );
        // The service manager (systemd's Type=notify) learns when the socket answers.
        if let Some(service) = service {
            smol::spawn(service.run(socket.clone())).detach();
        }
        // What a dead daemon left running goes first, so that what is resurrected does
        // not meet its old self (holding its port, say).
        let root = home.root().to_owned();
        let leftovers = async move {
            orphans::end_leftovers(root).await;
            if resurrect {
                let _ = commands.send(supervisor::Command::Resurrect).await;
            }
        };
        // With --resurrect, the list is back before the first request is read (the
        // supervisor takes its inbox in order), so the first `velos list` shows it, and the
        // launcher (`velosd --resurrect`) returns only then; without, the leftovers are
        // ended while the daemon serves.
        let before_serving = if resurrect {
            Some(leftovers)
        } else {
            smol::spawn(leftovers).detach();
            None
        };
        // The server borrows the socket path, so it runs here rather than in a task. The
        // supervisor and the signal task run until the daemon exits; if one of them ends
        // first, nothing would act on requests or signals any more.
        async {
            if let Some(leftovers) = before_serving {
                leftovers.await;
            }
            server.await;
            None
        }
        .or(async {
            let _ = exit_requested.recv().await;
            None
        })
        .or(async { Some(format!("the supervisor {}", ending(supervisor.await))) })
        .or(async { Some(format!("the signal handler {}", ending(signals.await))) })
        .await
    });
    if let Some(reason) = died {
        // No graceful stop without the supervisor: the process table went with it. Our
        // children get SIGTERM from their parent-death signal as we exit, and the next
        // daemon on this home ends whatever ignores it. The list as last saved stays, for
        // `velosd --resurrect`.
        state_thread.stop();
        let _ = std::fs::remove_file(&socket);
        drop(pid_file);
        anyhow::bail!(
            "{reason}; exiting: its processes get SIGTERM as the daemon ends, and the next \
             velos command starts a new daemon"
        );
    }
    // Descendants that escaped every group and were re-parented late would outlive us.
    orphans::end_ours(home.root());
    // The last list queued before shutdown reaches the disk.
    state_thread.stop();
    // Socket first, then the pid file (while still locked): a client that sees no pid
    // file finds no socket either.
    let _ = std::fs::remove_file(&socket);
    drop(pid_file);
    log("stopped");
    Ok(())
}

/// How a task that should have run for ever ended: `panicked: <message>`, or `ended`.
fn ending(outcome: Result<(), Box<dyn Any + Send>>) -> String {
    let Err(payload) = outcome else {
        return "ended".to_owned();
    };
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    format!("panicked: {message}")
}
