//! What Linux tells through `/proc`: children, environments, executables, start times,
//! CPU and memory figures, and kernel limits. Every reader returns nothing (`None`, an
//! empty list) for a process that is gone or not ours to read: callers treat both alike.

use std::time::Duration;

use crate::procstat::{Sample, Status};

/// The children of `pid` (of every thread of it), from `/proc/<pid>/task/*/children`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
    }
    pids
}

/// Every process's pid, from the numbered entries of `/proc`.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The environment of `pid` as the kernel keeps it: `NAME=value` entries, each ended by
/// a NUL. Empty for a moment after exec, until the kernel has set it up.
pub fn environ(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// Whether `pid` runs a program of its own: a child between fork and exec still runs
/// the daemon's binary, and its figures are the daemon's, not the program's.
pub fn has_exec(pid: u32) -> bool {
    let theirs = std::fs::read_link(format!("/proc/{pid}/exe"));
    let ours = std::fs::read_link("/proc/self/exe");
    match (theirs, ours) {
        (Ok(theirs), Ok(ours)) => theirs != ours,
        // Unreadable: not ours to judge (gone, or a kernel thread); the sample decides.
        _ => true,
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): start times count from the boot.
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

/// CPU time and resident memory of `pid` alone, from `/proc/<pid>/stat`.
pub fn sample(pid: u32) -> Option<Sample> {
    let text = read_stat(pid)?;
    parse_sample(
        &text,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
    )
}

/// The group, session, start time and state of `pid`, from `/proc/<pid>/stat`.
pub fn status(pid: u32) -> Option<Status> {
    parse_status(&read_stat(pid)?)
}

/// `/proc/<pid>/stat`. The file has no size, so `read_to_string` would stat it and grow
/// its buffer from 32 bytes, a read each time (six for a line of 300 bytes): this reads
/// into a buffer that holds any such line, until the end.
fn read_stat(pid: u32) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut text = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(text).ok()
}

/// Used where the hard limit of open files is "unlimited", which the kernel refuses as a
/// soft limit, and `fs.nr_open` cannot be read.
const NR_OPEN_FALLBACK: u64 = 1 << 20;

/// The most open files the kernel allows a process (`fs.nr_open`).
pub fn max_open_files() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(NR_OPEN_FALLBACK)
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

/// Reads utime, stime, cutime and cstime (fields 14 to 17, in clock ticks) and rss
/// (field 24, in pages).
/// The command name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_sample(stat: &str, ticks_per_second: u64, page_size: u64) -> Option<Sample> {
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
        let sample = parse_sample(stat, 100, 4096).unwrap();
        assert_eq!(sample.cpu, Duration::from_secs(4));
        assert_eq!(sample.rss_bytes, 300 * 4096);
        assert_eq!(parse_sample("garbage", 100, 4096), None);
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

    #[test]
    fn our_own_process_has_figures() {
        let sample = sample(std::process::id()).unwrap();
        assert!(sample.rss_bytes > 0);
        assert!(!has_exec(std::process::id()), "we run our own binary");
    }

    #[test]
    fn a_tree_counts_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        assert!(children(me).contains(&child.id()));
        let child_alone = sample(child.id()).unwrap().rss_bytes;
        let with_child = crate::procstat::sample_tree(&[me]).unwrap().rss_bytes;
        assert!(with_child > child_alone, "{with_child} <= {child_alone}");
        assert!(has_exec(child.id()) || sample(child.id()).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
