//! Summaries of repeated measurements: how many runs, and their median, min and max.
//!
//! Every figure the benchmark prints is a [`Stats`], even a single reading (one run), so
//! the table can always say how the number was taken. Values are plain `f64` in the
//! figure's base unit (seconds, bytes, counts); `report` picks the display unit.

use std::time::Duration;

/// The summary of one figure's runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// How many readings.
    pub runs: usize,
    /// The middle reading (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest reading.
    pub min: f64,
    /// The largest reading.
    pub max: f64,
}

impl Stats {
    /// Summarises `samples`; `None` when there are none. NaN readings are ignored.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| !s.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Stats {
            runs: n,
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// Summarises durations, in seconds.
    pub fn of_durations(samples: &[Duration]) -> Option<Stats> {
        let seconds: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
        Stats::of(&seconds)
    }

    /// A single reading.
    pub fn one(value: f64) -> Stats {
        Stats {
            runs: 1,
            median: value,
            min: value,
            max: value,
        }
    }

    /// The same runs through a monotonic function (a rate from a time, a scale factor).
    /// A decreasing function swaps which end is min and which is max, so both are
    /// recomputed.
    pub fn map(self, f: impl Fn(f64) -> f64) -> Stats {
        let (a, b) = (f(self.min), f(self.max));
        Stats {
            runs: self.runs,
            median: f(self.median),
            min: a.min(b),
            max: a.max(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_odd_count_has_the_middle_reading_as_median() {
        let stats = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            stats,
            Stats {
                runs: 3,
                median: 3.0,
                min: 1.0,
                max: 5.0
            }
        );
    }

    #[test]
    fn an_even_count_has_the_mean_of_the_two_middle_readings_as_median() {
        let stats = Stats::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((stats.runs, stats.median), (4, 3.0));
        assert_eq!((stats.min, stats.max), (1.0, 10.0));
    }

    #[test]
    fn one_reading_is_its_own_median_min_and_max() {
        assert_eq!(Stats::of(&[7.5]), Some(Stats::one(7.5)));
    }

    #[test]
    fn no_readings_have_no_summary() {
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(Stats::of(&[f64::NAN]), None);
    }

    #[test]
    fn nan_readings_are_ignored() {
        let stats = Stats::of(&[2.0, f64::NAN, 4.0]).unwrap();
        assert_eq!((stats.runs, stats.median), (2, 3.0));
    }

    #[test]
    fn durations_are_summarised_in_seconds() {
        let stats = Stats::of_durations(&[
            Duration::from_millis(2),
            Duration::from_millis(1),
            Duration::from_millis(3),
        ])
        .unwrap();
        assert_eq!(stats.median, 0.002);
        assert_eq!((stats.min, stats.max), (0.001, 0.003));
    }

    #[test]
    fn a_decreasing_map_keeps_min_below_max() {
        // Times of 1 s and 4 s as rates of 100 lines: 100/s and 25/s.
        let rates = Stats::of(&[1.0, 2.0, 4.0]).unwrap().map(|t| 100.0 / t);
        assert_eq!(rates.median, 50.0);
        assert_eq!((rates.min, rates.max), (25.0, 100.0));
        assert_eq!(rates.runs, 3);
    }
}
