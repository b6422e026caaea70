//! CPU time and resident memory of a process tree.
//!
//! A run's figures are its whole tree's: the leader, its descendants (the children lists
//! of `platform`, which hold the group members and anything they started) and the run's
//! escaped descendants the caller names. Each process costs one small read of its
//! figures and one of its children list. CPU time counts the children a member has
//! reaped too (`cutime`, `cstime`), so the total does not drop when a short-lived child
//! ends. Where the system has no `/proc` (see `platform`), the figures are absent.

use std::time::Duration;

pub use crate::platform::{boot_id, has_exec, sample, status};

/// What one read of a process's figures says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Resident memory.
    pub rss_bytes: u64,
}

/// Where a process stands in the tree.
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

/// `roots` and their descendants, each once, at most [`MAX_TREE`] (only the roots where
/// children cannot be listed).
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
        pending.extend(crate::platform::children(pid));
    }
    found
}
