//! The daemon log's lines about refused clients: the first at once, then at most one per
//! [`LOG_INTERVAL`] with the count of those not logged meanwhile. A client that keeps
//! retrying (an old CLI auto-starting for 5 s) must not write thousands of lines.
//! No I/O here: the accept loop logs what [`Refusals::note`] returns.

use std::time::{Duration, Instant};

/// The least time between two lines about one kind of refusal.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The refusals of one kind and when the last line about them was logged.
#[derive(Debug, Default)]
pub struct Refusals {
    /// When the last line was logged.
    logged_at: Option<Instant>,
    /// Refusals since then that no line mentioned.
    unlogged: u64,
}

impl Refusals {
    /// Notes one refusal, described by `what`, at `now`, and returns the line to log, if
    /// one is due.
    pub fn note(&mut self, what: &str, now: Instant) -> Option<String> {
        if let Some(at) = self.logged_at
            && now.saturating_duration_since(at) < LOG_INTERVAL
        {
            self.unlogged = self.unlogged.saturating_add(1);
            return None;
        }
        self.logged_at = Some(now);
        let line = match std::mem::take(&mut self.unlogged) {
            0 => what.to_owned(),
            more => format!(
                "{what} (and {more} more like it in the last {})",
                humantime::format_duration(LOG_INTERVAL)
            ),
        };
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut refusals = Refusals::default();
        assert_eq!(refusals.note("refused", at(0)).as_deref(), Some("refused"));
        for ms in 1..2000 {
            assert_eq!(refusals.note("refused", at(ms)), None);
        }
        assert_eq!(
            refusals.note("refused", at(10_000)).as_deref(),
            Some("refused (and 1999 more like it in the last 10s)")
        );
        assert_eq!(
            refusals.note("refused", at(25_000)).as_deref(),
            Some("refused")
        );
    }
}
