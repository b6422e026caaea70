//! Restart schedules (`--cron-restart`): PM2's cron syntax, read by `croner` (the Rust
//! port of the parser PM2 uses), in the daemon's local time.
//!
//! [`Schedule::parse`] checks an expression (5 fields, or 6 with seconds first) and
//! [`Schedule::next_after`] finds its next time. The supervisor keeps one task per
//! scheduled process that sleeps until that time and then sends the restart trigger
//! (`supervisor/cron.rs`); nothing here waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed restart schedule and the expression it was written as.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
}

impl Schedule {
    /// Reads `expression`: minute, hour, day of month, month and day of week, with an
    /// optional seconds field first; names (`MON`, `JAN`), ranges, lists, steps and
    /// nicknames (`@daily`) as PM2 reads them. The error is one line.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        let parser = CronParser::builder().seconds(Seconds::Optional).build();
        let cron = parser.parse(expression).map_err(|err| {
            format!(
                "--cron-restart '{}' is not a schedule ({err}); write 5 fields, or 6 with \
                 seconds first, like \"0 3 * * *\" (03:00 every day)",
                velos_proto::echo(expression)
            )
        })?;
        let schedule = Schedule {
            expression: expression.trim().to_owned(),
            cron,
        };
        // One that never comes (February 30th) is refused too.
        if schedule.next_after(SystemTime::now()).is_none() {
            return Err(format!(
                "--cron-restart '{}' never comes: no date matches it",
                velos_proto::echo(expression)
            ));
        }
        Ok(schedule)
    }

    /// The expression, as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first time after `after` that the schedule names, in local time; `None` when
    /// none comes.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let after: DateTime<Local> = DateTime::from(after);
        let next = self.cron.find_next_occurrence(&after, false).ok()?;
        Some(SystemTime::from(next))
    }
}

/// Milliseconds since the Unix epoch of `time` (0 before it).
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, crate::state::millis)
}

/// How long from `now` until `then` (zero when it has passed).
pub fn until(now: SystemTime, then: SystemTime) -> Duration {
    then.duration_since(now).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
        SystemTime::from(Local.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
    }

    #[test]
    fn five_or_six_fields_in_local_time() {
        let daily = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(daily.expression(), "0 3 * * *");
        assert_eq!(
            daily.next_after(at(2030, 5, 1, 12, 0, 0)),
            Some(at(2030, 5, 2, 3, 0, 0))
        );
        let every_2s = Schedule::parse("*/2 * * * * *").unwrap();
        assert_eq!(
            every_2s.next_after(at(2030, 5, 1, 12, 0, 1)),
            Some(at(2030, 5, 1, 12, 0, 2))
        );
        // Strictly after: a time that matches gives the next one.
        assert_eq!(
            every_2s.next_after(at(2030, 5, 1, 12, 0, 2)),
            Some(at(2030, 5, 1, 12, 0, 4))
        );
        let mondays = Schedule::parse("30 8 * * MON").unwrap();
        // 2030-05-01 is a Wednesday.
        assert_eq!(
            mondays.next_after(at(2030, 5, 1, 0, 0, 0)),
            Some(at(2030, 5, 6, 8, 30, 0))
        );
        assert!(Schedule::parse("@daily").is_ok());
    }

    #[test]
    fn a_bad_schedule_is_one_line_that_says_what_to_write() {
        for bad in ["", "* * *", "61 * * * *", "0 3 * * * * * *", "every day"] {
            let error = Schedule::parse(bad).unwrap_err();
            assert!(
                error.starts_with("--cron-restart '") && error.contains("like \"0 3 * * *\""),
                "{bad:?}: {error}"
            );
            assert!(!error.contains('\n'), "{error}");
        }
        let error = Schedule::parse("0 0 30 2 *").unwrap_err();
        assert!(error.contains("never comes"), "{error}");
    }

    #[test]
    fn times_convert_to_milliseconds() {
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        let now = SystemTime::now();
        assert_eq!(until(now, now - Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            until(now, now + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
