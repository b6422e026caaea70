//! Looking at processes from outside: alive or gone, process groups, signals, wake-ups. On
//! Linux this reads `/proc`, where a zombie counts as gone (it has exited; only its parent's
//! reaping is left), a process's environment tells whose test it belongs to, and its
//! threads' context switches tell whether it woke up.

#[cfg(target_os = "linux")]
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::{WAIT, wait_until};

/// Whether `pid` is a live process (a zombie counts as gone: it has exited).
pub fn pid_alive(pid: i32) -> bool {
    let Some(raw) = Pid::from_raw(pid) else {
        return false;
    };
    if rustix::process::test_kill_process(raw).is_err() {
        return false;
    }
    #[cfg(target_os = "linux")]
    if linux::is_zombie(pid) {
        return false;
    }
    true
}

/// The live pids whose process group is `pgid`.
#[cfg(target_os = "linux")]
pub fn group_members(pgid: i32) -> Vec<i32> {
    linux::group_members(pgid)
        .into_iter()
        .filter(|&pid| pid_alive(pid))
        .collect()
}

/// Live processes whose environment holds exactly `entry` (`KEY=value`).
#[cfg(target_os = "linux")]
pub fn with_env(entry: &[u8]) -> Vec<i32> {
    linux::pids()
        .into_iter()
        .filter(|&pid| pid_alive(pid) && linux::has_env(pid, entry))
        .collect()
}

/// How many times the threads of `pid` woke up (or were preempted) over `window`, from
/// their context switches: a thread that sleeps until something happens adds none. A
/// thread that ended meanwhile counts once (it ran to end), a new one with all it has.
#[cfg(target_os = "linux")]
pub fn wakeups_over(pid: i32, window: Duration) -> u64 {
    let before = linux::thread_switches(pid);
    std::thread::sleep(window);
    let after = linux::thread_switches(pid);
    let grown: u64 = after
        .iter()
        .map(|(tid, &now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let ended = before.keys().filter(|tid| !after.contains_key(tid)).count();
    grown + ended as u64
}

/// Waits (within [`WAIT`]) until `pid` sleeps through a whole `quiet` window: whatever
/// it was doing is over. A process that wakes up on a timer more often than that never
/// gets there, and the wait fails.
#[cfg(target_os = "linux")]
#[track_caller]
pub fn wait_idle(pid: i32, quiet: Duration, what: &str) {
    wait_until(WAIT, what, || match wakeups_over(pid, quiet) {
        0 => Ok(()),
        woken => Err(format!("{woken} wake-ups in {quiet:?}")),
    });
}

/// Sends `signal` to the process group `pgid`, ignoring errors (it may be gone already).
#[cfg(not(target_os = "linux"))]
pub fn signal_group(pgid: i32, signal: Signal) {
    if let Some(pgid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

/// Waits until `pid` is gone.
#[track_caller]
pub fn wait_gone(pid: i32, what: &str) {
    wait_until(WAIT, &format!("{what} (pid {pid}) to be gone"), || {
        !pid_alive(pid)
    });
}

/// Sends `signal` to `pid`, ignoring errors (it may be gone already).
pub fn signal_pid(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Process inspection through `/proc`.
#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::fs;

    /// Every pid in `/proc`.
    pub fn pids() -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, ...
    fn stat_fields(pid: i32) -> Option<Vec<String>> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may itself hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        Some(rest.split_whitespace().map(str::to_owned).collect())
    }

    pub fn is_zombie(pid: i32) -> bool {
        stat_fields(pid)
            .is_some_and(|fields| matches!(fields.first().map(String::as_str), Some("Z" | "X")))
    }

    /// The pids whose process group is `pgid`.
    pub fn group_members(pgid: i32) -> Vec<i32> {
        pids()
            .into_iter()
            .filter(|&pid| {
                stat_fields(pid)
                    .and_then(|fields| fields.get(2)?.parse::<i32>().ok())
                    .is_some_and(|group| group == pgid)
            })
            .collect()
    }

    /// Context switches so far (voluntary and not) of each thread of `pid`, by thread id.
    pub fn thread_switches(pid: i32) -> BTreeMap<i32, u64> {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            return BTreeMap::new();
        };
        tasks
            .flatten()
            .filter_map(|task| {
                let tid = task.file_name().to_str()?.parse().ok()?;
                // A thread that ended meanwhile has no status left.
                let status = fs::read_to_string(task.path().join("status")).ok()?;
                let switches = status
                    .lines()
                    .filter(|line| line.contains("ctxt_switches:"))
                    .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum();
                Some((tid, switches))
            })
            .collect()
    }

    /// Whether `pid`'s environment holds exactly `entry` (`KEY=value`).
    pub fn has_env(pid: i32, entry: &[u8]) -> bool {
        fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ.split(|&byte| byte == 0).any(|item| item == entry))
    }
}
