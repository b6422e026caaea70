//! SIGTERM and SIGINT become a graceful shutdown; SIGCHLD becomes a reap of orphans.
//!
//! The handlers are installed before the daemon serves anyone (by [`listen`]), so a
//! signal that arrives early is not lost; [`forward`] turns each one into a
//! [`Command::Shutdown`] for the supervisor, which stops every process and then tells
//! the daemon to exit. A second signal while stopping changes nothing: the kill
//! timeouts already bound how long that takes.

use async_channel::Sender;
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;

use crate::supervisor::Command;

/// Installs the handlers.
pub fn listen() -> std::io::Result<Signals> {
    Signals::new([Signal::Term, Signal::Int, Signal::Child])
}

/// Sends a shutdown command for SIGTERM and SIGINT, and a reap command for SIGCHLD.
pub async fn forward(mut signals: Signals, commands: Sender<Command>) {
    while let Some(signal) = signals.next().await {
        let command = match signal {
            Ok(Signal::Child) => Command::Reap,
            Ok(signal) => {
                crate::log(format_args!("received {signal:?}: stopping every process"));
                Command::Shutdown
            }
            Err(_) => continue,
        };
        if commands.send(command).await.is_err() {
            return;
        }
    }
}
