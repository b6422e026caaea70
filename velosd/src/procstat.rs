//! CPU time and resident memory of a process, from `/proc/<pid>/stat` (Linux).
//!
//! One small read per process: `velos list` samples every running process, so this
//! stays to the one file that has both figures. Elsewhere there is no `/proc`, and the
//! figures are absent.

use std::time::Duration;

/// What one read of `/proc/<pid>/stat` says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident memory.
    pub rss_bytes: u64,
}

/// Where a process stands in the tree, from the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Its process group.
    pub pgid: u32,
    /// Exited, not yet collected by its parent.
    pub zombie: bool,
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

/// Reads state (field 3) and pgrp (field 5).
fn parse_status(stat: &str) -> Option<Status> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(Status {
        pgid: fields.get(2)?.parse().ok()?,
        zombie: matches!(*fields.first()?, "Z" | "X"),
    })
}

/// No `/proc` here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn sample(_pid: u32) -> Option<Sample> {
    None
}

/// Reads utime and stime (fields 14 and 15, in clock ticks) and rss (field 24, in pages).
/// The command name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse(stat: &str, ticks_per_second: u64, page_size: u64) -> Option<Sample> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // after_name starts with field 3 (state).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = field(14)? + field(15)?;
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
        let stat = "42 (my (odd) app) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 \
                    1000 10000000 300 18446744073709551615";
        let sample = parse(stat, 100, 4096).unwrap();
        assert_eq!(sample.cpu, Duration::from_secs(3));
        assert_eq!(sample.rss_bytes, 300 * 4096);
        assert_eq!(parse("garbage", 100, 4096), None);
        assert_eq!(
            parse_status(stat),
            Some(Status {
                pgid: 42,
                zombie: false
            })
        );
        assert_eq!(parse_status("7 (x) Z 1 7 7").map(|s| s.zombie), Some(true));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_process_has_figures() {
        let sample = sample(std::process::id()).unwrap();
        assert!(sample.rss_bytes > 0);
    }
}
