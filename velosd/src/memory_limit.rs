//! The memory limit (`--max-memory-restart`): when a run's whole tree has stayed over it
//! long enough to be restarted.
//!
//! The supervisor's sampler (`supervisor/sampler.rs`) feeds each sample of a run's tree
//! to the process's [`OverLimit`]; the first sample over the limit starts the window, a
//! sample at or under it ends it, and a sample over it once the window has passed says
//! the run is to be restarted, once per run (or once more, after a replacement that
//! failed). A new run starts afresh, so a start-up spike shorter than the window is
//! tolerated every time. A run none of whose samples was at or under the limit uses more
//! than the limit from its start: restarting it cannot help, so its restart says so
//! ([`Over::at_start`]) and the lifecycle counts it as a quick failure, giving up after
//! `max_restarts` of them in a row. No I/O happens here.

use std::time::{Duration, Instant};

/// How long a tree must stay over its limit, when the start request names no window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3);

/// A process's memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Resident bytes of the whole tree.
    pub bytes: u64,
    /// How long the tree must stay over them.
    pub window: Duration,
}

/// Where one process's current run stands against its limit.
#[derive(Debug, Default)]
pub struct OverLimit {
    /// The run the rest is about.
    run: u64,
    /// Since when its samples are over the limit (the first sample over it).
    since: Option<Instant>,
    /// Its restart was asked for: nothing more for this run.
    asked: bool,
    /// One of its samples was at or under the limit.
    under_seen: bool,
}

/// A run to restart for its memory (see [`OverLimit::observe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Over {
    /// The restart's reason, like `memory 612.3 MiB > 512 MiB for 3s`.
    pub detail: String,
    /// When no sample of the run was at or under the limit: why restarting it cannot
    /// help, the start of the error shown when velos gives up on it (`used 104.0 MiB from
    /// its start, over --max-memory-restart 50 MiB`).
    pub at_start: Option<String>,
}

impl OverLimit {
    /// Takes a sample of run `run`'s tree (`bytes`, taken at `now`) and says, once per
    /// run, when it has been over `limit` for the whole window.
    pub fn observe(
        &mut self,
        limit: &MemoryLimit,
        run: u64,
        bytes: u64,
        now: Instant,
    ) -> Option<Over> {
        if run != self.run {
            *self = OverLimit {
                run,
                ..OverLimit::default()
            };
        }
        if self.asked {
            return None;
        }
        if bytes <= limit.bytes {
            self.since = None;
            self.under_seen = true;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) < limit.window {
            return None;
        }
        self.asked = true;
        let window = humantime::format_duration(limit.window);
        let (used, limit) = (mebibytes(bytes), mebibytes(limit.bytes));
        if self.under_seen {
            return Some(Over {
                detail: format!("memory {used} > {limit} for {window}"),
                at_start: None,
            });
        }
        Some(Over {
            detail: format!("memory {used} > {limit} for {window}, over it from its start"),
            at_start: Some(format!(
                "used {used} from its start, over --max-memory-restart {limit}"
            )),
        })
    }
}

impl OverLimit {
    /// A replacement of the run is under way (a reload, this limit's own or another):
    /// nothing is asked meanwhile, and should the run stay (its replacement failed), its
    /// window starts again from its next sample.
    pub fn pause(&mut self) {
        self.since = None;
        self.asked = false;
    }
}

/// Bytes in MiB: `512 MiB` when whole, else with one decimal (`612.3 MiB`), so that a
/// figure just over its limit does not read as equal to it.
fn mebibytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        let tenths = (bytes as f64 / MIB as f64 * 10.0).floor() / 10.0;
        format!("{tenths:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn limit() -> MemoryLimit {
        MemoryLimit {
            bytes: 512 * MIB,
            window: DEFAULT_WINDOW,
        }
    }

    #[test]
    fn over_the_limit_for_the_whole_window_asks_once_per_run() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut over = OverLimit::default();
        let bytes = 612 * MIB + 300 * 1024;
        assert_eq!(over.observe(&limit(), 1, 100 * MIB, at(0)), None);
        assert_eq!(over.observe(&limit(), 1, bytes, at(0)), None);
        assert_eq!(over.observe(&limit(), 1, bytes, at(1000)), None);
        assert_eq!(over.observe(&limit(), 1, bytes, at(2999)), None);
        assert_eq!(
            over.observe(&limit(), 1, bytes, at(3000)),
            Some(Over {
                detail: "memory 612.2 MiB > 512 MiB for 3s".to_owned(),
                at_start: None
            })
        );
        assert_eq!(
            over.observe(&limit(), 1, bytes, at(4000)),
            None,
            "asked already"
        );
        // The next run starts afresh.
        assert_eq!(over.observe(&limit(), 2, bytes, at(5000)), None);
        assert!(over.observe(&limit(), 2, bytes, at(8000)).is_some());
    }

    #[test]
    fn a_spike_shorter_than_the_window_is_tolerated() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut over = OverLimit::default();
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(0)), None);
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(1000)), None);
        // At the limit is not over it: the window ends.
        assert_eq!(over.observe(&limit(), 1, 512 * MIB, at(2000)), None);
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(3000)), None);
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(5000)), None);
        assert!(over.observe(&limit(), 1, 600 * MIB, at(6000)).is_some());
    }

    #[test]
    fn a_run_whose_replacement_failed_gets_a_new_window() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut over = OverLimit::default();
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(0)), None);
        assert!(over.observe(&limit(), 1, 600 * MIB, at(3000)).is_some());
        // Reloaded behind readiness; the replacement was never ready.
        over.pause();
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(9000)), None);
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(11000)), None);
        assert!(over.observe(&limit(), 1, 600 * MIB, at(12000)).is_some());
    }

    #[test]
    fn a_window_of_zero_asks_on_the_first_sample_over() {
        let limit = MemoryLimit {
            bytes: 100 * MIB,
            window: Duration::ZERO,
        };
        let mut over = OverLimit::default();
        assert_eq!(
            over.observe(&limit, 1, 2 * 1024 * MIB, Instant::now())
                .map(|over| over.detail)
                .as_deref(),
            Some("memory 2048 MiB > 100 MiB for 0s, over it from its start")
        );
    }

    #[test]
    fn a_run_over_the_limit_in_every_sample_is_over_it_from_its_start() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut over = OverLimit::default();
        assert_eq!(over.observe(&limit(), 1, 600 * MIB, at(1000)), None);
        let asked = over.observe(&limit(), 1, 600 * MIB, at(4000)).unwrap();
        assert_eq!(
            asked.detail,
            "memory 600 MiB > 512 MiB for 3s, over it from its start"
        );
        assert_eq!(
            asked.at_start.as_deref(),
            Some("used 600 MiB from its start, over --max-memory-restart 512 MiB")
        );
        // The next run was under it once: a leak, which a restart cures for a while.
        assert_eq!(over.observe(&limit(), 2, 400 * MIB, at(5000)), None);
        assert_eq!(over.observe(&limit(), 2, 600 * MIB, at(6000)), None);
        let asked = over.observe(&limit(), 2, 600 * MIB, at(9000)).unwrap();
        assert_eq!(asked.at_start, None);
    }
}
