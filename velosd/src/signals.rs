//! Signals sent to the daemon itself. Each one it handles leaves a line in velosd.log.
//!
//! | signal | what the daemon does |
//! | --- | --- |
//! | SIGTERM, SIGINT, SIGQUIT | graceful shutdown: every process stopped, then exit |
//! | SIGHUP | every log file (velosd.log and each process's) opened again by path before its next write, so a rename-style logrotate works |
//! | SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF | logged and otherwise ignored (their default would kill the daemon and with it every app) |
//! | SIGCHLD | reap of orphaned descendants (not logged: it comes with every exit) |
//! | SIGPIPE | ignored (the Rust runtime's default): a client that hangs up mid-answer is an error on that connection only |
//!
//! The handlers are installed before the daemon serves anyone (by [`listen`]), so a
//! signal that arrives early is not lost; [`forward`] turns each one into a command for
//! the supervisor. A second shutdown signal while stopping changes nothing: the kill
//! timeouts already bound how long that takes. The loop survives every error: a failed
//! read of the signal stream is skipped, and logging cannot fail; it ends only when the
//! supervisor is gone.

use async_channel::Sender;
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;

use crate::daemon_log::{log, request_reopen};
use crate::supervisor::Command;

/// Every signal the daemon handles.
const HANDLED: [Signal; 10] = [
    Signal::Term,
    Signal::Int,
    Signal::Quit,
    Signal::Hup,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Alarm,
    Signal::Vtalarm,
    Signal::Prof,
    Signal::Child,
];

/// Installs the handlers.
pub fn listen() -> std::io::Result<Signals> {
    Signals::new(HANDLED)
}

/// What the daemon does about one signal.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Shutdown,
    Reopen,
    Ignore,
    Reap,
}

fn action(signal: Signal) -> Action {
    match signal {
        Signal::Term | Signal::Int | Signal::Quit => Action::Shutdown,
        Signal::Hup => Action::Reopen,
        Signal::Child => Action::Reap,
        _ => Action::Ignore,
    }
}

/// The signal's usual name (`SIGHUP`).
fn name(signal: Signal) -> &'static str {
    match signal {
        Signal::Term => "SIGTERM",
        Signal::Int => "SIGINT",
        Signal::Quit => "SIGQUIT",
        Signal::Hup => "SIGHUP",
        Signal::Usr1 => "SIGUSR1",
        Signal::Usr2 => "SIGUSR2",
        Signal::Alarm => "SIGALRM",
        Signal::Vtalarm => "SIGVTALRM",
        Signal::Prof => "SIGPROF",
        Signal::Child => "SIGCHLD",
        _ => "another signal",
    }
}

/// Acts on each signal until the supervisor is gone.
pub async fn forward(mut signals: Signals, commands: Sender<Command>) {
    while let Some(signal) = signals.next().await {
        let Ok(signal) = signal else {
            continue;
        };
        let command = match action(signal) {
            Action::Reap => Command::Reap,
            Action::Shutdown => {
                log(format_args!(
                    "received {}: stopping every process",
                    name(signal)
                ));
                Command::Shutdown
            }
            Action::Reopen => {
                // The line goes to the new velosd.log.
                request_reopen();
                log(format_args!(
                    "received {}: reopening log files",
                    name(signal)
                ));
                continue;
            }
            Action::Ignore => {
                log(format_args!("received {}: ignored", name(signal)));
                continue;
            }
        };
        if commands.send(command).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_term_int_and_quit_shut_the_daemon_down_and_every_signal_has_a_name() {
        let shutdown: Vec<Signal> = HANDLED
            .into_iter()
            .filter(|signal| action(*signal) == Action::Shutdown)
            .collect();
        assert_eq!(shutdown, [Signal::Term, Signal::Int, Signal::Quit]);
        assert_eq!(action(Signal::Hup), Action::Reopen);
        for signal in HANDLED {
            assert!(name(signal).starts_with("SIG"), "{signal:?} has no name");
        }
    }
}
