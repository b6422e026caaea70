//! The life of one managed process as a state machine: events in, decisions out.
//!
//! [`Lifecycle::handle`] takes what happened ([`Event`]: a spawn worked or failed, the
//! leader exited, the whole tree is gone, a timer fired, a user asked for a stop, restart
//! or delete) and returns what to do about it ([`Decision`]: spawn, signal the group,
//! arm a timer, report an event, answer the requests waiting, remove the entry). It does
//! no I/O, reads no clock and starts nothing: the supervisor executes the decisions and
//! feeds back what came of them (a [`Decision::Spawn`] is answered with
//! [`Event::Spawned`] or [`Event::SpawnFailed`]). Timer handles and the requests waiting
//! for a stop live in the supervisor, keyed by the entry: this module only says when a
//! timer is due ([`Decision::ArmTimer`]) and when the waiters are answered
//! ([`Decision::Answer`]).
//!
//! Each [`State`] carries the data that goes with it (a waiting process has a restart
//! time; a stopping one has a deadline and what to do once it is gone), so a state that
//! contradicts itself cannot be written. Every run is numbered; news about a run that is
//! no longer the current one (a late timer, an exit reported after a newer start) is
//! recognised by its number and changes nothing.
//!
//! The order of a run: `Spawned` → the leader exits (`LeaderExited`; what it left in its
//! group or outside it is signalled where due, and the watcher is told the deadline) →
//! the tree is gone (`Exited`). A run's outcome: an asked-for stop is `stopped`; exit code
//! 0 is `stopped` and not restarted; anything else is `errored` and goes to the restart
//! policy ([`Policy`]: a backoff of 100 ms doubling to 15 s, reset once a run lasted
//! `min_uptime`; `max_restarts` quick failures in a row and velos gives up). A program
//! that exits 0 and leaves processes running daemonized itself: errored, never restarted.
//! In watch mode (`Policy::watch`) a failure within `min_uptime` of the start is not
//! restarted after a backoff: restarting unchanged files would fail the same way, so it
//! stays errored, "waiting for a file change", and the next change starts it.
//!
//! Files: this one has the states and the one `match` of every transition
//! ([`Lifecycle::handle`]); `event.rs` the events, decisions and the data they carry;
//! `policy.rs` the restart policy and what an exit means; `tests.rs` a unit test per
//! transition.
//!
//! A reload adds a second run beside the current one ([`Second`]): the replacement while
//! it starts, then, once it is ready and has taken the current run's place, the replaced
//! run while it stops (or a failed replacement while it stops, the current run untouched).
//! Events carry the run number they are about, which tells the two generations apart;
//! the second run has a timer of its own ([`Timer::is_replacement`]).
//!
//! A restart trigger ([`Event::Trigger`]: a watched file changed, memory over its limit,
//! the schedule) reloads a running process that has a ready mode and restarts one that
//! has none. A trigger during a reload is remembered (the latest one) and carried out
//! once the reload is over; during a restart it joins the restart (the new run is not
//! spawned yet). Waiting for the backoff, stopped or errored, nothing happens, except
//! that a file change starts an errored process. Every restart is counted by its reason
//! ([`RestartCounts`]: `crash` for the restart policy's, `manual` for one asked for) and
//! the latest is kept ([`Restarted`]); a trigger's restart is not a failure, so the count
//! of quick failures stays as it is.

use std::time::{Duration, Instant};

use rustix::process::Signal;
use velos_proto::{EventKind, ProcessStatus, RestartCounts, RestartReason};

mod event;
mod policy;
#[cfg(test)]
mod tests;

pub use event::{Attempt, Cause, Decision, Event, Exit, Report, Restarted, Run, Then, Timer};

use policy::{ExitKind, Verdict, daemonized, left_behind_reason, status_after_exit};
pub use policy::{Policy, Settings};

/// Where a process is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not running: never started, asked to stop, or exited with code 0.
    Stopped,
    /// Not running after a failure, and not restarted (the reason, when velos knows
    /// more than the exit, is in [`Lifecycle::error`]).
    Errored,
    /// Exited unexpectedly; started again at `restart_at`.
    Waiting {
        /// When the automatic restart is due.
        restart_at: Instant,
    },
    /// Spawned with a ready mode, not ready yet: until it says so, by its ready deadline.
    Starting {
        /// The run.
        run: Run,
    },
    /// Running and ready.
    Running {
        /// The run.
        run: Run,
    },
    /// Asked to stop: the stop signal went out and SIGKILL follows at `deadline`.
    Stopping {
        /// The run being stopped.
        run: Run,
        /// When whatever is left gets SIGKILL.
        deadline: Instant,
        /// Descendants outside the group that already got the stop signal.
        signalled: Vec<u32>,
        /// What happens once the tree is gone.
        then: Then,
    },
    /// Nobody asked: the leader exited by itself and left `left` running, which got the
    /// stop signal and get SIGKILL at `deadline`. Shown as `stopping`.
    Ending {
        /// The run whose leftovers are being ended.
        run: Run,
        /// What the leader left running.
        left: Vec<u32>,
        /// When whatever is left gets SIGKILL.
        deadline: Instant,
    },
}

impl State {
    /// The run, while something of it may be alive.
    pub fn run(&self) -> Option<&Run> {
        match self {
            State::Starting { run }
            | State::Running { run }
            | State::Stopping { run, .. }
            | State::Ending { run, .. } => Some(run),
            State::Stopped | State::Errored | State::Waiting { .. } => None,
        }
    }

    fn into_run(self) -> Option<Run> {
        match self {
            State::Starting { run }
            | State::Running { run }
            | State::Stopping { run, .. }
            | State::Ending { run, .. } => Some(run),
            State::Stopped | State::Errored | State::Waiting { .. } => None,
        }
    }
}

/// A reload's second run, beside the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Second {
    /// The replacement: spawned, not ready yet. Its timer is its ready deadline (with a
    /// ready mode) or its `min_uptime` (without one, after which it counts as ready).
    Replacing {
        /// The replacement run.
        run: Run,
    },
    /// The replacement failed (`reason`) and is being stopped; the current run is
    /// untouched.
    Discarding {
        /// The failed replacement.
        run: Run,
        /// Why it failed.
        reason: String,
    },
    /// The run the replacement took the place of, being stopped gracefully.
    Retiring {
        /// The replaced run.
        run: Run,
    },
}

impl Second {
    fn run(&self) -> &Run {
        match self {
            Second::Replacing { run }
            | Second::Discarding { run, .. }
            | Second::Retiring { run } => run,
        }
    }

    fn run_mut(&mut self) -> &mut Run {
        match self {
            Second::Replacing { run }
            | Second::Discarding { run, .. }
            | Second::Retiring { run } => run,
        }
    }
}

/// One process's lifecycle: its state and the counters that outlive a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    state: State,
    /// A reload's second run, while there is one.
    second: Option<Second>,
    /// The number of the latest run (0: never spawned).
    runs: u64,
    /// Starts after the first, by reason; their sum is the restart count.
    counts: RestartCounts,
    /// The latest restart.
    last_restart: Option<Restarted>,
    /// The trigger whose restart or reload is under way (`None`: whatever is under way
    /// was asked for by a user).
    underway: Option<Cause>,
    /// A trigger that came during a reload, carried out once the reload is over (the
    /// latest one).
    pending: Option<Cause>,
    /// Unexpected exits in a row, each within `min_uptime` of its start.
    quick_failures: u32,
    /// How the last run ended.
    last_exit: Option<Exit>,
    /// Why it last failed, when velos knows more than an exit code; cleared by a spawn.
    error: Option<String>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle::new()
    }
}

impl Lifecycle {
    /// A process never started.
    pub fn new() -> Lifecycle {
        Lifecycle::restored(RestartCounts::default(), None, None)
    }

    /// A process brought back from a saved list, not started yet.
    pub fn restored(
        counts: RestartCounts,
        last_restart: Option<Restarted>,
        last_exit: Option<Exit>,
    ) -> Lifecycle {
        Lifecycle {
            state: State::Stopped,
            second: None,
            runs: 0,
            counts,
            last_restart,
            underway: None,
            pending: None,
            quick_failures: 0,
            last_exit,
            error: None,
        }
    }

    /// The state.
    #[cfg(test)]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The status on the wire.
    pub fn status(&self) -> ProcessStatus {
        match self.state {
            State::Stopped => ProcessStatus::Stopped,
            State::Errored => ProcessStatus::Errored,
            State::Waiting { .. } => ProcessStatus::Waiting,
            State::Starting { .. } => ProcessStatus::Starting,
            State::Running { .. } => ProcessStatus::Running,
            State::Stopping { .. } | State::Ending { .. } => ProcessStatus::Stopping,
        }
    }

    /// The live run, while something of it may be alive.
    pub fn run(&self) -> Option<&Run> {
        self.state.run()
    }

    /// The leader's pid (and group), while a run is alive.
    pub fn pid(&self) -> Option<u32> {
        self.run().map(|run| run.pid)
    }

    /// Whether a run is alive.
    pub fn is_alive(&self) -> bool {
        self.run().is_some()
    }

    /// Whether it should be running: what a saved list brings back.
    pub fn wants_to_run(&self) -> bool {
        matches!(
            self.state,
            State::Starting { .. } | State::Running { .. } | State::Waiting { .. }
        )
    }

    /// When the automatic restart is due, while waiting for it.
    pub fn restart_at(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { restart_at } => Some(restart_at),
            _ => None,
        }
    }

    /// A reload's second run, while there is one.
    pub fn second(&self) -> Option<&Second> {
        self.second.as_ref()
    }

    /// Whether `run` is the current run or a reload's second run, while alive.
    pub fn is_live_run(&self, run: u64) -> bool {
        self.run().is_some_and(|live| live.number == run)
            || self
                .second
                .as_ref()
                .is_some_and(|second| second.run().number == run)
    }

    /// The number of the latest run (0: never spawned).
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Starts after the first.
    pub fn restarts(&self) -> u32 {
        self.counts.total()
    }

    /// Starts after the first, by reason.
    pub fn restart_counts(&self) -> RestartCounts {
        self.counts
    }

    /// The latest restart, if there was one.
    pub fn last_restart(&self) -> Option<&Restarted> {
        self.last_restart.as_ref()
    }

    /// How the last run ended.
    pub fn last_exit(&self) -> Option<Exit> {
        self.last_exit
    }

    /// Why it last failed, when velos knows more than an exit code.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether [`Event::LeaderExited`] for run `run` needs the group's remaining members:
    /// only when nobody is stopping it, to tell a clean exit from one that left
    /// processes behind.
    pub fn needs_members(&self, run: u64) -> bool {
        matches!(
            &self.state,
            State::Starting { run: current } | State::Running { run: current }
                if current.number == run
        )
    }

    /// Moves the lifecycle on by `event` and says what to do about it.
    pub fn handle(&mut self, event: Event, settings: &Settings) -> Vec<Decision> {
        let mut out = Vec::new();
        let now = event.now();
        if let Some(event) = self.handle_second(event, settings, &mut out) {
            self.handle_first(event, settings, &mut out);
        }
        // A trigger that came during a reload is carried out once the reload is over, if
        // it still runs (a stop or restart meanwhile dropped it).
        if self.second.is_none()
            && let Some(now) = now
            && let Some(cause) = self.pending.take()
            && matches!(self.state, State::Starting { .. } | State::Running { .. })
        {
            let event = Event::Trigger {
                cause,
                escaped: Vec::new(),
                now,
            };
            self.handle_first(event, settings, &mut out);
        }
        out
    }

    /// The events about the current run, and triggers: the one `match` of them.
    fn handle_first(&mut self, event: Event, settings: &Settings, out: &mut Vec<Decision>) {
        let state = std::mem::replace(&mut self.state, State::Stopped);
        self.state = match (state, event) {
            // A spawn asked for by a decision of this lifecycle worked.
            (before, Event::Spawned { run, pid, now }) => {
                debug_assert!(
                    !matches!(
                        before,
                        State::Starting { .. }
                            | State::Running { .. }
                            | State::Stopping { .. }
                            | State::Ending { .. }
                    ),
                    "spawned while a run is alive"
                );
                self.runs = run;
                self.error = None;
                // A restart's run says why it was started, and a trigger's what caused it.
                let restart = self.last_restart.as_ref().filter(|last| last.run == run);
                out.push(Decision::Report(Report {
                    pid: Some(pid),
                    reason: restart
                        .filter(|last| last.cause.reason.is_trigger())
                        .map(|last| last.cause.detail.clone()),
                    restart_reason: restart.map(|last| last.cause.reason),
                    ..Report::new(EventKind::Started)
                }));
                let run = Run {
                    number: run,
                    pid,
                    since: now,
                    leader_alive: true,
                };
                // With a ready mode it is starting until it says it is ready, by its ready
                // deadline; without one it runs at once.
                match settings.ready_timeout {
                    Some(timeout) => {
                        out.push(Decision::Report(Report {
                            pid: Some(pid),
                            ..Report::new(EventKind::Starting)
                        }));
                        out.push(Decision::ArmTimer {
                            at: now + timeout,
                            timer: Timer::ReadyDeadline { run: run.number },
                        });
                        State::Starting { run }
                    }
                    None => State::Running { run },
                }
            }
            // It said it is ready.
            (State::Starting { run }, Event::Ready { run: number, .. }) if run.number == number => {
                out.push(Decision::CancelTimer);
                out.push(Decision::Report(Report {
                    pid: Some(run.pid),
                    ..Report::new(EventKind::Ready)
                }));
                State::Running { run }
            }
            // Not ready in time: a failure, never a success. It is stopped as a stop
            // would, then stays errored with the reason (not restarted).
            (
                State::Starting { run },
                Event::ReadyDeadline {
                    run: number,
                    escaped,
                    now,
                },
            ) if run.number == number => {
                let waited = settings.ready_timeout.unwrap_or_default();
                self.error = Some(format!(
                    "not ready within {}; velos stopped it",
                    humantime::format_duration(waited)
                ));
                self.stop(run, Then::Fail, escaped, now, settings, out)
            }
            // Somebody asked: say why and leave it errored.
            (
                _,
                Event::SpawnFailed {
                    attempt: Attempt::Asked,
                    reason,
                    ..
                },
            ) => {
                self.error = Some(reason.clone());
                out.push(Decision::Report(Report {
                    reason: Some(reason),
                    ..Report::new(EventKind::Errored)
                }));
                State::Errored
            }
            // An automatic restart that cannot spawn is a quick failure, with the backoff.
            (
                _,
                Event::SpawnFailed {
                    attempt: Attempt::Automatic,
                    reason,
                    now,
                },
            ) => {
                self.error = Some(reason.clone());
                self.after_failure(Duration::ZERO, Some(reason), now, settings, out)
            }

            // The leader exited by itself. Nothing left: the run ends when its pipes are
            // drained. Processes left: they get the stop signal and the kill timeout,
            // and the entry is `stopping` meanwhile (systemd's KillMode=control-group).
            (
                state @ (State::Starting { .. } | State::Running { .. }),
                Event::LeaderExited {
                    run: number,
                    exit,
                    escaped,
                    members,
                    now,
                },
            ) if state.run().is_some_and(|run| run.number == number) => {
                let ready = matches!(state, State::Running { .. });
                let mut run = state.into_run().expect("starting or running has a run");
                run.leader_alive = false;
                let mut left = members;
                left.extend(&escaped);
                left.sort_unstable();
                left.dedup();
                if left.is_empty() {
                    out.push(Decision::EndTree {
                        escaped,
                        deadline: now,
                    });
                    if ready {
                        State::Running { run }
                    } else {
                        State::Starting { run }
                    }
                } else {
                    let reason = left_behind_reason(exit, &left);
                    let deadline = now + settings.kill_timeout;
                    self.error = Some(reason.clone());
                    out.push(Decision::SignalGroup {
                        pgid: run.pid,
                        signal: settings.kill_signal,
                    });
                    push_strays(out, run.pid, escaped.clone(), settings.kill_signal);
                    out.push(Decision::Log(reason));
                    out.push(Decision::EndTree { escaped, deadline });
                    State::Ending {
                        run,
                        left,
                        deadline,
                    }
                }
            }
            // The leader of a run being stopped exited: the watcher takes over the
            // deadline; descendants that left the group since the stop signal get it.
            (
                State::Stopping {
                    mut run,
                    deadline,
                    signalled,
                    then,
                },
                Event::LeaderExited {
                    run: number,
                    escaped,
                    ..
                },
            ) if run.number == number => {
                run.leader_alive = false;
                out.push(Decision::CancelTimer);
                let fresh: Vec<u32> = escaped
                    .iter()
                    .copied()
                    .filter(|pid| !signalled.contains(pid))
                    .collect();
                push_strays(out, run.pid, fresh, settings.kill_signal);
                out.push(Decision::EndTree { escaped, deadline });
                State::Stopping {
                    run,
                    deadline,
                    signalled,
                    then,
                }
            }

            // A run ended by itself: exit code 0 (unless it is restarted always) and the
            // stop exit codes are stopped, anything else goes to the restart policy.
            (
                State::Starting { run } | State::Running { run },
                Event::Exited {
                    run: number,
                    exit,
                    now,
                },
            ) if run.number == number => {
                self.last_exit = Some(exit);
                out.push(exited(&run, exit, None));
                if settings.exit_kind(exit) == ExitKind::Stop {
                    State::Stopped
                } else {
                    let lasted = now.saturating_duration_since(run.since);
                    self.after_failure(lasted, None, now, settings, out)
                }
            }
            // A stopping run ended, whether by the stop signal or on its own: it was
            // stopped as asked, then comes what was asked.
            (
                State::Stopping { run, then, .. },
                Event::Exited {
                    run: number,
                    exit,
                    now,
                },
            ) if run.number == number => {
                self.last_exit = Some(exit);
                if then == Then::Fail {
                    out.push(exited(&run, exit, self.error.clone()));
                } else {
                    out.push(exited(&run, exit, None));
                    out.push(Decision::Report(Report::new(EventKind::Stopped)));
                }
                let stopped = match status_after_exit(ProcessStatus::Stopping, exit) {
                    ProcessStatus::Stopped => State::Stopped,
                    _ => State::Errored,
                };
                self.then(then, stopped, now, out)
            }
            // What a leader left behind is gone: errored; a program that daemonized
            // itself would only do it again, so it is not restarted.
            (
                State::Ending { run, left, .. },
                Event::Exited {
                    run: number,
                    exit,
                    now,
                },
            ) if run.number == number => {
                self.last_exit = Some(exit);
                out.push(exited(&run, exit, self.error.clone()));
                if daemonized(exit, &left) {
                    out.push(Decision::Report(Report {
                        reason: self.error.clone(),
                        ..Report::new(EventKind::Errored)
                    }));
                    State::Errored
                } else {
                    let lasted = now.saturating_duration_since(run.since);
                    self.after_failure(lasted, None, now, settings, out)
                }
            }

            // The stop's kill timeout passed while the leader still lives.
            (state, Event::KillDeadline { run: number }) => {
                if let State::Stopping { run, .. } = &state
                    && run.number == number
                    && run.leader_alive
                {
                    out.push(Decision::SignalGroup {
                        pgid: run.pid,
                        signal: Signal::KILL,
                    });
                }
                state
            }

            // The backoff passed: start it again.
            (State::Waiting { restart_at }, Event::RestartDue { run }) if run == self.runs => {
                let cause = Cause::new(RestartReason::Crash, self.crash_detail());
                self.count_restart(cause, restart_at, self.runs + 1);
                out.push(Decision::CancelTimer);
                out.push(Decision::Spawn {
                    run: self.runs + 1,
                    attempt: Attempt::Automatic,
                });
                State::Waiting { restart_at }
            }

            // A stop, restart or delete of a running process: the stop signal to the group
            // and to the run's strays, SIGKILL at the deadline.
            (
                State::Starting { run } | State::Running { run },
                Event::Asked { then, escaped, now },
            ) => self.stop(run, then, escaped, now, settings, out),
            // Asked again while stopping: the latest request says what follows, except
            // that a delete stays a delete.
            (
                State::Stopping {
                    run,
                    deadline,
                    signalled,
                    then: before,
                },
                Event::Asked { then, .. },
            ) => State::Stopping {
                run,
                deadline,
                signalled,
                then: if matches!(before, Then::Delete { .. }) {
                    before
                } else {
                    then
                },
            },
            // Asked while what a leader left is being ended: the user's stop now (the
            // reason stays recorded).
            (
                State::Ending {
                    run,
                    left,
                    deadline,
                },
                Event::Asked { then, .. },
            ) => State::Stopping {
                run,
                deadline,
                signalled: left,
                then,
            },
            // Asked during the backoff: the pending restart is cancelled, it is stopped.
            (State::Waiting { .. }, Event::Asked { then, now, .. }) => {
                out.push(Decision::CancelTimer);
                out.push(Decision::Report(Report::new(EventKind::Stopped)));
                self.then(then, State::Stopped, now, out)
            }
            (state @ (State::Stopped | State::Errored), Event::Asked { then, now, .. }) => {
                self.then(then, state, now, out)
            }

            // A trigger during a reload: remembered (the latest one), carried out once
            // the reload is over (see `handle`).
            (state, Event::Trigger { cause, .. }) if self.second.is_some() => {
                self.pending = Some(cause);
                state
            }
            // Over its memory limit from its start, after `max_restarts` such runs in a
            // row: the limit is below what it needs, and restarting cannot help. Stopped,
            // then errored, saying so.
            (
                State::Starting { run } | State::Running { run },
                Event::Trigger {
                    cause:
                        Cause {
                            at_start: Some(used),
                            ..
                        },
                    escaped,
                    now,
                },
            ) if self.quick_failures >= settings.policy.max_restarts => {
                self.error = Some(format!(
                    "{used}, {} runs in a row; not restarting it: raise the limit",
                    self.quick_failures.saturating_add(1)
                ));
                self.stop(run, Then::Fail, escaped, now, settings, out)
            }
            // Running with a ready mode: the reload of this one process (readiness-gated;
            // a replacement that fails leaves the current run running).
            (
                state @ (State::Starting { .. } | State::Running { .. }),
                Event::Trigger { cause, .. },
            ) if settings.ready_timeout.is_some() => {
                self.count_failure_at_start(&cause);
                self.underway = Some(cause);
                out.push(Decision::Spawn {
                    run: self.runs + 1,
                    attempt: Attempt::Replacement,
                });
                state
            }
            // Running without one: a restart (a graceful stop, then a start).
            (
                State::Starting { run } | State::Running { run },
                Event::Trigger {
                    cause,
                    escaped,
                    now,
                },
            ) => {
                out.push(Decision::Report(Report {
                    pid: Some(run.pid),
                    reason: Some(cause.detail.clone()),
                    restart_reason: Some(cause.reason),
                    ..Report::new(EventKind::Restarting)
                }));
                self.count_failure_at_start(&cause);
                self.underway = Some(cause);
                self.stop(run, Then::Restart, escaped, now, settings, out)
            }
            // A crashing app in watch mode waits for a change, and a change starts it.
            (State::Errored, Event::Trigger { cause, now, .. })
                if cause.reason == RestartReason::Watch =>
            {
                self.quick_failures = 0;
                let run = self.runs + 1;
                if self.runs > 0 {
                    self.count_restart(cause, now, run);
                }
                out.push(Decision::Spawn {
                    run,
                    attempt: Attempt::Asked,
                });
                State::Errored
            }
            // Nothing to do: a restart under way takes the change with it (its run is not
            // spawned yet); waiting for the backoff, the restart is coming anyway; a
            // stopped app is never restarted by a trigger.
            (state, Event::Trigger { .. }) => state,

            // News about another run, or nothing to do in this state.
            (state, _) => state,
        };
    }

    /// A memory restart of a run over its limit from its start is a quick failure (see
    /// [`Cause::at_start`]); any other trigger's is not.
    fn count_failure_at_start(&mut self, cause: &Cause) {
        if cause.at_start.is_some() {
            self.quick_failures = self.quick_failures.saturating_add(1);
        }
    }

    /// Counts a restart for `cause`, decided at `at`, which starts run `run`.
    fn count_restart(&mut self, cause: Cause, at: Instant, run: u64) {
        self.counts.add(cause.reason);
        self.last_restart = Some(Restarted { cause, at, run });
    }

    /// Why the restart policy restarts it: how the last run ended, or what velos knows
    /// more (a spawn error, what it left behind).
    fn crash_detail(&self) -> String {
        match (&self.error, self.last_exit) {
            (Some(error), _) => error.clone(),
            (None, Some(exit)) => describe_exit(exit),
            (None, None) => "exited".to_owned(),
        }
    }

    /// The events about a reload: asked for one, and news about the second run. Returns
    /// the event when it is about the current run instead (a stop asked during a reload
    /// is both: the replacement is discarded, then the current run stops).
    fn handle_second(
        &mut self,
        event: Event,
        settings: &Settings,
        out: &mut Vec<Decision>,
    ) -> Option<Event> {
        let number = match &event {
            Event::Reload => {
                self.reload(out);
                return None;
            }
            Event::ReplacementSpawned { run, pid, now } => {
                let run = Run {
                    number: *run,
                    pid: *pid,
                    since: *now,
                    leader_alive: true,
                };
                self.runs = run.number;
                out.push(Decision::Report(Report {
                    pid: Some(run.pid),
                    reason: self.underway.as_ref().map(|cause| cause.detail.clone()),
                    restart_reason: Some(
                        self.underway
                            .as_ref()
                            .map_or(RestartReason::Manual, |cause| cause.reason),
                    ),
                    ..Report::new(EventKind::ReloadStarted)
                }));
                // With a ready mode, its ready timeout; without one it counts as ready once
                // it has stayed up for its min_uptime.
                let wait = settings.ready_timeout.unwrap_or(settings.policy.min_uptime);
                out.push(Decision::ArmTimer {
                    at: *now + wait,
                    timer: Timer::Replacement { run: run.number },
                });
                self.second = Some(Second::Replacing { run });
                return None;
            }
            Event::ReplacementSpawnFailed { reason } => {
                let reason = format!("the replacement could not be started: {reason}");
                self.failed(None, reason, out);
                return None;
            }
            Event::Asked { then, now, .. } => {
                // What the user asked replaces what a trigger began or left pending.
                self.underway = None;
                self.pending = None;
                if let Some(Second::Replacing { run }) = self.second.take() {
                    let reason = match then {
                        Then::Delete { .. } => "deleted during the reload",
                        _ => "stopped during the reload",
                    };
                    self.discard(run, reason.to_owned(), Vec::new(), *now, settings, out);
                }
                // A second run already stopping goes on stopping; when the entry is
                // deleted first, its watcher (unanswered) ends what is left at once.
                return Some(event);
            }
            Event::Ready { run, .. }
            | Event::ReadyDeadline { run, .. }
            | Event::LeaderExited { run, .. }
            | Event::Exited { run, .. }
            | Event::KillDeadline { run } => *run,
            _ => return Some(event),
        };
        if self
            .second
            .as_ref()
            .is_none_or(|second| second.run().number != number)
        {
            return Some(event);
        }
        let second = self.second.take().expect("checked above");
        match (second, event) {
            // Ready: it takes the current run's place, which then stops gracefully.
            (Second::Replacing { run }, Event::Ready { now, .. }) => {
                self.promote(run, now, settings, out);
            }
            (Second::Replacing { run }, Event::ReadyDeadline { escaped, now, .. }) => {
                if settings.ready_timeout.is_some() {
                    let reason = format!(
                        "the replacement (pid {}) was not ready within {}",
                        run.pid,
                        humantime::format_duration(settings.ready_timeout.unwrap_or_default())
                    );
                    self.discard(run, reason, escaped, now, settings, out);
                } else {
                    // No ready mode: up for its min_uptime, it counts as ready.
                    self.promote(run, now, settings, out);
                }
            }
            (
                Second::Replacing { mut run },
                Event::LeaderExited {
                    exit, escaped, now, ..
                },
            ) => {
                run.leader_alive = false;
                let reason = format!(
                    "the replacement (pid {}) {} before it was ready",
                    run.pid,
                    describe_exit(exit)
                );
                out.push(Decision::CancelSecondTimer);
                // Whatever it left in its group or outside it goes with it.
                out.push(Decision::SignalGroup {
                    pgid: run.pid,
                    signal: settings.kill_signal,
                });
                push_strays(out, run.pid, escaped.clone(), settings.kill_signal);
                out.push(Decision::EndTree {
                    escaped,
                    deadline: now + settings.kill_timeout,
                });
                self.second = Some(Second::Discarding { run, reason });
            }
            (
                mut second @ (Second::Discarding { .. } | Second::Retiring { .. }),
                Event::LeaderExited { escaped, now, .. },
            ) => {
                second.run_mut().leader_alive = false;
                out.push(Decision::CancelSecondTimer);
                out.push(Decision::EndTree {
                    escaped,
                    deadline: now + settings.kill_timeout,
                });
                self.second = Some(second);
            }
            (second, Event::KillDeadline { .. }) => {
                if second.run().leader_alive {
                    out.push(Decision::SignalGroup {
                        pgid: second.run().pid,
                        signal: Signal::KILL,
                    });
                }
                self.second = Some(second);
            }
            (Second::Discarding { run, reason }, Event::Exited { exit, .. }) => {
                out.push(exited(&run, exit, Some(reason.clone())));
                self.failed(Some(run.pid), reason, out);
            }
            (Second::Replacing { run }, Event::Exited { exit, .. }) => {
                let reason = format!(
                    "the replacement (pid {}) {} before it was ready",
                    run.pid,
                    describe_exit(exit)
                );
                out.push(Decision::CancelSecondTimer);
                out.push(exited(&run, exit, Some(reason.clone())));
                self.failed(Some(run.pid), reason, out);
            }
            // The replaced run's end is the process's last exit (`list`, the metrics), as
            // a restart's would be.
            (Second::Retiring { run }, Event::Exited { exit, .. }) => {
                self.last_exit = Some(exit);
                out.push(exited(&run, exit, None));
                out.push(Decision::Reloaded {
                    result: velos_proto::ReloadResult::Replaced,
                    new_pid: self.pid(),
                    reason: None,
                });
            }
            (second, _) => self.second = Some(second),
        }
        None
    }

    /// Asked for a reload: a replacement run beside the current one, or nothing to do.
    fn reload(&mut self, out: &mut Vec<Decision>) {
        let skip = match (&self.state, &self.second) {
            (_, Some(_)) => Some("a reload of it is already under way".to_owned()),
            (State::Running { .. } | State::Starting { .. }, None) => None,
            (state, None) => Some(format!(
                "not running ({}); nothing to replace",
                state_word(state)
            )),
        };
        match skip {
            Some(reason) => out.push(Decision::Reloaded {
                result: velos_proto::ReloadResult::Skipped,
                new_pid: None,
                reason: Some(reason),
            }),
            None => out.push(Decision::Spawn {
                run: self.runs + 1,
                attempt: Attempt::Replacement,
            }),
        }
    }

    /// The replacement `run` is ready: it becomes the current run, and the run it
    /// replaces stops gracefully (its kill signal and kill timeout).
    fn promote(&mut self, run: Run, now: Instant, settings: &Settings, out: &mut Vec<Decision>) {
        out.push(Decision::CancelSecondTimer);
        let old = std::mem::replace(&mut self.state, State::Running { run: run.clone() });
        self.error = None;
        let cause = self
            .underway
            .take()
            .unwrap_or_else(|| Cause::new(RestartReason::Manual, "reload asked"));
        // A replacement of a run over its memory limit from its start is no success yet.
        if cause.at_start.is_none() {
            self.quick_failures = 0;
        }
        let reason = cause.reason;
        self.count_restart(cause, now, run.number);
        out.push(Decision::Report(Report {
            pid: Some(run.pid),
            ..Report::new(EventKind::Ready)
        }));
        let replaced = old.run().map(|old| old.pid);
        out.push(Decision::Report(Report {
            pid: Some(run.pid),
            reason: replaced.map(|pid| format!("replaced pid {pid}")),
            restart_reason: Some(reason),
            ..Report::new(EventKind::Replaced)
        }));
        match old {
            State::Starting { run: old } | State::Running { run: old } => {
                // The current run's own timer (a ready deadline) is about the old run.
                out.push(Decision::CancelTimer);
                if old.leader_alive {
                    out.push(Decision::SignalGroup {
                        pgid: old.pid,
                        signal: settings.kill_signal,
                    });
                    out.push(Decision::ArmTimer {
                        at: now + settings.kill_timeout,
                        timer: Timer::SecondKill { run: old.number },
                    });
                }
                self.second = Some(Second::Retiring { run: old });
            }
            State::Stopping { run: old, .. } | State::Ending { run: old, .. } => {
                // Already being ended (its watcher has the deadline): only its end is
                // awaited.
                self.second = Some(Second::Retiring { run: old });
            }
            State::Waiting { .. } | State::Stopped | State::Errored => {
                out.push(Decision::CancelTimer);
                out.push(Decision::Reloaded {
                    result: velos_proto::ReloadResult::Replaced,
                    new_pid: Some(run.pid),
                    reason: None,
                });
            }
        }
    }

    /// The replacement `run` failed (`reason`): it is stopped, the current run untouched.
    fn discard(
        &mut self,
        run: Run,
        reason: String,
        escaped: Vec<u32>,
        now: Instant,
        settings: &Settings,
        out: &mut Vec<Decision>,
    ) {
        out.push(Decision::CancelSecondTimer);
        if run.leader_alive {
            out.push(Decision::SignalGroup {
                pgid: run.pid,
                signal: settings.kill_signal,
            });
            push_strays(out, run.pid, escaped, settings.kill_signal);
            out.push(Decision::ArmTimer {
                at: now + settings.kill_timeout,
                timer: Timer::SecondKill { run: run.number },
            });
        }
        self.second = Some(Second::Discarding { run, reason });
    }

    /// The failed replacement (`pid`) is gone: the reload of this process failed.
    fn failed(&mut self, pid: Option<u32>, reason: String, out: &mut Vec<Decision>) {
        self.underway = None;
        out.push(Decision::Report(Report {
            reason: Some(reason.clone()),
            ..Report::new(EventKind::ReloadFailed)
        }));
        out.push(Decision::Reloaded {
            result: velos_proto::ReloadResult::Failed,
            new_pid: pid,
            reason: Some(reason),
        });
    }

    /// Stops `run` and then `then`: the stop signal to the group and to the run's strays
    /// (`escaped`), SIGKILL at the deadline.
    fn stop(
        &mut self,
        run: Run,
        then: Then,
        escaped: Vec<u32>,
        now: Instant,
        settings: &Settings,
        out: &mut Vec<Decision>,
    ) -> State {
        if !run.leader_alive {
            // The leader exited and left nothing: only the pipes are draining.
            return State::Stopping {
                run,
                deadline: now,
                signalled: Vec::new(),
                then,
            };
        }
        let deadline = now + settings.kill_timeout;
        out.push(Decision::SignalGroup {
            pgid: run.pid,
            signal: settings.kill_signal,
        });
        push_strays(out, run.pid, escaped.clone(), settings.kill_signal);
        out.push(Decision::ArmTimer {
            at: deadline,
            timer: Timer::Kill { run: run.number },
        });
        State::Stopping {
            run,
            deadline,
            signalled: escaped,
            then,
        }
    }

    /// What follows a stop (now `stopped`) that somebody asked for.
    fn then(&mut self, then: Then, stopped: State, now: Instant, out: &mut Vec<Decision>) -> State {
        match then {
            Then::Stop => out.push(Decision::Answer),
            Then::Restart => {
                // A trigger's restart is not a failure, nor a fresh start: the count of
                // quick failures stays as it is.
                match self.underway.take() {
                    Some(cause) => self.count_restart(cause, now, self.runs + 1),
                    None => {
                        if self.runs > 0 {
                            let cause = Cause::new(RestartReason::Manual, "restart asked");
                            self.count_restart(cause, now, self.runs + 1);
                        }
                        self.quick_failures = 0;
                    }
                }
                out.push(Decision::Spawn {
                    run: self.runs + 1,
                    attempt: Attempt::Asked,
                });
                out.push(Decision::Answer);
            }
            Then::Delete { logs } => {
                out.push(Decision::Report(Report::new(EventKind::Deleted)));
                out.push(Decision::Answer);
                out.push(Decision::Remove { logs });
            }
            Then::Fail => {
                out.push(Decision::Report(Report {
                    reason: self.error.clone(),
                    ..Report::new(EventKind::Errored)
                }));
                out.push(Decision::Answer);
                return State::Errored;
            }
        }
        stopped
    }

    /// After a failure (an unexpected exit, or a spawn of an automatic restart that
    /// failed with `spawn_error`): the restart policy's verdict.
    fn after_failure(
        &mut self,
        lasted: Duration,
        spawn_error: Option<String>,
        now: Instant,
        settings: &Settings,
        out: &mut Vec<Decision>,
    ) -> State {
        let (verdict, failures) = settings.policy.judge(self.quick_failures, lasted);
        self.quick_failures = failures;
        match verdict {
            Verdict::Never if settings.policy.watch => {
                let reason = format!("exited; not restarted (restart never); {AWAIT_CHANGE}");
                self.error = Some(reason.clone());
                out.push(Decision::Report(Report {
                    reason: Some(reason),
                    ..Report::new(EventKind::Errored)
                }));
                State::Errored
            }
            Verdict::Never => State::Errored,
            Verdict::AwaitChange => {
                let within = humantime::format_duration(settings.policy.min_uptime);
                let reason = match &spawn_error {
                    Some(error) => format!("could not be started: {error}; {AWAIT_CHANGE}"),
                    // How it ended, never "crashed": with `--restart always` an exit 0
                    // comes here too.
                    None => format!(
                        "{} within {within} of starting; {AWAIT_CHANGE} (see 'velos logs {}')",
                        self.last_exit
                            .map_or_else(|| "ended".to_owned(), describe_exit),
                        settings.name
                    ),
                };
                self.error = Some(reason.clone());
                out.push(Decision::Report(Report {
                    reason: Some(reason),
                    ..Report::new(EventKind::Errored)
                }));
                State::Errored
            }
            Verdict::GiveUp => {
                let within = humantime::format_duration(settings.policy.min_uptime);
                let reason = match &spawn_error {
                    Some(error) => format!(
                        "failed {failures} times in a row within {within} of starting, the \
                         last time: {error}; not restarting it"
                    ),
                    None => format!(
                        "exited {failures} times in a row within {within} of starting; not \
                         restarting it (see 'velos logs {}')",
                        settings.name
                    ),
                };
                let reason = if settings.policy.watch {
                    format!("{reason}; {AWAIT_CHANGE}")
                } else {
                    reason
                };
                self.error = Some(reason.clone());
                out.push(Decision::Report(Report {
                    reason: Some(reason),
                    ..Report::new(EventKind::Errored)
                }));
                State::Errored
            }
            Verdict::RestartIn(delay) => {
                let restart_at = now + delay;
                out.push(Decision::ArmTimer {
                    at: restart_at,
                    timer: Timer::Restart { run: self.runs },
                });
                if let Some(error) = &spawn_error {
                    out.push(Decision::Log(format!(
                        "could not be started again: {error}; trying again in {}",
                        humantime::format_duration(delay)
                    )));
                }
                out.push(Decision::Report(Report {
                    restart_in: Some(delay),
                    reason: spawn_error,
                    restart_reason: Some(RestartReason::Crash),
                    ..Report::new(EventKind::Restarting)
                }));
                State::Waiting { restart_at }
            }
        }
    }
}

/// What an errored process in watch mode waits for (see [`Policy::watch`]).
const AWAIT_CHANGE: &str = "waiting for a file change (watch)";

/// How a run's leader ended, in words: "exited with code 3", "was killed by signal 9".
fn describe_exit(exit: Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => match velos_proto::signal_name(signal) {
            Some(name) => format!("was killed by {name}"),
            None => format!("was killed by signal {signal}"),
        },
        (None, None) => "ended".to_owned(),
    }
}

/// The status word of `state`, for messages.
fn state_word(state: &State) -> &'static str {
    match state {
        State::Stopped => "stopped",
        State::Errored => "errored",
        State::Waiting { .. } => "waiting to restart",
        State::Starting { .. } => "starting",
        State::Running { .. } => "running",
        State::Stopping { .. } | State::Ending { .. } => "stopping",
    }
}

/// The `exited` report of `run`.
fn exited(run: &Run, exit: Exit, reason: Option<String>) -> Decision {
    Decision::Report(Report {
        pid: Some(run.pid),
        exit: Some(exit),
        reason,
        ..Report::new(EventKind::Exited)
    })
}

/// Signals the strays `pids` of the group `pgid`, if there are any.
fn push_strays(out: &mut Vec<Decision>, pgid: u32, pids: Vec<u32>, signal: Signal) {
    if !pids.is_empty() {
        out.push(Decision::SignalStrays { pgid, pids, signal });
    }
}
