//! CPU time and resident memory of a process tree, from `/proc` (Linux).
//!
//! A run's figures are its whole tree's: the leader, its descendants (found through
//! `/proc/<pid>/task/<tid>/children`, which holds the group members and anything they
//! started) and the run's escaped descendants the caller names. Each process costs one
//! small read of `/proc/<pid>/stat`, which has both figures, and one of its children
//! lists. CPU time counts the children a member has reaped too (`cutime`, `cstime`), so
//! the total does not drop when a short-lived child ends. Elsewhere there is no `/proc`,
//! and the figures are absent.

use std::time::Duration;

/// What one read of `/proc/<pid>/stat` says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident memory.
    pub rss_bytes: u64,
}

/// At most this many processes are summed for one run (a fork bomb stays cheap to sample).
const MAX_TREE: usize = 4096;

/// Samples `roots` and all their descendants, summed; `None` when the first root is gone
/// or this system has no `/proc`.
pub fn sample_tree(roots: &[u32]) -> Option<Sample> {
    let first = *roots.first()?;
    let mut total = sample(first)?;
    for pid in tree(roots).into_iter().filter(|&pid| pid != first) {
        if let Some(sample) = sample(pid) {
            total.cpu += sample.cpu;
            total.rss_bytes += sample.rss_bytes;
        }
    }
    Some(total)
}

/// `roots` and their descendants, each once, at most [`MAX_TREE`].
#[cfg(any(target_os = "linux", target_os = "android"))]
fn tree(roots: &[u32]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<u32> = roots.to_vec();
    let mut found = Vec::new();
    while let Some(pid) = pending.pop() {
        if found.len() >= MAX_TREE {
            break;
        }
        if !seen.insert(pid) {
            continue;
        }
        found.push(pid);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                pending.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
    }
    found
}

/// No `/proc`: only the roots.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn tree(roots: &[u32]) -> Vec<u32> {
    roots.to_vec()
}

/// Whether `pid` runs a program of its own: a child between fork and exec still runs
/// the daemon's binary, and its figures are the daemon's, not the program's.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn has_exec(pid: u32) -> bool {
    let theirs = std::fs::read_link(format!("/proc/{pid}/exe"));
    let ours = std::fs::read_link("/proc/self/exe");
    match (theirs, ours) {
        (Ok(theirs), Ok(ours)) => theirs != ours,
        // Unreadable: not ours to judge (gone, or a kernel thread); the sample decides.
        _ => true,
    }
}

/// No `/proc`: nothing to tell.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn has_exec(_pid: u32) -> bool {
    true
}

/// Where a process stands in the tree, from the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its process group.
    pub pgid: u32,
    /// Its session.
    pub session: u32,
    /// When it started, in clock ticks since boot: with the boot, what tells a process
    /// from a later one that got the same pid.
    pub start_ticks: u64,
    /// Exited, not yet collected by its parent.
    pub zombie: bool,
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): start times count from the boot.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn boot_id() -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|id| id.trim().to_owned())
        })
        .clone()
}

/// No `/proc`: no boot id.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn boot_id() -> Option<String> {
    None
}

/// Samples `pid`, if it exists and this system has `/proc`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn sample(pid: u32) -> Option<Sample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(
        &text,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
    )
}

/// The group and state of `pid`, if it exists and this system has `/proc`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn status(pid: u32) -> Option<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_status(&text)
}

/// No `/proc`: nothing known.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn status(_pid: u32) -> Option<Status> {
    None
}

/// Reads state (field 3), pgrp (field 5), session (field 6) and starttime (field 22).
fn parse_status(stat: &str) -> Option<Status> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(Status {
        pgid: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
        zombie: matches!(*fields.first()?, "Z" | "X"),
    })
}

/// No `/proc` here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn sample(_pid: u32) -> Option<Sample> {
    None
}

/// Reads utime, stime, cutime and cstime (fields 14 to 17, in clock ticks) and rss
/// (field 24, in pages).
/// The command name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse(stat: &str, ticks_per_second: u64, page_size: u64) -> Option<Sample> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts with field 3 (state).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // cutime and cstime are signed in the kernel's format; negative never happens.
    let ticks = field(14)? + field(15)? + field(16).unwrap_or(0) + field(17).unwrap_or(0);
    let cpu = Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64);
    Some(Sample {
        cpu,
        rss_bytes: field(24)? * page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let stat = "42 (my (odd) app) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 60 40 20 0 1 0 \
                    1000 10000000 300 18446744073709551615";
        let sample = parse(stat, 100, 4096).unwrap();
        assert_eq!(sample.cpu, Duration::from_secs(4));
        assert_eq!(sample.rss_bytes, 300 * 4096);
        assert_eq!(parse("garbage", 100, 4096), None);
        assert_eq!(
            parse_status(stat),
            Some(Status {
                pgid: 42,
                session: 42,
                start_ticks: 1000,
                zombie: false
            })
        );
        let zombie = "7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert_eq!(parse_status(zombie).map(|s| s.zombie), Some(true));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_process_has_figures() {
        let sample = sample(std::process::id()).unwrap();
        assert!(sample.rss_bytes > 0);
        assert!(!has_exec(std::process::id()), "we run our own binary");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_tree_counts_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(tree(&[me]).contains(&child.id()));
        let child_alone = sample(child.id()).unwrap().rss_bytes;
        let with_child = sample_tree(&[me]).unwrap().rss_bytes;
        assert!(with_child > child_alone, "{with_child} <= {child_alone}");
        assert!(has_exec(child.id()) || sample(child.id()).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
