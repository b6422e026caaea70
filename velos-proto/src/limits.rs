//! The allowed range of every numeric start setting, shared by the daemon (which refuses a
//! request outside them, so SDK clients are held to them too) and the CLI (which refuses a
//! flag or a config-file value before anything is sent).
//!
//! Each bound is generous for real use and stops the absurd: `--log-files 4294967295` made
//! every rotation rename four billion files; a kill timeout of years keeps `velos stop`
//! and `velos kill` waiting for good.

use crate::StartParams;

/// The allowed values of one setting, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The field of [`StartParams`] it bounds, as on the wire.
    pub field: &'static str,
    /// The smallest allowed value.
    pub min: u64,
    /// The largest allowed value.
    pub max: u64,
}

/// Rotated log files kept per stream: 0 to 100.
pub const LOG_FILES: Range = Range {
    field: "log_files",
    min: 0,
    max: 100,
};

/// Quick failures in a row before giving up: 0 to 1,000,000.
pub const MAX_RESTARTS: Range = Range {
    field: "max_restarts",
    min: 0,
    max: 1_000_000,
};

/// Milliseconds between SIGTERM and SIGKILL: 0 to one hour.
pub const KILL_TIMEOUT_MS: Range = Range {
    field: "kill_timeout_ms",
    min: 0,
    max: 3_600_000,
};

/// Milliseconds a run must last to count as a success: 0 to one day.
pub const MIN_UPTIME_MS: Range = Range {
    field: "min_uptime_ms",
    min: 0,
    max: 86_400_000,
};

/// Milliseconds a process may take to be ready: 1 to one hour.
pub const READY_TIMEOUT_MS: Range = Range {
    field: "ready_timeout_ms",
    min: 1,
    max: 3_600_000,
};

/// Log size (bytes) at which a file rotates: 1 KiB to 1 TiB, or 0 for no rotation.
pub const MAX_LOG_BYTES: Range = Range {
    field: "max_log_bytes",
    min: 1024,
    max: 1 << 40,
};

/// A memory limit (bytes of a whole process tree): 1 MiB to 1 PiB. Below 1 MiB no
/// program fits (PM2 reads a bare `max_memory_restart: 300` as 300 bytes and restarts
/// forever).
pub const MAX_MEMORY_BYTES: Range = Range {
    field: "max_memory_bytes",
    min: 1 << 20,
    max: 1 << 50,
};

/// Milliseconds a tree must stay over its memory limit before the restart: 0 (the first
/// sample over it) to one day.
pub const MAX_MEMORY_FOR_MS: Range = Range {
    field: "max_memory_for_ms",
    min: 0,
    max: 86_400_000,
};

/// Instances of one app: 1 to 1024.
pub const INSTANCES: Range = Range {
    field: "instances",
    min: 1,
    max: 1024,
};

/// Milliseconds of quiet after a watched change before the restart: 0 to one hour.
pub const WATCH_DELAY_MS: Range = Range {
    field: "watch_delay_ms",
    min: 0,
    max: 3_600_000,
};

/// A setting outside its [`Range`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {value} is out of range: allowed {}", range.field, allowed(range))]
pub struct OutOfRange {
    /// The range it broke.
    pub range: Range,
    /// The value given.
    pub value: u64,
}

fn allowed(range: &Range) -> String {
    let span = format!("{} to {}", range.min, range.max);
    if range.field == MAX_LOG_BYTES.field {
        format!("{span}, or 0 for no rotation")
    } else {
        span
    }
}

impl Range {
    /// Whether `value` is allowed.
    pub fn contains(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value) || (*self == MAX_LOG_BYTES && value == 0)
    }

    /// `value`, or why it is not allowed.
    pub fn check(&self, value: u64) -> Result<u64, OutOfRange> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(OutOfRange {
                range: *self,
                value,
            })
        }
    }
}

impl StartParams {
    /// Checks every numeric setting against its [`Range`]; the first one outside is the
    /// error. Settings left out are not checked (the daemon's defaults are in range).
    ///
    /// # Examples
    /// ```
    /// use velos_proto::StartParams;
    ///
    /// let mut params = StartParams { script: "/srv/app.js".into(), ..StartParams::default() };
    /// assert!(params.check_ranges().is_ok());
    /// params.log_files = Some(u32::MAX);
    /// assert_eq!(
    ///     params.check_ranges().unwrap_err().to_string(),
    ///     "log_files 4294967295 is out of range: allowed 0 to 100"
    /// );
    /// ```
    pub fn check_ranges(&self) -> Result<(), OutOfRange> {
        let settings = [
            (LOG_FILES, self.log_files.map(u64::from)),
            (MAX_RESTARTS, self.max_restarts.map(u64::from)),
            (KILL_TIMEOUT_MS, self.kill_timeout_ms),
            (MIN_UPTIME_MS, self.min_uptime_ms),
            (MAX_LOG_BYTES, self.max_log_bytes),
            (MAX_MEMORY_BYTES, self.max_memory_bytes),
            (MAX_MEMORY_FOR_MS, self.max_memory_for_ms),
            (READY_TIMEOUT_MS, self.ready_timeout_ms),
            (INSTANCES, self.instances.map(u64::from)),
            (WATCH_DELAY_MS, self.watch_delay_ms),
        ];
        for (range, value) in settings {
            if let Some(value) = value {
                range.check(value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_include_both_ends_and_log_size_zero_means_off() {
        assert!(LOG_FILES.contains(0) && LOG_FILES.contains(100) && !LOG_FILES.contains(101));
        assert!(MAX_LOG_BYTES.contains(0) && MAX_LOG_BYTES.contains(1024));
        assert!(!MAX_LOG_BYTES.contains(1023) && !MAX_LOG_BYTES.contains((1 << 40) + 1));
        assert_eq!(
            MAX_LOG_BYTES.check(10).unwrap_err().to_string(),
            "max_log_bytes 10 is out of range: allowed 1024 to 1099511627776, or 0 for no rotation"
        );
    }

    #[test]
    fn every_setting_is_checked() {
        let ok = StartParams {
            script: "/a".into(),
            log_files: Some(5),
            max_restarts: Some(16),
            kill_timeout_ms: Some(5000),
            min_uptime_ms: Some(1000),
            max_log_bytes: Some(10 << 20),
            ..StartParams::default()
        };
        assert_eq!(ok.check_ranges(), Ok(()));
        let bad = [
            StartParams {
                max_restarts: Some(u32::MAX),
                ..ok.clone()
            },
            StartParams {
                kill_timeout_ms: Some(u64::MAX),
                ..ok.clone()
            },
            StartParams {
                min_uptime_ms: Some(86_400_001),
                ..ok.clone()
            },
            StartParams {
                max_log_bytes: Some(1),
                ..ok.clone()
            },
            StartParams {
                log_files: Some(101),
                ..ok.clone()
            },
            StartParams {
                max_memory_bytes: Some(300),
                ..ok.clone()
            },
            StartParams {
                max_memory_for_ms: Some(u64::MAX),
                ..ok.clone()
            },
        ];
        for params in bad {
            assert!(params.check_ranges().is_err(), "{params:?}");
        }
    }
}
