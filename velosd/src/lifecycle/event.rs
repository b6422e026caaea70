//! The vocabulary of a lifecycle: what happens to a process ([`Event`]), what to do
//! about it ([`Decision`]), and the data they carry. Plain data, no behaviour.

use std::time::{Duration, Instant};

use rustix::process::Signal;
use velos_proto::{EventKind, RestartReason};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when one killed it.
    pub signal: Option<i32>,
}

/// One run of the process: a spawned leader and its process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Which run (1, 2, ...): events name it.
    pub number: u64,
    /// The leader's pid, which is also the process group id.
    pub pid: u32,
    /// When it was spawned.
    pub since: Instant,
    /// Whether the leader is still alive (after it exits, its watcher waits for the rest
    /// of the tree, and nothing signals its group any more).
    pub leader_alive: bool,
}

/// What a stop leads to once the tree is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Stay stopped (`velos stop`, shutdown).
    Stop,
    /// Start again (`velos restart`).
    Restart,
    /// Remove the entry (`velos delete`), and its log files with `logs`.
    Delete {
        /// Remove the log files too.
        logs: bool,
    },
    /// Stay errored with the reason, not restarted: it was not ready in time.
    Fail,
}

/// Why a spawn was tried: an automatic restart that fails is one more quick failure
/// (with the backoff); one somebody asked for fails at once, with the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The restart policy's restart.
    Automatic,
    /// A start, restart or resurrect somebody asked for.
    Asked,
    /// A reload's replacement run, spawned beside the current one: answered with
    /// [`Event::ReplacementSpawned`] or [`Event::ReplacementSpawnFailed`].
    Replacement,
}

/// Why a restart happens, and what caused it in words (what `velos info` prints after
/// "restarted: ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Why.
    pub reason: RestartReason,
    /// What caused it: `files changed: src/app.js`, `cron 0 3 * * *`.
    pub detail: String,
    /// A memory restart of a run that was over its limit from its start (the start of
    /// the error shown when velos gives up on it): a quick failure, not a trigger.
    pub at_start: Option<String>,
}

impl Cause {
    /// A cause of `reason`, described by `detail`.
    pub fn new(reason: RestartReason, detail: impl Into<String>) -> Cause {
        Cause {
            reason,
            detail: detail.into(),
            at_start: None,
        }
    }

    /// A memory restart of a run over its limit from its start (see
    /// [`Over`](crate::memory_limit::Over)).
    pub fn memory_at_start(detail: impl Into<String>, at_start: impl Into<String>) -> Cause {
        Cause {
            at_start: Some(at_start.into()),
            ..Cause::new(RestartReason::Memory, detail)
        }
    }
}

/// The latest restart: its cause, when it was decided, and the run it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    /// Why, and what caused it.
    pub cause: Cause,
    /// When it was decided.
    pub at: Instant,
    /// The run it started (the replacement's, for a reload).
    pub run: u64,
}

/// What happened to a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Run `run` was spawned with this leader pid.
    Spawned {
        /// The run number the spawn was asked for ([`Decision::Spawn`]).
        run: u64,
        /// The leader's pid.
        pid: u32,
        /// Now.
        now: Instant,
    },
    /// A spawn failed.
    SpawnFailed {
        /// Why it was tried (echoed from [`Decision::Spawn`]).
        attempt: Attempt,
        /// The cause, as the user reads it.
        reason: String,
        /// Now.
        now: Instant,
    },
    /// The leader of run `run` exited; the rest of its tree may live on.
    LeaderExited {
        /// Which run.
        run: u64,
        /// How the leader ended.
        exit: Exit,
        /// The run's descendants that left its group (re-parented to the daemon).
        escaped: Vec<u32>,
        /// The live members left in the group. Only read when the run was not being
        /// stopped ([`super::Lifecycle::needs_members`]: finding them reads all of `/proc`).
        members: Vec<u32>,
        /// Now.
        now: Instant,
    },
    /// Run `run` is over: its leader and everything it left are gone.
    Exited {
        /// Which run.
        run: u64,
        /// How the leader ended.
        exit: Exit,
        /// Now.
        now: Instant,
    },
    /// The kill deadline of run `run`'s stop passed.
    KillDeadline {
        /// Which run.
        run: u64,
    },
    /// The backoff after run `run` passed: time for the automatic restart.
    RestartDue {
        /// The run that failed.
        run: u64,
    },
    /// Run `run` said it is ready (its ready mode's signal).
    Ready {
        /// Which run.
        run: u64,
        /// Now.
        now: Instant,
    },
    /// A user asked for a reload: start a replacement run beside the current one.
    Reload,
    /// The replacement run `run` was spawned with this leader pid.
    ReplacementSpawned {
        /// The run number the spawn was asked for.
        run: u64,
        /// The leader's pid.
        pid: u32,
        /// Now.
        now: Instant,
    },
    /// The replacement could not be spawned.
    ReplacementSpawnFailed {
        /// The cause, as the user reads it.
        reason: String,
    },
    /// Run `run` has a ready mode and was not ready within its ready timeout.
    ReadyDeadline {
        /// Which run.
        run: u64,
        /// The run's descendants outside its group, which get the stop signal too.
        escaped: Vec<u32>,
        /// Now.
        now: Instant,
    },
    /// A trigger (a watched file changed, memory over the limit, the schedule) asks for
    /// a restart: a reload with a ready mode, else a restart; remembered and carried out
    /// after a reload under way; nothing when it is not running (except a file change
    /// for an errored process, which starts it).
    Trigger {
        /// Why, and what caused it.
        cause: Cause,
        /// The current run's descendants outside its group, which get the stop signal
        /// too (empty when it is not running).
        escaped: Vec<u32>,
        /// Now.
        now: Instant,
    },
    /// A user asked for a stop, restart or delete.
    Asked {
        /// What to do once it is stopped.
        then: Then,
        /// The current run's descendants outside its group, which get the stop signal
        /// too (empty when it is not running).
        escaped: Vec<u32>,
        /// Now.
        now: Instant,
    },
}

impl Event {
    /// The time the event carries, if it carries one.
    pub fn now(&self) -> Option<Instant> {
        match self {
            Event::Spawned { now, .. }
            | Event::SpawnFailed { now, .. }
            | Event::LeaderExited { now, .. }
            | Event::Exited { now, .. }
            | Event::Ready { now, .. }
            | Event::ReplacementSpawned { now, .. }
            | Event::ReadyDeadline { now, .. }
            | Event::Trigger { now, .. }
            | Event::Asked { now, .. } => Some(*now),
            Event::KillDeadline { .. }
            | Event::RestartDue { .. }
            | Event::Reload
            | Event::ReplacementSpawnFailed { .. } => None,
        }
    }
}

/// A timer the supervisor arms for a process (one at a time; arming replaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Sends [`Event::KillDeadline`] for this run.
    Kill {
        /// Which run.
        run: u64,
    },
    /// Sends [`Event::RestartDue`] for this run.
    Restart {
        /// The run that failed.
        run: u64,
    },
    /// Sends [`Event::ReadyDeadline`] for this run.
    ReadyDeadline {
        /// Which run.
        run: u64,
    },
    /// The replacement's timer (a process has one beside its own, see
    /// [`Timer::is_replacement`]): sends [`Event::ReadyDeadline`] for the replacement run
    /// (with a ready mode its ready timeout, without one its `min_uptime`, after which it
    /// counts as ready).
    Replacement {
        /// Which run.
        run: u64,
    },
    /// The kill deadline of a reload's second run (the replaced run, or a failed
    /// replacement): sends [`Event::KillDeadline`].
    SecondKill {
        /// Which run.
        run: u64,
    },
}

impl Timer {
    /// Whether this is the timer of a reload's second run, kept beside the process's own.
    pub fn is_replacement(self) -> bool {
        matches!(self, Timer::Replacement { .. } | Timer::SecondKill { .. })
    }
}

/// An event for subscribers (`process.event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What happened.
    pub kind: EventKind,
    /// The pid started, or the pid that ended.
    pub pid: Option<u32>,
    /// How a run ended.
    pub exit: Option<Exit>,
    /// The delay before an automatic restart.
    pub restart_in: Option<Duration>,
    /// Why.
    pub reason: Option<String>,
    /// Why it is started again, for the events of a restart or a reload.
    pub restart_reason: Option<RestartReason>,
}

impl Report {
    pub(super) fn new(kind: EventKind) -> Report {
        Report {
            kind,
            pid: None,
            exit: None,
            restart_in: None,
            reason: None,
            restart_reason: None,
        }
    }
}

/// What the supervisor is to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Spawn run number `run`, then feed back [`Event::Spawned`] or
    /// [`Event::SpawnFailed`] with `attempt`.
    Spawn {
        /// The number of the new run.
        run: u64,
        /// Why.
        attempt: Attempt,
    },
    /// Send `signal` to the process group `pgid`.
    SignalGroup {
        /// The group.
        pgid: u32,
        /// The signal.
        signal: Signal,
    },
    /// Send `signal` to those of `pids` that are not in the group `pgid` (a signal to
    /// the group reached the others, and a second stop signal is one too many).
    SignalStrays {
        /// The run's group.
        pgid: u32,
        /// The run's descendants that left the group.
        pids: Vec<u32>,
        /// The signal.
        signal: Signal,
    },
    /// Tell the run's watcher what is left to end (`escaped`, and the group) and when
    /// whatever is still alive gets SIGKILL.
    EndTree {
        /// The run's descendants outside its group.
        escaped: Vec<u32>,
        /// When the rest gets SIGKILL.
        deadline: Instant,
    },
    /// Arm `timer` at `at`, replacing any timer of this process.
    ArmTimer {
        /// When.
        at: Instant,
        /// Which.
        timer: Timer,
    },
    /// Cancel the process's timer, if any.
    CancelTimer,
    /// Cancel the timer of a reload's second run, if any.
    CancelSecondTimer,
    /// The reload of this process is over: answer the reload waiting for it.
    Reloaded {
        /// The result.
        result: velos_proto::ReloadResult,
        /// The replacement's pid, when one was spawned.
        new_pid: Option<u32>,
        /// Why, when it failed or was skipped.
        reason: Option<String>,
    },
    /// Tell the subscribers.
    Report(Report),
    /// Write this to the daemon's log, after the process's name and id.
    Log(String),
    /// Answer the requests waiting for this process's stop, restart or delete.
    Answer,
    /// Remove the entry, and its log files with `logs`.
    Remove {
        /// Remove the log files too.
        logs: bool,
    },
}
