//! The allowed ranges of the numeric start settings (`velos_proto::limits`, which the
//! daemon enforces too), checked where the user typed them: flags through clap's value
//! parsers (`parse_*`), config-file values by [`count`], [`duration`] and [`size`].
//! Messages speak the user's units (`2h`, `10MiB`), not the wire's milliseconds and bytes.

use std::time::Duration;

use velos_proto::ReadyMode;
use velos_proto::limits::{
    INSTANCES, KILL_TIMEOUT_MS, LOG_FILES, MAX_LOG_BYTES, MAX_MEMORY_BYTES, MAX_MEMORY_FOR_MS,
    MAX_RESTARTS, MIN_UPTIME_MS, READY_TIMEOUT_MS, Range, WATCH_DELAY_MS,
};

use crate::size::{format_bytes, parse_size};

/// A count within `range`.
pub fn count(range: Range, value: u64) -> Result<u64, String> {
    if range.contains(value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is out of range: allowed {} to {}",
            range.min, range.max
        ))
    }
}

/// A duration within `range` (milliseconds).
pub fn duration(range: Range, value: Duration) -> Result<Duration, String> {
    let ms = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
    if range.contains(ms) {
        Ok(value)
    } else if ms < range.min {
        Err(format!(
            "{} is shorter than the minimum, {}",
            humantime::format_duration(value),
            humantime::format_duration(Duration::from_millis(range.min))
        ))
    } else {
        Err(format!(
            "{} is longer than the maximum, {}",
            humantime::format_duration(value),
            humantime::format_duration(Duration::from_millis(range.max))
        ))
    }
}

/// A log size within [`MAX_LOG_BYTES`], or 0 for no rotation.
pub fn size(value: u64) -> Result<u64, String> {
    if MAX_LOG_BYTES.contains(value) {
        return Ok(value);
    }
    let (min, max) = (
        format_bytes(MAX_LOG_BYTES.min),
        format_bytes(MAX_LOG_BYTES.max),
    );
    Err(format!(
        "{} is out of range: allowed {min} to {max}, or 0 for no rotation",
        format_bytes(value)
    ))
}

/// A memory limit within [`MAX_MEMORY_BYTES`].
pub fn memory(value: u64) -> Result<u64, String> {
    if MAX_MEMORY_BYTES.contains(value) {
        return Ok(value);
    }
    Err(format!(
        "{} is out of range: allowed {} to {}",
        format_bytes(value),
        format_bytes(MAX_MEMORY_BYTES.min),
        format_bytes(MAX_MEMORY_BYTES.max)
    ))
}

/// `--max-memory-restart SIZE`: a size with its unit (`512M`, `1G`, `200MiB`, `1.5G`).
/// A bare number is refused: PM2 reads it as bytes, and `300` meaning 300 bytes is never
/// what was meant.
pub fn parse_memory_limit(text: &str) -> Result<u64, String> {
    if text.trim().parse::<f64>().is_ok() {
        return Err(format!(
            "'{}' has no unit: give a unit: 512M (M and G are MiB and GiB)",
            text.trim()
        ));
    }
    memory(parse_size(text)?)
}

/// `--max-memory-for DUR`
pub fn parse_memory_window(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    duration(MAX_MEMORY_FOR_MS, value)
}

fn parse_count(range: Range, text: &str) -> Result<u32, String> {
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number"))?;
    let value = count(range, value)?;
    // Every count range fits in a u32.
    u32::try_from(value).map_err(|_| format!("{value} is too large"))
}

/// `--log-files N`
pub fn parse_log_files(text: &str) -> Result<u32, String> {
    parse_count(LOG_FILES, text)
}

/// `--max-restarts N`
pub fn parse_max_restarts(text: &str) -> Result<u32, String> {
    parse_count(MAX_RESTARTS, text)
}

/// `--instances N|max` (`-i`): `max` is one per CPU this machine has.
pub fn parse_instances(text: &str) -> Result<u32, String> {
    if text.trim() == "max" {
        return Ok(cpus());
    }
    parse_count(INSTANCES, text).map_err(|err| format!("{err}, or max (one per CPU)"))
}

/// How many CPUs this process may run on, within [`INSTANCES`] (1 when unknown).
pub fn cpus() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cpus)
        .unwrap_or(u32::MAX)
        .clamp(1, INSTANCES.max as u32)
}

/// `--kill-timeout DUR`
pub fn parse_kill_timeout(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    duration(KILL_TIMEOUT_MS, value)
}

/// `--min-uptime DUR`
pub fn parse_min_uptime(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    duration(MIN_UPTIME_MS, value)
}

/// `--ready-timeout DUR`
pub fn parse_ready_timeout(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    duration(READY_TIMEOUT_MS, value)
}

/// `--watch-delay DUR`
pub fn parse_watch_delay(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    duration(WATCH_DELAY_MS, value)
}

/// `--watch-ignore GLOB`: kept as text, checked here.
pub fn parse_watch_ignore(text: &str) -> Result<String, String> {
    velos_proto::watch::glob_regex(text)
        .map(|_| text.to_owned())
        .map_err(|err| err.to_string())
}

/// `--ready MODE`: kept as text, checked here.
pub fn parse_ready(text: &str) -> Result<String, String> {
    text.parse::<ReadyMode>()
        .map(|mode| mode.to_string())
        .map_err(|err| err.to_string())
}

/// `--kill-signal SIG` (and `velos signal SIG`): a signal by name (`SIGINT`, `INT`) or
/// number, as its name (`SIGINT`).
pub fn parse_signal(text: &str) -> Result<String, String> {
    let number = velos_proto::parse_signal(text)?;
    Ok(velos_proto::signal_name(number)
        .unwrap_or_default()
        .to_owned())
}

/// `--max-log-size SIZE`
pub fn parse_log_size(text: &str) -> Result<u64, String> {
    size(parse_size(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_the_ranges_say_what_is_allowed() {
        assert_eq!(parse_log_files("5"), Ok(5));
        assert_eq!(
            parse_log_files("4294967295").unwrap_err(),
            "4294967295 is out of range: allowed 0 to 100"
        );
        assert_eq!(
            parse_log_files("99999999999999999999").unwrap_err(),
            "'99999999999999999999' is not a whole number"
        );
        assert_eq!(parse_max_restarts("0"), Ok(0));
        assert!(parse_max_restarts("4000000000").is_err());
        assert_eq!(parse_kill_timeout("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_kill_timeout("2h").unwrap_err(),
            "2h is longer than the maximum, 1h"
        );
        assert!(parse_kill_timeout("soon").is_err());
        assert!(parse_min_uptime("1day").is_ok() && parse_min_uptime("2days").is_err());
        assert_eq!(parse_instances("4"), Ok(4));
        assert_eq!(parse_instances("max"), Ok(cpus()));
        assert!(cpus() >= 1);
        assert_eq!(
            parse_instances("0").unwrap_err(),
            "0 is out of range: allowed 1 to 1024, or max (one per CPU)"
        );
        assert_eq!(parse_memory_limit("512M"), Ok(512 << 20));
        assert_eq!(parse_memory_limit("1G"), Ok(1 << 30));
        assert_eq!(parse_memory_limit("200MiB"), Ok(200 << 20));
        assert_eq!(parse_memory_limit("1.5G"), Ok(3 << 29));
        assert_eq!(
            parse_memory_limit("100").unwrap_err(),
            "'100' has no unit: give a unit: 512M (M and G are MiB and GiB)"
        );
        assert_eq!(
            parse_memory_limit("300B").unwrap_err(),
            "300 B is out of range: allowed 1.0 MiB to 1024.0 TiB"
        );
        assert_eq!(parse_memory_window("0s"), Ok(Duration::ZERO));
        assert!(parse_memory_window("2days").is_err());
        assert_eq!(parse_log_size("0"), Ok(0));
        assert_eq!(parse_log_size("1KiB"), Ok(1024));
        assert_eq!(
            parse_log_size("10").unwrap_err(),
            "10 B is out of range: allowed 1.0 KiB to 1.0 TiB, or 0 for no rotation"
        );
    }
}
