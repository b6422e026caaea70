//! The restart policy and the verdicts on how a run ended: when a failure is restarted
//! and after what delay, when velos gives up, what an exit means, and why a run that
//! left processes behind is reported. Pure functions.

use std::time::Duration;

use velos_proto::{ProcessStatus, RestartMode};

use super::Exit;

/// When velos restarts a process that failed: the settings of its restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Which exits are restarted.
    pub restart: RestartMode,
    /// Quick failures in a row before giving up.
    pub max_restarts: u32,
    /// How long a run must last to count as a success (and reset the backoff).
    pub min_uptime: Duration,
    /// Watched (`--watch`): a quick failure waits for a file change instead of the
    /// backoff, and errored always means "until the next change".
    pub watch: bool,
}

/// What the restart policy says about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No automatic restarts: stay errored.
    Never,
    /// Restart after this delay.
    RestartIn(Duration),
    /// Too many quick failures in a row: stay errored.
    GiveUp,
    /// Watched, and it failed within `min_uptime` of starting: restarting it would fail
    /// the same way until its files change, so it stays errored until they do.
    AwaitChange,
}

impl Policy {
    /// The verdict on a failure of a run that lasted `lasted`, and the count of quick
    /// failures in a row after it (`quick_failures` before it). A run that lasted
    /// `min_uptime` starts the count afresh.
    pub fn judge(&self, quick_failures: u32, lasted: Duration) -> (Verdict, u32) {
        if matches!(self.restart, RestartMode::Never | RestartMode::Unknown) {
            return (Verdict::Never, quick_failures);
        }
        let quick = lasted < self.min_uptime;
        let failures = if quick {
            quick_failures.saturating_add(1)
        } else {
            1
        };
        if self.watch && quick {
            (Verdict::AwaitChange, failures)
        } else if failures > self.max_restarts {
            (Verdict::GiveUp, failures)
        } else {
            (Verdict::RestartIn(backoff(failures)), failures)
        }
    }
}

/// The delay before automatic restart number `failures` (1, 2, ...) in a row: 100 ms,
/// doubling, at most 15 s.
pub fn backoff(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(15);
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(CAP)
}

/// What the lifecycle reads of a process's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// Its name, for messages.
    pub name: &'a str,
    /// Time between the stop signal and SIGKILL.
    pub kill_timeout: Duration,
    /// The stop signal.
    pub kill_signal: rustix::process::Signal,
    /// The restart policy.
    pub policy: Policy,
    /// How long it may take to be ready, when it has a ready mode (without one it is
    /// `running` from its spawn).
    pub ready_timeout: Option<Duration>,
    /// Exit codes that are a clean stop, never restarted.
    pub stop_exit_codes: &'a [u8],
}

/// What an exit nobody asked for is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// A clean stop: `stopped`, not restarted.
    Stop,
    /// For the restart policy: restarted after the backoff (or left `errored`).
    Restart,
}

impl Settings<'_> {
    /// What an exit nobody asked for is: one of the stop exit codes is a stop; exit code
    /// 0 is a stop, except with `restart = always`; anything else goes to the restart
    /// policy.
    pub fn exit_kind(&self, exit: Exit) -> ExitKind {
        let code = exit.code.and_then(|code| u8::try_from(code).ok());
        if code.is_some_and(|code| self.stop_exit_codes.contains(&code)) {
            return ExitKind::Stop;
        }
        if self.policy.restart != RestartMode::Always
            && status_after_exit(ProcessStatus::Running, exit) == ProcessStatus::Stopped
        {
            return ExitKind::Stop;
        }
        ExitKind::Restart
    }
}

/// The status after a run ended: asked-for stops and exit code 0 are `stopped`; a
/// non-zero code or a signal nobody asked for is `errored`.
pub fn status_after_exit(before: ProcessStatus, exit: Exit) -> ProcessStatus {
    let asked_to_stop = before == ProcessStatus::Stopping;
    match exit {
        Exit { code: Some(0), .. } => ProcessStatus::Stopped,
        Exit {
            signal: Some(_), ..
        } if asked_to_stop => ProcessStatus::Stopped,
        // A program that exits non-zero on SIGTERM (node's default is 143) was still
        // stopped because the user asked.
        Exit { code: Some(_), .. } if asked_to_stop => ProcessStatus::Stopped,
        _ => ProcessStatus::Errored,
    }
}

/// Whether a run that left `left` behind daemonized itself: it exited 0 and something
/// it started runs on. Restarting it would only do the same again.
pub fn daemonized(exit: Exit, left: &[u32]) -> bool {
    exit.code == Some(0) && !left.is_empty()
}

/// Why a run that left processes behind is reported: what it left, and, for a program
/// that daemonized itself, what to do.
pub fn left_behind_reason(exit: Exit, left: &[u32]) -> String {
    let how = match exit {
        Exit { code: Some(0), .. } => "exited 0".to_owned(),
        Exit {
            code: Some(code), ..
        } => format!("exited with code {code}"),
        Exit {
            signal: Some(signal),
            ..
        } => format!("was killed by signal {signal}"),
        _ => "ended".to_owned(),
    };
    const SHOWN: usize = 5;
    let mut pids: Vec<String> = left.iter().take(SHOWN).map(u32::to_string).collect();
    if left.len() > SHOWN {
        pids.push("...".to_owned());
    }
    let (processes, pid_word) = if left.len() == 1 {
        ("1 process".to_owned(), "pid")
    } else {
        (format!("{} processes", left.len()), "pids")
    };
    let mut reason = format!(
        "{how} and left {processes} running ({pid_word} {}), which velos ended",
        pids.join(", ")
    );
    if daemonized(exit, left) {
        reason.push_str(
            ": the program daemonizes itself; run it in the foreground \
             (redis: --daemonize no, nginx: daemon off)",
        );
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn which_exits_are_restarted_depends_on_the_mode_and_the_stop_exit_codes() {
        let settings = |restart, stop_exit_codes| Settings {
            name: "api",
            kill_timeout: Duration::from_secs(5),
            kill_signal: rustix::process::Signal::TERM,
            policy: Policy {
                restart,
                max_restarts: 16,
                min_uptime: Duration::from_secs(1),
                watch: false,
            },
            ready_timeout: None,
            stop_exit_codes,
        };
        use ExitKind::{Restart, Stop};
        use RestartMode::{Always, Never, OnFailure};
        let cases = [
            (OnFailure, &[][..], code(0), Stop),
            (OnFailure, &[], code(1), Restart),
            (OnFailure, &[], signal(9), Restart),
            (Always, &[], code(0), Restart),
            (Always, &[0], code(0), Stop),
            (OnFailure, &[3, 4], code(3), Stop),
            (OnFailure, &[3, 4], code(5), Restart),
            (Always, &[3], code(3), Stop),
            (Never, &[3], code(3), Stop),
            // Never: the policy leaves it errored.
            (Never, &[], code(1), Restart),
        ];
        for (mode, codes, exit, kind) in cases {
            assert_eq!(
                settings(mode, codes).exit_kind(exit),
                kind,
                "{mode} {codes:?} {exit:?}"
            );
        }
        let never = Policy {
            restart: Never,
            max_restarts: 16,
            min_uptime: Duration::from_secs(1),
            watch: false,
        };
        assert_eq!(never.judge(0, Duration::ZERO).0, Verdict::Never);
    }

    #[test]
    fn backoff_starts_at_100ms_doubles_and_caps_at_15s() {
        let delays: Vec<Duration> = (1..=10).map(backoff).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000].map(Duration::from_millis)
        );
        assert_eq!(backoff(u32::MAX), Duration::from_secs(15));
    }

    #[test]
    fn a_watched_quick_failure_waits_for_a_change_and_a_later_one_is_restarted() {
        let policy = Policy {
            restart: RestartMode::OnFailure,
            max_restarts: 16,
            min_uptime: Duration::from_secs(1),
            watch: true,
        };
        let quick = Duration::from_millis(50);
        assert_eq!(policy.judge(0, quick), (Verdict::AwaitChange, 1));
        assert_eq!(policy.judge(5, quick), (Verdict::AwaitChange, 6));
        let lasted = Duration::from_secs(10);
        assert_eq!(
            policy.judge(5, lasted),
            (Verdict::RestartIn(Duration::from_millis(100)), 1)
        );
        let unwatched = Policy {
            watch: false,
            ..policy
        };
        assert_eq!(
            unwatched.judge(0, quick),
            (Verdict::RestartIn(Duration::from_millis(100)), 1)
        );
        let never = Policy {
            restart: RestartMode::Never,
            ..policy
        };
        assert_eq!(never.judge(0, quick), (Verdict::Never, 0));
    }

    #[test]
    fn exit_statuses_follow_the_contract() {
        use ProcessStatus::*;
        assert_eq!(status_after_exit(Running, code(0)), Stopped);
        assert_eq!(status_after_exit(Running, code(3)), Errored);
        assert_eq!(status_after_exit(Running, signal(9)), Errored);
        assert_eq!(status_after_exit(Stopping, signal(15)), Stopped);
        assert_eq!(status_after_exit(Stopping, signal(9)), Stopped);
        assert_eq!(status_after_exit(Stopping, code(143)), Stopped);
    }

    #[test]
    fn leftovers_are_named_and_a_daemonizing_program_is_told_what_to_do() {
        assert!(daemonized(code(0), &[9]));
        assert!(!daemonized(code(1), &[9]));
        assert!(!daemonized(code(0), &[]));
        assert_eq!(
            left_behind_reason(code(0), &[41]),
            "exited 0 and left 1 process running (pid 41), which velos ended: the program \
             daemonizes itself; run it in the foreground (redis: --daemonize no, nginx: daemon off)"
        );
        assert_eq!(
            left_behind_reason(code(3), &[1, 2, 3, 4, 5, 6]),
            "exited with code 3 and left 6 processes running (pids 1, 2, 3, 4, 5, ...), \
             which velos ended"
        );
    }
}
