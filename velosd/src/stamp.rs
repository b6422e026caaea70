//! `--time`: the time a line arrived, written in front of it in its log file, and read
//! back from there.
//!
//! The stamp is the UTC time in RFC 3339 with milliseconds and a space:
//! `2026-12-07T18:20:57.123Z ` ([`STAMP_BYTES`] bytes, always the same width). The
//! collector writes one at the start of every line of a process started with `--time`
//! (the time its first bytes arrived); the ring keeps the line without it (its position in
//! the file still counts it), and reading the files back strips it and gives the line its
//! time ([`strip`]), so `velos logs --timestamps` and `--since` know the time of lines
//! older than the ring's, and after a daemon restart. A line is taken as stamped only when
//! its first bytes are a valid stamp, and only for a process with `--time`; one without
//! (the rest of a line cut at a rotation) keeps its bytes and has no time.
//!
//! Pure: no clock, no I/O.

/// Bytes of a stamp, its space included.
pub const STAMP_BYTES: usize = 25;

/// Where each digit goes, `0` standing for a digit; the rest is fixed.
const SHAPE: &[u8; STAMP_BYTES] = b"0000-00-00T00:00:00.000Z ";

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// The stamp of `time_ms` (Unix milliseconds, UTC).
pub fn format(time_ms: u64) -> [u8; STAMP_BYTES] {
    let days = (time_ms / DAY_MS) as i64;
    let in_day = time_ms % DAY_MS;
    let (year, month, day) = civil_from_days(days);
    // Years past 9999 are out of the format's reach: shown as 9999.
    let year = year.clamp(0, 9999) as u64;
    let fields = [
        (0, 4, year),
        (5, 2, u64::from(month)),
        (8, 2, u64::from(day)),
        (11, 2, in_day / 3_600_000),
        (14, 2, in_day / 60_000 % 60),
        (17, 2, in_day / 1000 % 60),
        (20, 3, in_day % 1000),
    ];
    let mut stamp = *SHAPE;
    for (at, width, mut value) in fields {
        for place in (at..at + width).rev() {
            stamp[place] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    stamp
}

/// The time of the stamp at the start of `line`, if it starts with one.
pub fn parse(line: &[u8]) -> Option<u64> {
    let stamp = line.get(..STAMP_BYTES)?;
    let shaped = stamp.iter().zip(SHAPE).all(|(&byte, &shape)| match shape {
        b'0' => byte.is_ascii_digit(),
        fixed => byte == fixed,
    });
    if !shaped {
        return None;
    }
    let number = |from: usize, to: usize| {
        stamp[from..to]
            .iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'))
    };
    let (year, month, day) = (number(0, 4), number(5, 7), number(8, 10));
    let (hour, minute, second, ms) = (
        number(11, 13),
        number(14, 16),
        number(17, 19),
        number(20, 23),
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
        || year < 1970
    {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let days = u64::try_from(days).ok()?;
    Some(days * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms)
}

/// `line` without its stamp, and the stamp's time; `line` as it is and `None` when it
/// does not start with a stamp.
pub fn strip(mut line: Vec<u8>) -> (Vec<u8>, Option<u64>) {
    match parse(&line) {
        Some(time_ms) => {
            line.drain(..STAMP_BYTES);
            (line, Some(time_ms))
        }
        None => (line, None),
    }
}

/// Writes `chunk` into `out` with a stamp of `time_ms` at the start of every line;
/// `at_line_start` says whether the chunk begins a line, and is left saying whether the
/// next one does.
pub fn stamp_lines(chunk: &[u8], time_ms: u64, at_line_start: &mut bool, out: &mut Vec<u8>) {
    out.clear();
    let stamp = format(time_ms);
    let mut rest = chunk;
    while !rest.is_empty() {
        if *at_line_start {
            out.extend_from_slice(&stamp);
        }
        match memchr::memchr(b'\n', rest) {
            Some(newline) => {
                out.extend_from_slice(&rest[..=newline]);
                rest = &rest[newline + 1..];
                *at_line_start = true;
            }
            None => {
                out.extend_from_slice(rest);
                *at_line_start = false;
                break;
            }
        }
    }
}

/// The civil date (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day, counted from 1970-01-01, of a civil date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_rfc_3339_utc_with_milliseconds_and_a_space() {
        assert_eq!(&format(0), b"1970-01-01T00:00:00.000Z ");
        // 2026-12-07T18:20:57.123Z
        let time = 1_796_667_657_123;
        assert_eq!(&format(time), b"2026-12-07T18:20:57.123Z ");
        assert_eq!(&format(951_782_400_000), b"2000-02-29T00:00:00.000Z ");
    }

    #[test]
    fn every_stamp_reads_back_as_its_time() {
        let mut time = 0u64;
        while time < 5_000_000_000_000 {
            assert_eq!(parse(&format(time)), Some(time), "{time}");
            time += 7_777_777_777;
        }
        assert_eq!(parse(&format(951_868_799_999)), Some(951_868_799_999));
    }

    #[test]
    fn only_a_whole_valid_stamp_counts() {
        assert_eq!(parse(b"2026-12-07T18:20:57.123Z"), None, "no space");
        assert_eq!(parse(b"2026-12-07 18:20:57.123Z rest"), None);
        assert_eq!(parse(b"2026-13-07T18:20:57.123Z rest"), None, "month 13");
        assert_eq!(parse(b"2026-12-07T24:20:57.123Z rest"), None);
        assert_eq!(parse(b"hello"), None);
        let (line, time) = strip(b"2026-12-07T18:20:57.123Z 2026-12-07T00:00:00.000Z app".to_vec());
        assert_eq!(time, Some(1_796_667_657_123));
        assert_eq!(line, b"2026-12-07T00:00:00.000Z app", "the app's own stays");
        let (line, time) = strip(b"no stamp".to_vec());
        assert_eq!((line.as_slice(), time), (&b"no stamp"[..], None));
    }

    #[test]
    fn every_line_start_gets_a_stamp_across_chunks() {
        let mut at_start = true;
        let mut out = Vec::new();
        stamp_lines(b"one\ntw", 0, &mut at_start, &mut out);
        assert_eq!(
            out,
            b"1970-01-01T00:00:00.000Z one\n1970-01-01T00:00:00.000Z tw"
        );
        assert!(!at_start);
        stamp_lines(b"o\n\nthree\n", 1000, &mut at_start, &mut out);
        assert_eq!(
            out,
            b"o\n1970-01-01T00:00:01.000Z \n1970-01-01T00:00:01.000Z three\n"
        );
        assert!(at_start);
    }
}
