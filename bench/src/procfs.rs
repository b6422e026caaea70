//! What `/proc` says about a daemon: resident memory, CPU time, context switches, and which
//! processes carry a given environment variable (for cleanup).
//!
//! Linux only: the figures are read from `/proc/<pid>/status` (`VmRSS`, `VmHWM`, per-thread
//! `voluntary_ctxt_switches`) and `/proc/<pid>/stat` (`utime`, `stime`, `pgrp`). On other
//! systems every reading fails with an error, and the benchmark says so.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};

/// Clock ticks per second in `/proc/<pid>/stat`. This is the kernel's `USER_HZ`, which is
/// 100 on every architecture Linux exports to user space (it is independent of the
/// scheduler's `HZ`).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory now (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// The peak resident memory of the process's life (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// CPU time used so far, user plus system, in clock ticks (all threads).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let text = read(&format!("/proc/{pid}/stat"))?;
    let stat = parse_stat(&text).with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(stat.utime + stat.stime)
}

/// Context switches so far of each thread (by thread id), voluntary and not: each is a
/// wake-up or a preemption, so an idle daemon that never wakes adds none.
pub fn context_switches(pid: u32) -> Result<BTreeMap<u32, u64>> {
    let tasks = format!("/proc/{pid}/task");
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(&tasks).with_context(|| format!("listing {tasks}"))? {
        let task = task?;
        let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        let switches = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
            .iter()
            .map(|key| status_field(&text, key).unwrap_or(0))
            .sum();
        threads.insert(tid, switches);
    }
    Ok(threads)
}

/// Context switches between two [`context_switches`] readings. A thread that ended in
/// between took its count with it but ran at least once to end; a new thread counts whole.
pub fn switches_between(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> u64 {
    let grown: u64 = after
        .iter()
        .map(|(tid, &now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let ended = before.keys().filter(|tid| !after.contains_key(tid)).count() as u64;
    grown + ended
}

/// Whether `pid` is still there (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match read(&format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text).is_ok_and(|stat| stat.state != 'Z'),
        Err(_) => false,
    }
}

/// The process's command name (`comm`), like `sleep`.
pub fn command_name(pid: u32) -> Option<String> {
    read(&format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_owned())
}

/// Every process whose initial environment holds `entry` (`NAME=value`), with its process
/// group. Processes of other users cannot be read and are not ours anyway.
pub fn carrying(entry: &str) -> Vec<(u32, u32)> {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    with_variable(name)
        .into_iter()
        .filter(|process| process.value == value)
        .map(|process| (process.pid, process.pgid))
        .collect()
}

/// A process that has a given environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    /// Its pid.
    pub pid: u32,
    /// Its process group.
    pub pgid: u32,
    /// The variable's value.
    pub value: String,
}

/// Every process (but this one) whose initial environment sets `name`.
pub fn with_variable(name: &str) -> Vec<Marked> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let Some(value) = variable(&environ, name) else {
            continue;
        };
        let pgid = read(&format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|text| parse_stat(&text).ok())
            .map_or(0, |stat| stat.pgrp);
        found.push(Marked { pid, pgid, value });
    }
    found
}

/// The value of `name` in a NUL-separated environment block.
fn variable(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|&byte| byte == 0).find_map(|item| {
        let value = item.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// Whether `pid`'s initial environment holds `entry` (`NAME=value`).
pub fn carrying_pid(pid: u32, entry: &str) -> bool {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| variable(&environ, name).as_deref() == Some(value))
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(Path::new(path)).with_context(|| format!("reading {path}"))
}

fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    status_field(&text, key).ok_or_else(|| anyhow!("no {key} in {path}"))
}

/// The number after `key` in a `/proc/<pid>/status` text (`VmRSS:   1234 kB` -> 1234).
fn status_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// The fields of `/proc/<pid>/stat` the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: u32,
    utime: u64,
    stime: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Result<Stat> {
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("no ')' in stat"))?;
    // After the name: state is field 3, pgrp 5, utime 14, stime 15 (1-based).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<&str> {
        fields
            .get(n - 3)
            .copied()
            .ok_or_else(|| anyhow!("stat has no field {n}"))
    };
    let number = |n: usize| -> Result<u64> {
        field(n)?
            .parse()
            .with_context(|| format!("stat field {n} is not a number"))
    };
    Ok(Stat {
        state: field(3)?.chars().next().unwrap_or('?'),
        pgrp: u32::try_from(number(5)?)?,
        utime: number(14)?,
        stime: number(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_key() {
        let text = "Name:\tvelosd\nVmHWM:\t    2100 kB\nVmRSS:\t    1876 kB\n";
        assert_eq!(status_field(text, "VmRSS:"), Some(1876));
        assert_eq!(status_field(text, "VmHWM:"), Some(2100));
        assert_eq!(status_field(text, "VmSwap:"), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 2 0\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                pgrp: 4242,
                utime: 7,
                stime: 3
            }
        );
    }

    #[test]
    fn environment_variables_match_by_whole_name() {
        let environ = b"PATH=/bin\0VELOS_BENCH_MARK=1:/tmp/vb-1\0MARK=x\0";
        assert_eq!(
            variable(environ, "VELOS_BENCH_MARK").as_deref(),
            Some("1:/tmp/vb-1")
        );
        assert_eq!(variable(environ, "MARK").as_deref(), Some("x"));
        assert_eq!(variable(environ, "VELOS_BENCH"), None);
    }

    #[test]
    fn switches_count_grown_new_and_ended_threads() {
        let before = BTreeMap::from([(1, 10), (2, 5), (3, 7)]);
        let after = BTreeMap::from([(1, 12), (2, 5), (4, 3)]);
        // 2 more on thread 1, thread 3 ended (1), thread 4 is new (3).
        assert_eq!(switches_between(&before, &after), 6);
        assert_eq!(switches_between(&after, &after), 0);
    }

    #[test]
    fn a_short_stat_line_is_an_error() {
        assert!(parse_stat("12 (x) S 1 2").is_err());
        assert!(parse_stat("no parenthesis").is_err());
    }

    #[test]
    fn this_process_can_be_read() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(peak_rss_bytes(pid).unwrap() >= rss_bytes(pid).unwrap() / 2);
        cpu_ticks(pid).unwrap();
        assert!(!context_switches(pid).unwrap().is_empty());
        assert!(alive(pid));
    }
}
