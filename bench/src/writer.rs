//! The log writer (`velos-bench write-lines N`) and the check of what reached the log.
//!
//! The benchmark runs its own executable in this mode, so the same writer runs straight to
//! a file (the machine's limit) and under each manager. It writes `N` numbered lines of
//! exactly [`LINE_BYTES`] bytes as fast as it can: batches of whole lines in one `write`
//! each (`--batch LINES`, [`BATCH_LINES`] unless given), straight to fd 1 (std's stdout is
//! line-buffered, which would be a syscall a line).
//!
//! A line is `0000000042 ` (ten digits, a space), filler, and a newline. With `--stamp PATH`
//! it first writes its start time (nanoseconds since the Unix epoch) to PATH, so the time
//! a run takes is measured from when the writer really began, whatever the manager's spawn
//! latency. With `--linger` it sleeps after the last line until killed, so a manager that
//! restarts exited processes cannot run it twice.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// Bytes per line, newline included.
pub const LINE_BYTES: usize = 100;
/// Digits of the line number.
const DIGITS: usize = 10;
/// Lines per `write` unless `--batch` says: 65,500 bytes, just under a default 64 KiB pipe
/// buffer.
pub const BATCH_LINES: usize = 655;
/// What follows the number: the same on every line.
const FILLER: &[u8; LINE_BYTES - DIGITS - 2] =
    b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 velos-bench log line...";

/// Line `i`, newline included.
pub fn line(i: u64) -> [u8; LINE_BYTES] {
    let mut line = [0; LINE_BYTES];
    line[..DIGITS].copy_from_slice(format!("{i:0DIGITS$}").as_bytes());
    line[DIGITS] = b' ';
    line[DIGITS + 1..LINE_BYTES - 1].copy_from_slice(FILLER);
    line[LINE_BYTES - 1] = b'\n';
    line
}

/// Runs the writer with the arguments after `write-lines`.
pub fn main(args: &[String]) -> Result<()> {
    let mut count: Option<u64> = None;
    let mut stamp: Option<PathBuf> = None;
    let mut linger = false;
    let mut batch = BATCH_LINES;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stamp" => stamp = args.next().map(PathBuf::from),
            "--linger" => linger = true,
            "--batch" => {
                batch = args
                    .next()
                    .and_then(|lines| lines.parse().ok())
                    .filter(|&lines| lines > 0)
                    .context("--batch LINES: LINES is a positive number")?;
            }
            number => count = Some(number.parse().context("write-lines N: N is a number")?),
        }
    }
    let Some(count) = count else {
        bail!("usage: velos-bench write-lines N [--batch LINES] [--stamp PATH] [--linger]");
    };
    if let Some(stamp) = stamp {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        std::fs::write(&stamp, nanos.to_string())
            .with_context(|| format!("writing {}", stamp.display()))?;
    }
    let mut out = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    write_lines(&mut out, count, batch)?;
    drop(out);
    if linger {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}

/// Writes lines `0..count` in batches of `batch_lines`. Only the digits change from line to
/// line, so a batch is laid out once and each line's number is counted up in place.
fn write_lines(out: &mut impl Write, count: u64, batch_lines: usize) -> Result<()> {
    let mut batch: Vec<u8> = (0..batch_lines).flat_map(|_| line(0)).collect();
    let mut digits = [b'0'; DIGITS];
    let mut written = 0;
    while written < count {
        let lines = (count - written).min(batch_lines as u64) as usize;
        for slot in batch.chunks_exact_mut(LINE_BYTES).take(lines) {
            slot[..DIGITS].copy_from_slice(&digits);
            increment(&mut digits);
        }
        out.write_all(&batch[..lines * LINE_BYTES])
            .context("writing lines")?;
        written += lines as u64;
    }
    out.flush()?;
    Ok(())
}

/// Adds one to a decimal number in ASCII digits.
fn increment(digits: &mut [u8]) {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
}

/// What a log holds compared with lines `0..count` written once each, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCheck {
    /// Well-formed lines found.
    pub lines: u64,
    /// Numbers never seen.
    pub lost: u64,
    /// Lines seen again.
    pub duplicated: u64,
    /// Lines with a smaller number than one before them (not counting duplicates).
    pub out_of_order: u64,
    /// Lines that are not a line the writer wrote (cut, merged, changed, or a number out of
    /// range), a last line without a newline included.
    pub malformed: u64,
}

impl LineCheck {
    /// Everything that is not "present exactly once, in order".
    pub fn wrong(&self) -> u64 {
        self.lost + self.duplicated + self.out_of_order + self.malformed
    }
}

/// Checks `log` against lines `0..count`.
pub fn check(log: &[u8], count: u64) -> LineCheck {
    let mut seen = vec![false; usize::try_from(count).unwrap_or(usize::MAX)];
    let mut result = LineCheck::default();
    let mut next = 0;
    for text in log.split_inclusive(|&byte| byte == b'\n') {
        let Some(n) = parse(text).filter(|&n| n < count) else {
            result.malformed += 1;
            continue;
        };
        result.lines += 1;
        let index = n as usize;
        if seen[index] {
            result.duplicated += 1;
        } else {
            seen[index] = true;
            if n < next {
                result.out_of_order += 1;
            }
        }
        next = next.max(n + 1);
    }
    result.lost = seen.iter().filter(|&&s| !s).count() as u64;
    result
}

/// The number of a well-formed line.
fn parse(text: &[u8]) -> Option<u64> {
    if text.len() != LINE_BYTES
        || text[DIGITS] != b' '
        || text[DIGITS + 1..LINE_BYTES - 1] != FILLER[..]
        || text[LINE_BYTES - 1] != b'\n'
    {
        return None;
    }
    let digits = std::str::from_utf8(&text[..DIGITS]).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(numbers: impl IntoIterator<Item = u64>) -> Vec<u8> {
        numbers.into_iter().flat_map(line).collect()
    }

    #[test]
    fn lines_are_numbered_and_a_hundred_bytes() {
        let text = line(42);
        assert_eq!(text.len(), LINE_BYTES);
        assert!(text.starts_with(b"0000000042 abc"));
        assert!(text.ends_with(b"line...\n"));
    }

    #[test]
    fn the_writer_writes_every_line_in_order_across_batches() {
        let count = 2 * BATCH_LINES as u64 + 7;
        let mut out = Vec::new();
        write_lines(&mut out, count, BATCH_LINES).unwrap();
        assert_eq!(out, log(0..count));
        let mut single = Vec::new();
        write_lines(&mut single, 7, 1).unwrap();
        assert_eq!(single, log(0..7));
        assert_eq!(
            check(&out, count),
            LineCheck {
                lines: count,
                ..LineCheck::default()
            }
        );
    }

    #[test]
    fn counting_up_carries() {
        let mut digits = *b"0999";
        increment(&mut digits);
        assert_eq!(&digits, b"1000");
    }

    #[test]
    fn a_lost_line_is_counted_once() {
        let result = check(&log([0, 1, 3, 4]), 5);
        assert_eq!(
            (result.lost, result.out_of_order, result.wrong()),
            (1, 0, 1)
        );
    }

    #[test]
    fn duplicates_and_reordering_are_counted() {
        let result = check(&log([0, 2, 1, 2, 3]), 4);
        assert_eq!(result.duplicated, 1);
        assert_eq!(result.out_of_order, 1);
        assert_eq!(result.lost, 0);
    }

    #[test]
    fn cut_and_merged_lines_are_malformed() {
        let mut text = log(0..3);
        text.truncate(text.len() - 10);
        let result = check(&text, 3);
        assert_eq!((result.malformed, result.lost, result.lines), (1, 1, 2));
        let mut merged = log(0..2);
        merged.remove(LINE_BYTES - 1);
        assert_eq!(check(&merged, 2).malformed, 1);
        assert_eq!(check(&log([9]), 5).malformed, 1);
    }
}
