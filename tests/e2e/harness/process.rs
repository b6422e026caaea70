//! Looking at processes from outside: alive or gone, process groups, signals. On Linux this
//! reads `/proc`, where a zombie counts as gone (it has exited; only its parent's reaping is
//! left) and a process's environment tells whose test it belongs to.

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

    /// Whether `pid`'s environment holds exactly `entry` (`KEY=value`).
    pub fn has_env(pid: i32, entry: &[u8]) -> bool {
        fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|environ| environ.split(|&byte| byte == 0).any(|item| item == entry))
    }
}
