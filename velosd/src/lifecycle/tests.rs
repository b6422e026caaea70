//! Unit tests of every transition: events in, decisions out; no process, socket or
//! timer is involved.

use std::time::{Duration, Instant};

use rustix::process::Signal;
use velos_proto::{EventKind, ProcessStatus, RestartCounts, RestartMode, RestartReason};

use super::*;

const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_UPTIME: Duration = Duration::from_secs(1);

fn settings(max_restarts: u32) -> Settings<'static> {
    Settings {
        name: "api",
        kill_timeout: KILL_TIMEOUT,
        kill_signal: Signal::TERM,
        policy: Policy {
            restart: RestartMode::OnFailure,
            max_restarts,
            min_uptime: MIN_UPTIME,
            watch: false,
        },
        ready_timeout: None,
        stop_exit_codes: &[],
    }
}

/// `settings(16)` with a ready mode whose timeout is `timeout`.
fn with_ready_timeout(timeout: Duration) -> Settings<'static> {
    Settings {
        ready_timeout: Some(timeout),
        ..settings(16)
    }
}

fn code(code: i32) -> Exit {
    Exit {
        code: Some(code),
        signal: None,
    }
}

fn signal(signal: i32) -> Exit {
    Exit {
        code: None,
        signal: Some(signal),
    }
}

fn report(kind: EventKind) -> Decision {
    Decision::Report(Report::new(kind))
}

fn signal_group(pgid: u32, signal: Signal) -> Decision {
    Decision::SignalGroup { pgid, signal }
}

fn signal_strays(pgid: u32, pids: Vec<u32>, signal: Signal) -> Decision {
    Decision::SignalStrays { pgid, pids, signal }
}

fn arm(at: Instant, timer: Timer) -> Decision {
    Decision::ArmTimer { at, timer }
}

/// The report that it is errored with `reason`.
fn errored_report(reason: &str) -> Decision {
    Decision::Report(Report {
        reason: Some(reason.into()),
        ..Report::new(EventKind::Errored)
    })
}

/// The report of run `pid`'s end with `exit`.
fn exit_report(pid: u32, exit: Exit) -> Decision {
    Decision::Report(Report {
        pid: Some(pid),
        exit: Some(exit),
        ..Report::new(EventKind::Exited)
    })
}

fn run(number: u64, pid: u32, since: Instant, leader_alive: bool) -> Run {
    Run {
        number,
        pid,
        since,
        leader_alive,
    }
}

/// A lifecycle with run 1 (pid 100) started at `t0`, without a ready mode.
fn running(t0: Instant) -> Lifecycle {
    let mut life = Lifecycle::new();
    let out = life.handle(spawned(1, 100, t0), &settings(16));
    assert_eq!(
        out,
        [Decision::Report(Report {
            pid: Some(100),
            ..Report::new(EventKind::Started)
        })]
    );
    assert_eq!(
        life.status(),
        ProcessStatus::Running,
        "at once, without a ready mode"
    );
    life
}

fn spawned(run: u64, pid: u32, now: Instant) -> Event {
    Event::Spawned { run, pid, now }
}

fn asked(then: Then, now: Instant) -> Event {
    Event::Asked {
        then,
        escaped: Vec::new(),
        now,
    }
}

fn leader_exited(run: u64, exit: Exit, members: Vec<u32>, now: Instant) -> Event {
    Event::LeaderExited {
        run,
        exit,
        escaped: Vec::new(),
        members,
        now,
    }
}

fn exited(run: u64, exit: Exit, now: Instant) -> Event {
    Event::Exited { run, exit, now }
}

#[test]
fn a_stop_signals_the_group_and_its_strays_and_arms_the_kill_deadline() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let out = life.handle(
        Event::Asked {
            then: Then::Stop,
            escaped: vec![7],
            now: t0,
        },
        &settings(16),
    );
    let deadline = t0 + KILL_TIMEOUT;
    assert_eq!(
        out,
        [
            signal_group(100, Signal::TERM),
            signal_strays(100, vec![7], Signal::TERM),
            arm(deadline, Timer::Kill { run: 1 }),
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Stopping);
    assert_eq!(life.pid(), Some(100));
    // The deadline passes: SIGKILL to the group.
    let out = life.handle(Event::KillDeadline { run: 1 }, &settings(16));
    assert_eq!(out, [signal_group(100, Signal::KILL)]);
    // The leader exits: the watcher takes the deadline over; only strays that were
    // not signalled yet get the stop signal.
    let out = life.handle(
        Event::LeaderExited {
            run: 1,
            exit: signal(9),
            escaped: vec![7, 8],
            members: vec![],
            now: deadline,
        },
        &settings(16),
    );
    assert_eq!(
        out,
        [
            Decision::CancelTimer,
            signal_strays(100, vec![8], Signal::TERM),
            Decision::EndTree {
                escaped: vec![7, 8],
                deadline
            },
        ]
    );
    // No SIGKILL to a group whose leader is gone.
    assert_eq!(
        life.handle(Event::KillDeadline { run: 1 }, &settings(16)),
        []
    );
    let out = life.handle(exited(1, signal(9), deadline), &settings(16));
    assert_eq!(
        out,
        [
            exit_report(100, signal(9)),
            report(EventKind::Stopped),
            Decision::Answer,
        ]
    );
    assert_eq!(life.state(), &State::Stopped);
    assert_eq!(life.last_exit(), Some(signal(9)));
    assert_eq!(life.pid(), None);
}

#[test]
fn a_stopping_process_that_exits_on_its_own_is_stopped_and_not_restarted() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(asked(Then::Stop, t0), &settings(16));
    // It exits with an error code of its own accord, before any signal mattered.
    let out = life.handle(leader_exited(1, code(3), vec![], t0), &settings(16));
    assert!(out.contains(&Decision::EndTree {
        escaped: vec![],
        deadline: t0 + KILL_TIMEOUT
    }));
    let out = life.handle(exited(1, code(3), t0), &settings(16));
    assert_eq!(out.last(), Some(&Decision::Answer));
    assert!(out.contains(&report(EventKind::Stopped)));
    assert!(!out.iter().any(|d| matches!(d, Decision::ArmTimer { .. })));
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

#[test]
fn an_exit_nobody_asked_for_waits_for_the_backoff_and_restarts() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let later = t0 + Duration::from_millis(10);
    let out = life.handle(leader_exited(1, code(1), vec![], later), &settings(16));
    assert_eq!(
        out,
        [Decision::EndTree {
            escaped: vec![],
            deadline: later
        }]
    );
    assert_eq!(
        life.status(),
        ProcessStatus::Running,
        "until its pipes drain"
    );
    let out = life.handle(exited(1, code(1), later), &settings(16));
    let restart_at = later + Duration::from_millis(100);
    assert_eq!(
        out,
        [
            exit_report(100, code(1)),
            arm(restart_at, Timer::Restart { run: 1 }),
            Decision::Report(Report {
                restart_in: Some(Duration::from_millis(100)),
                restart_reason: Some(RestartReason::Crash),
                ..Report::new(EventKind::Restarting)
            }),
        ]
    );
    assert_eq!(life.state(), &State::Waiting { restart_at });
    let out = life.handle(Event::RestartDue { run: 1 }, &settings(16));
    assert_eq!(
        out,
        [
            Decision::CancelTimer,
            Decision::Spawn {
                run: 2,
                attempt: Attempt::Automatic
            }
        ]
    );
    assert_eq!(life.restarts(), 1);
    assert_eq!(
        life.restart_counts().crash,
        1,
        "the policy's restart is a crash"
    );
    let out = life.handle(spawned(2, 200, restart_at), &settings(16));
    assert_eq!(
        out,
        [Decision::Report(Report {
            pid: Some(200),
            restart_reason: Some(RestartReason::Crash),
            ..Report::new(EventKind::Started)
        })],
        "the restart's run says why"
    );
    let last = life.last_restart().unwrap();
    assert_eq!(
        (&last.cause, last.at, last.run),
        (
            &Cause::new(RestartReason::Crash, "exited with code 1"),
            restart_at,
            2
        )
    );
    assert_eq!(
        life.run(),
        Some(&run(2, 200, restart_at, true)),
        "a new run with its own number"
    );
}

#[test]
fn exit_code_0_is_stopped_and_not_restarted() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(0), vec![], t0), &settings(16));
    let out = life.handle(exited(1, code(0), t0), &settings(16));
    assert_eq!(out.len(), 1, "only the exited report: {out:?}");
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

#[test]
fn news_about_an_earlier_run_changes_nothing() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &settings(16));
    life.handle(exited(1, code(1), t0), &settings(16));
    let waiting = life.clone();
    // While waiting for the restart: a late exit of the run that ended, a late kill
    // deadline and a restart timer of another run.
    for event in [
        exited(1, code(1), t0),
        leader_exited(1, code(1), vec![5], t0),
        Event::KillDeadline { run: 1 },
        Event::RestartDue { run: 0 },
    ] {
        assert_eq!(life.handle(event, &settings(16)), []);
        assert_eq!(life, waiting);
    }
    // While running run 2: news about run 1.
    life.handle(Event::RestartDue { run: 1 }, &settings(16));
    life.handle(spawned(2, 200, t0), &settings(16));
    let running = life.clone();
    for event in [
        exited(1, code(1), t0),
        leader_exited(1, code(1), vec![], t0),
    ] {
        assert_eq!(life.handle(event, &settings(16)), []);
        assert_eq!(life, running);
    }
    assert!(!life.needs_members(1));
    assert!(life.needs_members(2));
}

#[test]
fn a_stop_during_the_backoff_cancels_the_restart() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &settings(16));
    life.handle(exited(1, code(1), t0), &settings(16));
    assert_eq!(life.status(), ProcessStatus::Waiting);
    let out = life.handle(asked(Then::Stop, t0), &settings(16));
    assert_eq!(
        out,
        [
            Decision::CancelTimer,
            report(EventKind::Stopped),
            Decision::Answer
        ]
    );
    assert_eq!(life.state(), &State::Stopped);
    // A restart timer that had already fired does nothing now.
    assert_eq!(life.handle(Event::RestartDue { run: 1 }, &settings(16)), []);
}

#[test]
fn a_restart_during_the_backoff_starts_it_at_once() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &settings(16));
    life.handle(exited(1, code(1), t0), &settings(16));
    let out = life.handle(asked(Then::Restart, t0), &settings(16));
    assert_eq!(
        out,
        [
            Decision::CancelTimer,
            report(EventKind::Stopped),
            Decision::Spawn {
                run: 2,
                attempt: Attempt::Asked
            },
            Decision::Answer,
        ]
    );
    assert_eq!(life.restarts(), 1);
}

#[test]
fn a_delete_during_a_stop_removes_the_entry_once_it_is_gone() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(asked(Then::Stop, t0), &settings(16));
    // Asked again while stopping: no second signal, no second timer.
    let out = life.handle(asked(Then::Delete { logs: true }, t0), &settings(16));
    assert_eq!(out, []);
    // A restart asked after the delete does not undo it.
    assert_eq!(life.handle(asked(Then::Restart, t0), &settings(16)), []);
    life.handle(leader_exited(1, signal(15), vec![], t0), &settings(16));
    let out = life.handle(exited(1, signal(15), t0), &settings(16));
    assert_eq!(
        out[1..],
        [
            report(EventKind::Stopped),
            report(EventKind::Deleted),
            Decision::Answer,
            Decision::Remove { logs: true },
        ]
    );
}

#[test]
fn a_restart_during_a_stop_starts_it_again_once_it_is_gone() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(asked(Then::Stop, t0), &settings(16));
    life.handle(asked(Then::Restart, t0), &settings(16));
    life.handle(leader_exited(1, signal(15), vec![], t0), &settings(16));
    let out = life.handle(exited(1, signal(15), t0), &settings(16));
    assert_eq!(
        out[1..],
        [
            report(EventKind::Stopped),
            Decision::Spawn {
                run: 2,
                attempt: Attempt::Asked
            },
            Decision::Answer,
        ]
    );
    assert_eq!(
        (life.restarts(), life.status()),
        (1, ProcessStatus::Stopped)
    );
}

#[test]
fn requests_on_a_process_that_is_not_running() {
    for then in [Then::Stop, Then::Restart, Then::Delete { logs: false }] {
        let mut life = Lifecycle::new();
        let out = life.handle(asked(then, Instant::now()), &settings(16));
        let expected: Vec<Decision> = match then {
            Then::Stop => vec![Decision::Answer],
            // Never started: the first start is no restart.
            Then::Restart => vec![
                Decision::Spawn {
                    run: 1,
                    attempt: Attempt::Asked,
                },
                Decision::Answer,
            ],
            Then::Delete { logs } => vec![
                report(EventKind::Deleted),
                Decision::Answer,
                Decision::Remove { logs },
            ],
            Then::Fail => unreachable!("nobody asks for a failure"),
        };
        assert_eq!(out, expected);
        assert_eq!(life.restarts(), 0);
    }
}

#[test]
fn a_spawn_somebody_asked_for_that_fails_is_errored_with_the_reason() {
    let mut life = Lifecycle::new();
    let out = life.handle(
        Event::SpawnFailed {
            attempt: Attempt::Asked,
            reason: "no such file".into(),
            now: Instant::now(),
        },
        &settings(16),
    );
    assert_eq!(out, [errored_report("no such file")]);
    assert_eq!(life.state(), &State::Errored);
    assert_eq!(life.error(), Some("no such file"));
    // A later spawn clears the reason.
    life.handle(spawned(1, 9, Instant::now()), &settings(16));
    assert_eq!(life.error(), None);
}

#[test]
fn an_automatic_restart_that_cannot_spawn_is_a_quick_failure_with_the_backoff() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &settings(2));
    life.handle(exited(1, code(1), t0), &settings(2));
    life.handle(Event::RestartDue { run: 1 }, &settings(2));
    let failed = Event::SpawnFailed {
        attempt: Attempt::Automatic,
        reason: "EMFILE".into(),
        now: t0,
    };
    let out = life.handle(failed.clone(), &settings(2));
    let delay = Duration::from_millis(200);
    assert_eq!(
        out,
        [
            arm(t0 + delay, Timer::Restart { run: 1 }),
            Decision::Log("could not be started again: EMFILE; trying again in 200ms".into()),
            Decision::Report(Report {
                restart_in: Some(delay),
                reason: Some("EMFILE".into()),
                restart_reason: Some(RestartReason::Crash),
                ..Report::new(EventKind::Restarting)
            }),
        ]
    );
    assert_eq!(life.error(), Some("EMFILE"), "why the last attempt failed");
    assert_eq!(life.restarts(), 1, "attempts count as restarts");
    // The third quick failure in a row is one too many.
    life.handle(Event::RestartDue { run: 1 }, &settings(2));
    let out = life.handle(failed, &settings(2));
    let reason = "failed 3 times in a row within 1s of starting, the last time: EMFILE; \
                  not restarting it";
    assert_eq!(out, [errored_report(reason)]);
    assert_eq!(
        (life.state(), life.error()),
        (&State::Errored, Some(reason))
    );
}

#[test]
fn quick_failures_give_up_after_max_restarts_and_a_long_run_resets_the_count() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for number in 1..=4 {
        // Each run fails 10 ms after it started: a quick failure.
        now += Duration::from_millis(10);
        life.handle(leader_exited(number, code(1), vec![], now), &settings(3));
        let out = life.handle(exited(number, code(1), now), &settings(3));
        match life.restart_at() {
            Some(at) => {
                delays.push(at - now);
                life.handle(Event::RestartDue { run: number }, &settings(3));
                life.handle(spawned(number + 1, 100 + number as u32, now), &settings(3));
            }
            None => {
                let reason = "exited 4 times in a row within 1s of starting; not \
                              restarting it (see 'velos logs api')";
                assert!(out.contains(&errored_report(reason)));
                assert_eq!(life.error(), Some(reason));
            }
        }
    }
    assert_eq!(
        delays,
        [100, 200, 400].map(Duration::from_millis),
        "doubling backoff"
    );
    assert_eq!(life.state(), &State::Errored);

    // A run that lasted min_uptime starts the count afresh.
    let mut life = running(t0);
    now = t0 + Duration::from_millis(10);
    for number in 1..=2 {
        life.handle(exited(number, code(1), now), &settings(3));
        life.handle(Event::RestartDue { run: number }, &settings(3));
        life.handle(spawned(number + 1, 1, now), &settings(3));
    }
    let long = now + MIN_UPTIME;
    life.handle(exited(3, code(1), long), &settings(3));
    assert_eq!(
        life.restart_at(),
        Some(long + Duration::from_millis(100)),
        "back to the first delay"
    );
    // A user's restart starts the count afresh too.
    life.handle(asked(Then::Restart, long), &settings(3));
    assert_eq!(life.quick_failures, 0);
}

#[test]
fn without_autorestart_a_failure_stays_errored_quietly() {
    let mut settings = settings(16);
    settings.policy.restart = RestartMode::Never;
    let t0 = Instant::now();
    let mut life = running(t0);
    let out = life.handle(exited(1, signal(9), t0), &settings);
    assert_eq!(out.len(), 1, "only the exited report: {out:?}");
    assert_eq!(life.state(), &State::Errored);
}

#[test]
fn what_a_leader_leaves_behind_is_ended_and_the_run_is_a_failure() {
    let t0 = Instant::now();
    let mut life = running(t0);
    assert!(life.needs_members(1));
    let out = life.handle(
        Event::LeaderExited {
            run: 1,
            exit: code(2),
            escaped: vec![300],
            members: vec![101],
            now: t0,
        },
        &settings(16),
    );
    let reason = "exited with code 2 and left 2 processes running (pids 101, 300), which \
                  velos ended";
    let deadline = t0 + KILL_TIMEOUT;
    assert_eq!(
        out,
        [
            signal_group(100, Signal::TERM),
            signal_strays(100, vec![300], Signal::TERM),
            Decision::Log(reason.into()),
            Decision::EndTree {
                escaped: vec![300],
                deadline
            },
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Stopping);
    assert_eq!(life.error(), Some(reason));
    let out = life.handle(exited(1, code(2), t0), &settings(16));
    assert_eq!(
        out[0],
        Decision::Report(Report {
            pid: Some(100),
            exit: Some(code(2)),
            reason: Some(reason.into()),
            ..Report::new(EventKind::Exited)
        })
    );
    assert_eq!(
        life.status(),
        ProcessStatus::Waiting,
        "restarted as a failure"
    );
}

#[test]
fn a_program_that_daemonizes_itself_is_errored_and_not_restarted() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(0), vec![101], t0), &settings(16));
    let out = life.handle(exited(1, code(0), t0), &settings(16));
    let reason = life.error().map(str::to_owned);
    assert!(reason.as_deref().unwrap().contains("daemonizes itself"));
    assert_eq!(
        out[1..],
        [Decision::Report(Report {
            reason,
            ..Report::new(EventKind::Errored)
        })]
    );
    assert_eq!(life.state(), &State::Errored);
}

#[test]
fn a_stop_while_leftovers_are_ended_makes_it_a_stop() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(0), vec![101], t0), &settings(16));
    // Already signalled by the leader's exit: nothing more to send.
    assert_eq!(life.handle(asked(Then::Stop, t0), &settings(16)), []);
    let out = life.handle(exited(1, code(0), t0), &settings(16));
    assert_eq!(
        out,
        [
            exit_report(100, code(0)),
            report(EventKind::Stopped),
            Decision::Answer,
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Stopped);
    assert!(life.error().is_some(), "the reason stays recorded");
}

#[test]
fn a_stop_after_the_leader_exited_cleanly_sends_no_signal() {
    let t0 = Instant::now();
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &settings(16));
    // Only its pipes are draining: its group may be gone, so nothing is signalled.
    assert_eq!(life.handle(asked(Then::Stop, t0), &settings(16)), []);
    let out = life.handle(exited(1, code(1), t0), &settings(16));
    assert_eq!(out.last(), Some(&Decision::Answer));
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

#[test]
fn with_a_ready_mode_it_is_starting_until_it_says_it_is_ready() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = Lifecycle::new();
    let out = life.handle(spawned(1, 100, t0), &ready);
    assert_eq!(
        out[1..],
        [
            Decision::Report(Report {
                pid: Some(100),
                ..Report::new(EventKind::Starting)
            }),
            arm(
                t0 + Duration::from_secs(30),
                Timer::ReadyDeadline { run: 1 }
            )
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Starting);
    assert!(life.wants_to_run() && life.is_alive());
    // A ready signal about another run changes nothing.
    assert_eq!(life.handle(Event::Ready { run: 2, now: t0 }, &ready), []);
    let out = life.handle(Event::Ready { run: 1, now: t0 }, &ready);
    assert_eq!(
        out,
        [
            Decision::CancelTimer,
            Decision::Report(Report {
                pid: Some(100),
                ..Report::new(EventKind::Ready)
            }),
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Running);
    // A late deadline changes nothing either.
    let late = Event::ReadyDeadline {
        run: 1,
        escaped: vec![],
        now: t0,
    };
    assert_eq!(life.handle(late, &ready), []);
    assert_eq!(life.status(), ProcessStatus::Running);
}

#[test]
fn not_ready_in_time_is_stopped_and_stays_errored_with_the_reason() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(2));
    let mut life = starting(t0, &ready);
    let at = t0 + Duration::from_secs(2);
    let out = life.handle(
        Event::ReadyDeadline {
            run: 1,
            escaped: vec![],
            now: at,
        },
        &ready,
    );
    assert_eq!(
        out,
        [
            signal_group(100, Signal::TERM),
            arm(at + KILL_TIMEOUT, Timer::Kill { run: 1 }),
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Stopping);
    let reason = "not ready within 2s; velos stopped it";
    assert_eq!(life.error(), Some(reason));
    life.handle(leader_exited(1, signal(15), vec![], at), &ready);
    let out = life.handle(exited(1, signal(15), at), &ready);
    assert_eq!(
        out,
        [
            Decision::Report(Report {
                pid: Some(100),
                exit: Some(signal(15)),
                reason: Some(reason.into()),
                ..Report::new(EventKind::Exited)
            }),
            errored_report(reason),
            Decision::Answer,
        ]
    );
    assert_eq!(
        (life.state(), life.error()),
        (&State::Errored, Some(reason))
    );
}

#[test]
fn an_exit_before_it_is_ready_is_a_quick_failure() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = starting(t0, &ready);
    life.handle(leader_exited(1, code(1), vec![], t0), &ready);
    assert_eq!(
        life.status(),
        ProcessStatus::Starting,
        "until its pipes drain"
    );
    let out = life.handle(exited(1, code(1), t0), &ready);
    assert!(out.contains(&arm(
        t0 + Duration::from_millis(100),
        Timer::Restart { run: 1 }
    )));
    assert_eq!(life.status(), ProcessStatus::Waiting);
}

#[test]
fn a_stop_while_starting_stops_it() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = starting(t0, &ready);
    let out = life.handle(asked(Then::Stop, t0), &ready);
    assert_eq!(out[0], signal_group(100, Signal::TERM));
    // The kill timer replaces the ready deadline; a ready signal now changes nothing.
    assert_eq!(life.handle(Event::Ready { run: 1, now: t0 }, &ready), []);
    life.handle(leader_exited(1, signal(15), vec![], t0), &ready);
    let out = life.handle(exited(1, signal(15), t0), &ready);
    assert_eq!(out.last(), Some(&Decision::Answer));
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

/// Run 1 (pid 100) running, then a reload: replacement run 2 (pid 200) spawned at `t0`.
fn replacing(t0: Instant, settings: &Settings) -> Lifecycle {
    let mut life = running(t0);
    assert_eq!(
        life.handle(Event::Reload, settings),
        [Decision::Spawn {
            run: 2,
            attempt: Attempt::Replacement
        }]
    );
    let out = life.handle(
        Event::ReplacementSpawned {
            run: 2,
            pid: 200,
            now: t0,
        },
        settings,
    );
    let wait = settings.ready_timeout.unwrap_or(MIN_UPTIME);
    assert_eq!(out[1..], [arm(t0 + wait, Timer::Replacement { run: 2 })]);
    // The current run is untouched meanwhile.
    assert_eq!(life.pid(), Some(100));
    assert_eq!(life.status(), ProcessStatus::Running);
    life
}

#[test]
fn a_ready_replacement_takes_over_and_the_old_run_stops_gracefully() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = replacing(t0, &ready);
    let out = life.handle(Event::Ready { run: 2, now: t0 }, &ready);
    assert!(out.contains(&signal_group(100, Signal::TERM)));
    assert!(out.contains(&arm(t0 + KILL_TIMEOUT, Timer::SecondKill { run: 1 })));
    assert!(!out.iter().any(|d| matches!(d, Decision::Reloaded { .. })));
    assert_eq!(life.pid(), Some(200));
    assert_eq!(life.status(), ProcessStatus::Running);
    assert!(matches!(life.second(), Some(Second::Retiring { run }) if run.pid == 100));
    // The old run is gone: the reload of this process is done.
    life.handle(leader_exited(1, signal(15), vec![], t0), &ready);
    let out = life.handle(exited(1, signal(15), t0), &ready);
    assert_eq!(
        out.last(),
        Some(&Decision::Reloaded {
            result: velos_proto::ReloadResult::Replaced,
            new_pid: Some(200),
            reason: None
        })
    );
    assert_eq!(life.second(), None);
    assert_eq!(life.status(), ProcessStatus::Running);
    // How the replaced run ended is the last exit, as after a restart.
    assert_eq!(life.last_exit(), Some(signal(15)));
}

#[test]
fn without_a_ready_mode_a_replacement_up_for_min_uptime_counts_as_ready() {
    let t0 = Instant::now();
    let plain = settings(16);
    let mut life = replacing(t0, &plain);
    let event = Event::ReadyDeadline {
        run: 2,
        escaped: vec![],
        now: t0 + MIN_UPTIME,
    };
    life.handle(event, &plain);
    assert_eq!(life.pid(), Some(200));
}

#[test]
fn a_replacement_that_exits_is_discarded_and_the_old_run_is_untouched() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = replacing(t0, &ready);
    let out = life.handle(leader_exited(2, code(1), vec![], t0), &ready);
    assert!(
        !out.iter()
            .any(|d| matches!(d, Decision::SignalGroup { pgid: 100, .. }))
    );
    let out = life.handle(exited(2, code(1), t0), &ready);
    let reason = "the replacement (pid 200) exited with code 1 before it was ready".to_owned();
    assert_eq!(
        out.last(),
        Some(&Decision::Reloaded {
            result: velos_proto::ReloadResult::Failed,
            new_pid: Some(200),
            reason: Some(reason)
        })
    );
    assert_eq!(life.pid(), Some(100));
    assert_eq!(life.status(), ProcessStatus::Running);
    assert_eq!(life.error(), None, "nothing errored");
    assert_eq!(life.second(), None);
}

#[test]
fn a_replacement_not_ready_in_time_is_stopped_and_the_old_run_is_untouched() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(2));
    let mut life = replacing(t0, &ready);
    let deadline = Event::ReadyDeadline {
        run: 2,
        escaped: vec![],
        now: t0 + Duration::from_secs(2),
    };
    let out = life.handle(deadline, &ready);
    assert!(out.contains(&signal_group(200, Signal::TERM)));
    // Still hanging at the kill deadline: SIGKILL to the replacement's group only.
    let out = life.handle(Event::KillDeadline { run: 2 }, &ready);
    assert_eq!(out, [signal_group(200, Signal::KILL)]);
    life.handle(leader_exited(2, signal(9), vec![], t0), &ready);
    let out = life.handle(exited(2, signal(9), t0), &ready);
    assert!(matches!(
        out.last(),
        Some(Decision::Reloaded { result: velos_proto::ReloadResult::Failed, reason: Some(r), .. })
            if r.contains("was not ready within 2s")
    ));
    assert_eq!(
        (life.pid(), life.status()),
        (Some(100), ProcessStatus::Running)
    );
}

#[test]
fn a_stop_during_a_reload_discards_the_replacement_and_stops_the_current_run() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = replacing(t0, &ready);
    let out = life.handle(
        Event::Asked {
            then: Then::Stop,
            escaped: vec![],
            now: t0,
        },
        &ready,
    );
    for pgid in [200, 100] {
        assert!(
            out.contains(&Decision::SignalGroup {
                pgid,
                signal: Signal::TERM
            }),
            "{out:?}"
        );
    }
    assert_eq!(life.status(), ProcessStatus::Stopping);
    // A late ready of the replacement changes nothing.
    life.handle(Event::Ready { run: 2, now: t0 }, &ready);
    assert_eq!(life.pid(), Some(100));
    life.handle(leader_exited(2, signal(15), vec![], t0), &ready);
    let out = life.handle(exited(2, signal(15), t0), &ready);
    assert!(matches!(
        out.last(),
        Some(Decision::Reloaded { reason: Some(r), .. }) if r == "stopped during the reload"
    ));
    life.handle(leader_exited(1, signal(15), vec![], t0), &ready);
    life.handle(exited(1, signal(15), t0), &ready);
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

#[test]
fn a_process_not_running_is_skipped() {
    let mut life = Lifecycle::new();
    assert!(matches!(
        life.handle(Event::Reload, &settings(16)).as_slice(),
        [Decision::Reloaded {
            result: velos_proto::ReloadResult::Skipped,
            ..
        }]
    ));
}

#[test]
fn a_stop_sends_the_kill_signal_it_was_given() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let sigint = Settings {
        kill_signal: Signal::INT,
        ..settings(16)
    };
    let out = life.handle(
        Event::Asked {
            then: Then::Stop,
            escaped: vec![7],
            now: t0,
        },
        &sigint,
    );
    assert_eq!(
        out[..2],
        [
            signal_group(100, Signal::INT),
            signal_strays(100, vec![7], Signal::INT),
        ]
    );
    // SIGKILL still follows at the deadline.
    let out = life.handle(Event::KillDeadline { run: 1 }, &sigint);
    assert_eq!(out, [signal_group(100, Signal::KILL)]);
}

fn trigger(reason: RestartReason, detail: &str, now: Instant) -> Event {
    Event::Trigger {
        cause: Cause::new(reason, detail),
        escaped: Vec::new(),
        now,
    }
}

/// A lifecycle with a ready mode that spawned run 1 (pid 100) at `t0`: starting.
fn starting(t0: Instant, ready: &Settings) -> Lifecycle {
    let mut life = Lifecycle::new();
    life.handle(spawned(1, 100, t0), ready);
    life
}

/// `life` with a ready mode, running run 1 (pid 100).
fn ready_and_running(t0: Instant, ready: &Settings) -> Lifecycle {
    let mut life = starting(t0, ready);
    life.handle(Event::Ready { run: 1, now: t0 }, ready);
    assert_eq!(life.status(), ProcessStatus::Running);
    life
}

#[test]
fn a_trigger_restarts_a_running_process_without_a_ready_mode() {
    let t0 = Instant::now();
    let plain = settings(16);
    let mut life = running(t0);
    let event = Event::Trigger {
        cause: Cause::new(RestartReason::Cron, "cron 0 3 * * *"),
        escaped: vec![7],
        now: t0,
    };
    let out = life.handle(event, &plain);
    assert_eq!(
        out,
        [
            Decision::Report(Report {
                pid: Some(100),
                reason: Some("cron 0 3 * * *".into()),
                restart_reason: Some(RestartReason::Cron),
                ..Report::new(EventKind::Restarting)
            }),
            signal_group(100, Signal::TERM),
            signal_strays(100, vec![7], Signal::TERM),
            arm(t0 + KILL_TIMEOUT, Timer::Kill { run: 1 }),
        ]
    );
    assert_eq!(life.status(), ProcessStatus::Stopping);
    life.handle(leader_exited(1, signal(15), vec![], t0), &plain);
    let later = t0 + Duration::from_millis(30);
    let out = life.handle(exited(1, signal(15), later), &plain);
    assert!(out.contains(&Decision::Spawn {
        run: 2,
        attempt: Attempt::Asked
    }));
    assert_eq!(
        life.restart_counts(),
        RestartCounts {
            cron: 1,
            ..RestartCounts::default()
        }
    );
    assert_eq!(life.restarts(), 1);
    let last = life.last_restart().unwrap();
    assert_eq!(
        (last.cause.reason, last.at, last.run),
        (RestartReason::Cron, later, 2)
    );
    let out = life.handle(spawned(2, 200, later), &plain);
    assert_eq!(
        out,
        [Decision::Report(Report {
            pid: Some(200),
            reason: Some("cron 0 3 * * *".into()),
            restart_reason: Some(RestartReason::Cron),
            ..Report::new(EventKind::Started)
        })]
    );
}

#[test]
fn a_trigger_with_a_ready_mode_reloads_the_one_process() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = ready_and_running(t0, &ready);
    let detail = "memory 612 MiB > 512 MiB for 3s";
    let out = life.handle(trigger(RestartReason::Memory, detail, t0), &ready);
    assert_eq!(
        out,
        [Decision::Spawn {
            run: 2,
            attempt: Attempt::Replacement
        }],
        "a replacement beside the current run, nothing stopped"
    );
    let out = life.handle(
        Event::ReplacementSpawned {
            run: 2,
            pid: 200,
            now: t0,
        },
        &ready,
    );
    assert_eq!(
        out[0],
        Decision::Report(Report {
            pid: Some(200),
            reason: Some(detail.into()),
            restart_reason: Some(RestartReason::Memory),
            ..Report::new(EventKind::ReloadStarted)
        })
    );
    assert_eq!(life.restarts(), 0, "not counted before it took over");
    let out = life.handle(Event::Ready { run: 2, now: t0 }, &ready);
    assert!(out.contains(&Decision::Report(Report {
        pid: Some(200),
        reason: Some("replaced pid 100".into()),
        restart_reason: Some(RestartReason::Memory),
        ..Report::new(EventKind::Replaced)
    })));
    assert_eq!(life.restart_counts().memory, 1);
    assert_eq!(life.last_restart().unwrap().cause.detail, detail);
    life.handle(leader_exited(1, signal(15), vec![], t0), &ready);
    let out = life.handle(exited(1, signal(15), t0), &ready);
    assert_eq!(
        out.last(),
        Some(&Decision::Reloaded {
            result: velos_proto::ReloadResult::Replaced,
            new_pid: Some(200),
            reason: None
        })
    );
    assert_eq!((life.pid(), life.second()), (Some(200), None));
}

#[test]
fn triggers_during_a_reload_coalesce_into_one_follow_up() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    // A reload somebody asked for is under way.
    let mut life = replacing(t0, &ready);
    for file in ["a.js", "b.js", "c.js"] {
        let detail = format!("files changed: {file}");
        assert_eq!(
            life.handle(trigger(RestartReason::Watch, &detail, t0), &ready),
            []
        );
    }
    life.handle(Event::Ready { run: 2, now: t0 }, &ready);
    assert_eq!(
        life.restart_counts(),
        RestartCounts {
            manual: 1,
            ..RestartCounts::default()
        },
        "the asked-for reload counts as manual"
    );
    assert_eq!(life.last_restart().unwrap().cause.detail, "reload asked");
    // Still retiring the old run: the follow-up waits.
    life.handle(leader_exited(1, signal(15), vec![], t0), &ready);
    let out = life.handle(exited(1, signal(15), t0), &ready);
    let reloaded = out
        .iter()
        .position(|d| matches!(d, Decision::Reloaded { .. }))
        .unwrap();
    assert_eq!(
        out[reloaded + 1..],
        [Decision::Spawn {
            run: 3,
            attempt: Attempt::Replacement
        }],
        "one follow-up, after the reload"
    );
    life.handle(
        Event::ReplacementSpawned {
            run: 3,
            pid: 300,
            now: t0,
        },
        &ready,
    );
    life.handle(Event::Ready { run: 3, now: t0 }, &ready);
    assert_eq!(life.restart_counts().watch, 1);
    assert_eq!(
        life.last_restart().unwrap().cause,
        Cause::new(RestartReason::Watch, "files changed: c.js"),
        "the latest detail"
    );
}

#[test]
fn a_trigger_after_a_failed_reload_is_still_carried_out() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = replacing(t0, &ready);
    life.handle(
        trigger(RestartReason::Watch, "files changed: a.js", t0),
        &ready,
    );
    life.handle(leader_exited(2, code(1), vec![], t0), &ready);
    let out = life.handle(exited(2, code(1), t0), &ready);
    assert!(out.iter().any(|d| matches!(
        d,
        Decision::Reloaded {
            result: velos_proto::ReloadResult::Failed,
            ..
        }
    )));
    assert_eq!(
        out.last(),
        Some(&Decision::Spawn {
            run: 3,
            attempt: Attempt::Replacement
        }),
        "the change may be the fix"
    );
    assert_eq!(life.pid(), Some(100), "the old run still runs");
}

#[test]
fn a_stop_during_a_triggered_reload_drops_the_trigger() {
    let t0 = Instant::now();
    let ready = with_ready_timeout(Duration::from_secs(30));
    let mut life = ready_and_running(t0, &ready);
    life.handle(trigger(RestartReason::Cron, "cron * * * * *", t0), &ready);
    life.handle(
        Event::ReplacementSpawned {
            run: 2,
            pid: 200,
            now: t0,
        },
        &ready,
    );
    life.handle(trigger(RestartReason::Cron, "cron * * * * *", t0), &ready);
    life.handle(asked(Then::Stop, t0), &ready);
    for run in [2, 1] {
        life.handle(leader_exited(run, signal(15), vec![], t0), &ready);
        let out = life.handle(exited(run, signal(15), t0), &ready);
        assert!(
            !out.iter().any(|d| matches!(d, Decision::Spawn { .. })),
            "{out:?}"
        );
    }
    assert_eq!(life.status(), ProcessStatus::Stopped);
    assert_eq!(life.restarts(), 0);
}

#[test]
fn a_trigger_while_not_running_does_nothing() {
    let t0 = Instant::now();
    let plain = settings(16);
    // Waiting for the backoff: the restart is coming anyway.
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &plain);
    life.handle(exited(1, code(1), t0), &plain);
    assert_eq!(life.status(), ProcessStatus::Waiting);
    assert_eq!(
        life.handle(trigger(RestartReason::Memory, "m", t0), &plain),
        []
    );
    // Stopped: a stopped app is never restarted by a trigger, not even by a file change.
    let mut life = running(t0);
    life.handle(asked(Then::Stop, t0), &plain);
    assert_eq!(
        life.handle(trigger(RestartReason::Cron, "c", t0), &plain),
        []
    );
    life.handle(leader_exited(1, signal(15), vec![], t0), &plain);
    life.handle(exited(1, signal(15), t0), &plain);
    assert_eq!(life.status(), ProcessStatus::Stopped);
    for reason in [
        RestartReason::Cron,
        RestartReason::Watch,
        RestartReason::Memory,
    ] {
        assert_eq!(life.handle(trigger(reason, "x", t0), &plain), []);
    }
    // Errored: only a file change starts it.
    let never = Settings {
        policy: Policy {
            restart: RestartMode::Never,
            ..plain.policy
        },
        ..plain
    };
    let mut life = running(t0);
    life.handle(leader_exited(1, code(1), vec![], t0), &never);
    life.handle(exited(1, code(1), t0), &never);
    assert_eq!(life.status(), ProcessStatus::Errored);
    for reason in [RestartReason::Cron, RestartReason::Memory] {
        assert_eq!(life.handle(trigger(reason, "x", t0), &never), []);
    }
    assert_eq!(life.restarts(), 0);
}

#[test]
fn memory_restarts_of_runs_over_the_limit_from_their_start_give_up_after_max_restarts() {
    let t0 = Instant::now();
    let plain = settings(2);
    let over = |now| Event::Trigger {
        cause: Cause::memory_at_start(
            "memory 60 MiB > 20 MiB for 3s, over it from its start",
            "used 60 MiB from its start, over --max-memory-restart 20 MiB",
        ),
        escaped: Vec::new(),
        now,
    };
    let mut life = running(t0);
    // Two restarts, as max_restarts allows, each a run that lasted long past min_uptime.
    for run in 1..=2u64 {
        let now = t0 + Duration::from_secs(4 * run);
        life.handle(over(now), &plain);
        life.handle(leader_exited(run, signal(15), vec![], now), &plain);
        let out = life.handle(exited(run, signal(15), now), &plain);
        assert!(
            out.contains(&Decision::Spawn {
                run: run + 1,
                attempt: Attempt::Asked
            }),
            "run {run}: {out:?}"
        );
        life.handle(
            Event::Spawned {
                run: run + 1,
                pid: 100 + run as u32,
                now,
            },
            &plain,
        );
    }
    assert_eq!(life.restart_counts().memory, 2);
    // The third: stopped, then errored, saying why and what to do.
    let now = t0 + Duration::from_secs(12);
    let out = life.handle(over(now), &plain);
    assert_eq!(
        out[0],
        Decision::SignalGroup {
            pgid: 102,
            signal: Signal::TERM
        }
    );
    life.handle(leader_exited(3, signal(15), vec![], now), &plain);
    life.handle(exited(3, signal(15), now), &plain);
    assert_eq!(life.status(), ProcessStatus::Errored);
    assert_eq!(
        life.error(),
        Some(
            "used 60 MiB from its start, over --max-memory-restart 20 MiB, 3 runs in a row; \
             not restarting it: raise the limit"
        )
    );
    assert_eq!(life.restarts(), 2);
    // A memory restart of a run that was under the limit once is a trigger's: no count.
    let mut life = running(t0);
    for run in 1..=3u64 {
        let now = t0 + Duration::from_secs(4 * run);
        life.handle(trigger(RestartReason::Memory, "m", now), &plain);
        life.handle(leader_exited(run, signal(15), vec![], now), &plain);
        life.handle(exited(run, signal(15), now), &plain);
        let spawned = Event::Spawned {
            run: run + 1,
            pid: 100 + run as u32,
            now,
        };
        life.handle(spawned, &plain);
    }
    assert_eq!(life.status(), ProcessStatus::Running);
    assert_eq!(life.restarts(), 3);
}

#[test]
fn a_file_change_starts_an_errored_process() {
    let t0 = Instant::now();
    let plain = settings(2);
    let mut life = running(t0);
    // Three quick failures in a row: velos gave up.
    for number in 1..=3 {
        life.handle(leader_exited(number, code(1), vec![], t0), &plain);
        life.handle(exited(number, code(1), t0), &plain);
        if number < 3 {
            life.handle(Event::RestartDue { run: number }, &plain);
            life.handle(spawned(number + 1, 100 + number as u32, t0), &plain);
        }
    }
    assert_eq!(life.status(), ProcessStatus::Errored);
    let out = life.handle(
        trigger(RestartReason::Watch, "files changed: app.js", t0),
        &plain,
    );
    assert_eq!(
        out,
        [Decision::Spawn {
            run: 4,
            attempt: Attempt::Asked
        }]
    );
    assert_eq!(
        life.restart_counts(),
        RestartCounts {
            crash: 2,
            watch: 1,
            ..RestartCounts::default()
        }
    );
    assert_eq!(life.quick_failures, 0, "a fresh start");
    let out = life.handle(spawned(4, 400, t0), &plain);
    assert!(matches!(
        &out[0],
        Decision::Report(Report {
            restart_reason: Some(RestartReason::Watch),
            ..
        })
    ));
    assert_eq!(life.status(), ProcessStatus::Running);
}

#[test]
fn a_trigger_during_a_restart_joins_it() {
    let t0 = Instant::now();
    let plain = settings(16);
    let mut life = running(t0);
    life.handle(asked(Then::Restart, t0), &plain);
    assert_eq!(
        life.handle(trigger(RestartReason::Watch, "w", t0), &plain),
        []
    );
    life.handle(leader_exited(1, signal(15), vec![], t0), &plain);
    let out = life.handle(exited(1, signal(15), t0), &plain);
    let spawns = out
        .iter()
        .filter(|d| matches!(d, Decision::Spawn { .. }))
        .count();
    assert_eq!(spawns, 1, "one restart: the new run sees the change");
    assert_eq!(
        life.restart_counts(),
        RestartCounts {
            manual: 1,
            ..RestartCounts::default()
        }
    );
    assert_eq!(life.last_restart().unwrap().cause.detail, "restart asked");
}

#[test]
fn a_triggers_restart_is_not_a_crash_for_the_backoff() {
    let t0 = Instant::now();
    let plain = settings(16);
    let mut life = running(t0);
    // One quick failure, restarted.
    life.handle(leader_exited(1, code(1), vec![], t0), &plain);
    life.handle(exited(1, code(1), t0), &plain);
    life.handle(Event::RestartDue { run: 1 }, &plain);
    life.handle(spawned(2, 200, t0), &plain);
    assert_eq!(life.quick_failures, 1);
    // A memory restart: not a failure, nor a success that resets the count.
    life.handle(trigger(RestartReason::Memory, "m", t0), &plain);
    life.handle(leader_exited(2, signal(15), vec![], t0), &plain);
    life.handle(exited(2, signal(15), t0), &plain);
    assert_eq!(life.quick_failures, 1);
    life.handle(spawned(3, 300, t0), &plain);
    // The next quick failure is the second in a row: 200 ms, not 400 ms.
    life.handle(leader_exited(3, code(1), vec![], t0), &plain);
    let out = life.handle(exited(3, code(1), t0), &plain);
    assert!(out.contains(&arm(
        t0 + Duration::from_millis(200),
        Timer::Restart { run: 3 }
    )));
    assert_eq!(
        life.restart_counts(),
        RestartCounts {
            crash: 1,
            memory: 1,
            ..RestartCounts::default()
        }
    );
}

#[test]
fn a_restart_somebody_asked_for_counts_as_manual() {
    let t0 = Instant::now();
    let plain = settings(16);
    let mut life = running(t0);
    life.handle(asked(Then::Restart, t0), &plain);
    life.handle(leader_exited(1, signal(15), vec![], t0), &plain);
    life.handle(exited(1, signal(15), t0), &plain);
    assert_eq!(life.restart_counts().manual, 1);
    // A first start of a process never started is no restart.
    let mut fresh = Lifecycle::new();
    fresh.handle(asked(Then::Restart, t0), &plain);
    assert_eq!(fresh.restarts(), 0);
    assert_eq!(fresh.last_restart(), None);
}

#[test]
fn with_restart_always_an_exit_0_is_restarted_and_a_stop_exit_code_is_a_stop() {
    let t0 = Instant::now();
    let always = Settings {
        policy: Policy {
            restart: RestartMode::Always,
            ..settings(16).policy
        },
        stop_exit_codes: &[3],
        ..settings(16)
    };
    let mut life = running(t0);
    life.handle(leader_exited(1, code(0), vec![], t0), &always);
    let out = life.handle(exited(1, code(0), t0), &always);
    assert!(out.contains(&arm(
        t0 + Duration::from_millis(100),
        Timer::Restart { run: 1 }
    )));
    assert_eq!(life.status(), ProcessStatus::Waiting);
    life.handle(Event::RestartDue { run: 1 }, &always);
    assert_eq!(
        life.last_restart().unwrap().cause,
        Cause::new(RestartReason::Crash, "exited with code 0")
    );
    life.handle(spawned(2, 200, t0), &always);
    life.handle(leader_exited(2, code(3), vec![], t0), &always);
    let out = life.handle(exited(2, code(3), t0), &always);
    assert_eq!(
        out,
        [exit_report(200, code(3))],
        "a clean stop: nothing armed"
    );
    assert_eq!(life.status(), ProcessStatus::Stopped);
}

/// `settings(16)` in watch mode.
fn watched() -> Settings<'static> {
    let mut settings = settings(16);
    settings.policy.watch = true;
    settings
}

#[test]
fn a_watched_process_that_crashes_on_start_waits_for_a_change_without_a_timer() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let soon = t0 + Duration::from_millis(50);
    life.handle(leader_exited(1, code(1), vec![], soon), &watched());
    let out = life.handle(exited(1, code(1), soon), &watched());
    let reason = "exited with code 1 within 1s of starting; waiting for a file change \
                  (watch) (see 'velos logs api')";
    assert_eq!(
        out,
        [
            exit_report(100, code(1)),
            Decision::Report(Report {
                reason: Some(reason.to_owned()),
                ..Report::new(EventKind::Errored)
            }),
        ],
        "errored at once: no restart timer"
    );
    assert_eq!(life.status(), ProcessStatus::Errored);
    assert_eq!(life.error(), Some(reason));
    assert_eq!(life.restarts(), 0);
    // The next change starts it again.
    let out = life.handle(
        trigger(RestartReason::Watch, "files changed: a.js", soon),
        &watched(),
    );
    assert_eq!(
        out,
        [Decision::Spawn {
            run: 2,
            attempt: Attempt::Asked
        }]
    );
}

#[test]
fn a_watched_process_that_crashes_after_min_uptime_is_restarted_as_usual() {
    let t0 = Instant::now();
    let mut life = running(t0);
    let later = t0 + MIN_UPTIME * 5;
    life.handle(leader_exited(1, code(1), vec![], later), &watched());
    let out = life.handle(exited(1, code(1), later), &watched());
    assert!(
        out.contains(&arm(
            later + Duration::from_millis(100),
            Timer::Restart { run: 1 },
        )),
        "{out:?}"
    );
    assert_eq!(life.status(), ProcessStatus::Waiting);
}

#[test]
fn a_watched_restart_that_cannot_spawn_waits_for_a_change() {
    let t0 = Instant::now();
    let mut life = Lifecycle::new();
    life.handle(
        Event::SpawnFailed {
            attempt: Attempt::Automatic,
            reason: "no such file".into(),
            now: t0,
        },
        &watched(),
    );
    assert_eq!(life.status(), ProcessStatus::Errored);
    assert_eq!(
        life.error(),
        Some("could not be started: no such file; waiting for a file change (watch)")
    );
}
