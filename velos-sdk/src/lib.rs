//! A Rust client for velos, the process manager: talk to the daemon (`velosd`) from any
//! executor, or from plain blocking code.
//!
//! ```no_run
//! # async fn example() -> velos_sdk::Result<()> {
//! let mut client = velos_sdk::Client::connect_default().await?;
//! for process in client.list().await? {
//!     println!("{} {} {} {:?}", process.id, process.name, process.status, process.pid);
//! }
//! client.restart("api").await?;
//! # Ok(())
//! # }
//! ```
//!
//! - [`Client`] is async and executor-agnostic: it uses `async-io` and `futures-lite`
//!   only, so it runs under tokio, smol or `futures_lite::future::block_on` alike.
//! - [`Client::follow_logs`] and [`Client::events`] are streams (`futures_lite::Stream`)
//!   of new log lines and of process events, each on a connection of its own.
//! - [`blocking::Client`] has the same methods for code that does not use async, its
//!   streams as iterators. Its requests go over a blocking socket
//!   ([`Client::connect_blocking`]): no reactor, no thread is started for them.
//! - [`StartParams::new`] makes a start request as `velos start` does: the script
//!   resolved against the caller's directory, the caller's environment and directory.
//! - [`Error`] is typed: [`Error::NotRunning`], [`Error::Refused`], [`Error::Timeout`],
//!   [`Error::VersionMismatch`], [`Error::Protocol`], [`Error::ForeignDaemon`] (the
//!   process on the socket runs as another uid: nothing, environment included, is sent
//!   to it) and the daemon's own [`Error::Daemon`] with its [`ErrorCode`].
//!
//! The protocol itself (frames, messages, home paths) is [`velos_proto`], re-exported
//! as [`proto`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blocking;
mod client;
mod connection;
mod error;
mod events;
#[cfg(test)]
mod fake_daemon;
mod follow;
mod subscription;

pub use client::Client;
pub use error::Error;
pub use events::Events;
pub use follow::{FollowEvent, LogFollow};
pub use velos_proto as proto;
pub use velos_proto::{
    DeleteParams, ErrorCode, EventKind, Home, LastRestart, LogCursor, LogEnd, LogGap, LogLine,
    LogLines, LogReadParams, MetricsEnableParams, MetricsState, PingInfo, ProcessEvent,
    ProcessInfo, ProcessStatus, ReloadOutcome, ReloadParams, ReloadResult, RestartCounts,
    RestartParams, RestartReason, SaveParams, Saved, ScaleParams, ScriptError, SignalParams,
    StartParams, Stream, Target, signal_name,
};

/// The result of a request: a value, or an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
