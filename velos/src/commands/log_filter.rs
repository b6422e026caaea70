//! Searching logs: which lines `velos logs --grep/--since/--until/--err/--out` keep, and
//! `--json`'s one object per line. Pure: `logs.rs` feeds it the lines it reads.
//!
//! Order of work: pieces of a long line are joined first ([`Joiner`]: a regular
//! expression must see the whole line), then each whole line is judged ([`LineFilter`]),
//! then the last `-n` kept lines of each process are kept ([`LastLines`]) while the
//! daemon sends every line it has, its files included.
//!
//! A line read back from a log file carries no time: `--since` and `--until` cannot place
//! it, so it is left out, and counted ([`Verdict::NoTime`]) so that the caller can say so.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex_lite::Regex;
use serde::Serialize;
use velos_proto::{LogLine, Stream};

use crate::output::format_timestamp;

/// A point in time as typed: a duration back from now (`10m`), or a UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePoint {
    /// This long before now.
    Ago(Duration),
    /// This moment.
    At(SystemTime),
}

impl TimePoint {
    /// Reads `10m`, `1h 30m` (humantime durations) or `2024-05-01T12:00:00Z`,
    /// `2024-05-01 12:00:00` (UTC, the `Z` and fractions optional).
    pub fn parse(text: &str) -> Result<TimePoint, String> {
        if let Ok(duration) = humantime::parse_duration(text) {
            return Ok(TimePoint::Ago(duration));
        }
        humantime::parse_rfc3339_weak(text)
            .map(TimePoint::At)
            .map_err(|_| {
                format!(
                    "expected a duration such as 10m or 2h 30m, or a UTC time such as \
                     2024-05-01T12:00:00Z, got '{text}'"
                )
            })
    }

    /// Unix milliseconds, durations counted back from `now`.
    pub fn to_ms(self, now: SystemTime) -> u64 {
        let at = match self {
            TimePoint::Ago(duration) => now.checked_sub(duration).unwrap_or(UNIX_EPOCH),
            TimePoint::At(at) => at,
        };
        at.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
    }
}

/// What [`LineFilter::verdict`] says of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Shown.
    Keep,
    /// Left out.
    Drop,
    /// It passes every test but the time, which it does not carry (read back from a
    /// file): left out, and counted.
    NoTime,
}

/// The tests a line must pass.
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    /// Its text (invalid UTF-8 replaced) must match.
    pub pattern: Option<Regex>,
    /// Received at or after (Unix ms).
    pub since_ms: Option<u64>,
    /// Received at or before (Unix ms).
    pub until_ms: Option<u64>,
    /// Only this stream.
    pub stream: Option<Stream>,
}

impl LineFilter {
    /// Whether any test looks at the lines (else every line passes, and the daemon's
    /// last `-n` lines are the answer as they are).
    pub fn tests_lines(&self) -> bool {
        self.pattern.is_some()
            || self.since_ms.is_some()
            || self.until_ms.is_some()
            || self.stream.is_some()
    }

    /// Judges one whole line.
    pub fn verdict(&self, line: &LogLine) -> Verdict {
        if self.stream.is_some_and(|stream| stream != line.stream) {
            return Verdict::Drop;
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(&String::from_utf8_lossy(&line.line))
        {
            return Verdict::Drop;
        }
        if self.since_ms.is_none() && self.until_ms.is_none() {
            return Verdict::Keep;
        }
        let Some(time) = line.time_ms else {
            return Verdict::NoTime;
        };
        let after_since = self.since_ms.is_none_or(|since| time >= since);
        let before_until = self.until_ms.is_none_or(|until| time <= until);
        if after_since && before_until {
            Verdict::Keep
        } else {
            Verdict::Drop
        }
    }
}

/// Joins the pieces of a long line (`partial`, then `continued` items of the same process
/// and stream) into one line.
#[derive(Debug, Default)]
pub struct Joiner {
    open: Option<LogLine>,
}

impl Joiner {
    /// Takes one item; returns the lines it completed (none, one, or two: a line left
    /// open by a piece that never continued, then this one).
    pub fn push(&mut self, piece: LogLine) -> Vec<LogLine> {
        let mut done = Vec::new();
        match self.open.take() {
            Some(mut open)
                if piece.continued && (open.id, open.stream) == (piece.id, piece.stream) =>
            {
                open.line.extend_from_slice(&piece.line);
                open.partial = piece.partial;
                if open.partial {
                    self.open = Some(open);
                } else {
                    done.push(open);
                }
                return done;
            }
            // Not continued: whatever was open stays unended (a prompt).
            Some(open) => done.push(open),
            None => {}
        }
        let mut piece = piece;
        piece.continued = false;
        if piece.partial {
            self.open = Some(piece);
        } else {
            done.push(piece);
        }
        done
    }

    /// The line still open, if any (a prompt, or the end of a read).
    pub fn finish(&mut self) -> Option<LogLine> {
        self.open.take()
    }
}

/// Keeps the last `wanted` lines of each process, as lines come process by process.
#[derive(Debug)]
pub struct LastLines {
    wanted: usize,
    id: Option<u32>,
    lines: VecDeque<LogLine>,
}

impl LastLines {
    /// Keeps `wanted` lines per process.
    pub fn new(wanted: u32) -> LastLines {
        LastLines {
            wanted: usize::try_from(wanted).unwrap_or(usize::MAX),
            id: None,
            lines: VecDeque::new(),
        }
    }

    /// Takes a line; returns the previous process's lines once another's begin.
    pub fn push(&mut self, line: LogLine) -> Vec<LogLine> {
        let done = if self.id == Some(line.id) {
            Vec::new()
        } else {
            self.id = Some(line.id);
            self.lines.drain(..).collect()
        };
        if self.wanted > 0 {
            if self.lines.len() == self.wanted {
                self.lines.pop_front();
            }
            self.lines.push_back(line);
        }
        done
    }

    /// The last process's lines.
    pub fn finish(&mut self) -> Vec<LogLine> {
        self.lines.drain(..).collect()
    }
}

/// One line as `--json` writes it: `{"time","name","instance","id","stream","line"}` on
/// one line of text. `time` is RFC 3339 UTC with milliseconds, or null for a line read
/// back from a file; `name` and `instance` are the app's name and the instance number
/// (0 for an app of one) from `app`, else the line's own name (`api:1`) and null (a
/// process no longer listed); `line` is the text with invalid UTF-8 replaced (U+FFFD).
pub fn json_line(line: &LogLine, app: Option<&(String, u32)>) -> String {
    /// The keys in the documented order.
    #[derive(Serialize)]
    struct JsonLine<'a> {
        time: Option<String>,
        name: &'a str,
        instance: Option<u32>,
        id: u32,
        stream: &'static str,
        line: std::borrow::Cow<'a, str>,
    }
    let json = JsonLine {
        time: line.time_ms.map(|ms| format_timestamp(Some(ms))),
        name: app.map_or(&line.name, |(name, _)| name),
        instance: app.map(|(_, instance)| *instance),
        id: line.id,
        stream: line.stream.as_str(),
        line: String::from_utf8_lossy(&line.line),
    };
    serde_json::to_string(&json).expect("a struct of strings and numbers always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u32, stream: Stream, text: &str, time_ms: Option<u64>) -> LogLine {
        LogLine {
            id,
            name: format!("app{id}"),
            stream,
            line: text.as_bytes().to_vec(),
            partial: false,
            continued: false,
            time_ms,
        }
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|line| String::from_utf8_lossy(&line.line).into_owned())
            .collect()
    }

    #[test]
    fn times_read_as_durations_back_or_utc_moments() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(TimePoint::parse("10m").unwrap().to_ms(now), 9_400_000);
        assert_eq!(TimePoint::parse("1h 30m").unwrap().to_ms(now), 4_600_000);
        assert_eq!(TimePoint::parse("3h").unwrap().to_ms(now), 0, "before 1970");
        let at = TimePoint::parse("1970-01-01T00:00:05.250Z").unwrap();
        assert_eq!(at.to_ms(now), 5_250);
        assert_eq!(
            TimePoint::parse("1970-01-01 00:00:05").unwrap().to_ms(now),
            5_000
        );
        let error = TimePoint::parse("yesterday").unwrap_err();
        assert!(
            error.contains("'yesterday'") && error.contains("10m"),
            "{error}"
        );
    }

    #[test]
    fn every_test_must_pass_and_a_line_without_a_time_is_counted_apart() {
        let filter = LineFilter {
            pattern: Some(Regex::new("ERR|fail").unwrap()),
            since_ms: Some(100),
            until_ms: Some(200),
            stream: Some(Stream::Err),
        };
        assert!(filter.tests_lines());
        let verdict = |stream, text, time| filter.verdict(&line(0, stream, text, time));
        assert_eq!(verdict(Stream::Err, "ERR 1", Some(150)), Verdict::Keep);
        assert_eq!(verdict(Stream::Err, "ERR 1", Some(100)), Verdict::Keep);
        assert_eq!(verdict(Stream::Err, "ERR 1", Some(200)), Verdict::Keep);
        assert_eq!(verdict(Stream::Err, "ERR 1", Some(99)), Verdict::Drop);
        assert_eq!(verdict(Stream::Err, "ERR 1", Some(201)), Verdict::Drop);
        assert_eq!(verdict(Stream::Out, "ERR 1", Some(150)), Verdict::Drop);
        assert_eq!(verdict(Stream::Err, "ok", Some(150)), Verdict::Drop);
        assert_eq!(verdict(Stream::Err, "it failed", None), Verdict::NoTime);
        assert_eq!(verdict(Stream::Err, "ok", None), Verdict::Drop);
        let none = LineFilter::default();
        assert!(!none.tests_lines());
        assert_eq!(
            none.verdict(&line(0, Stream::Out, "x", None)),
            Verdict::Keep
        );
    }

    #[test]
    fn the_pattern_sees_the_whole_line_joined_from_its_pieces() {
        let mut joiner = Joiner::default();
        let mut first = line(0, Stream::Out, "abc", None);
        first.partial = true;
        assert!(joiner.push(first).is_empty());
        let mut middle = line(0, Stream::Out, "def", None);
        (middle.partial, middle.continued) = (true, true);
        assert!(joiner.push(middle).is_empty());
        let mut last = line(0, Stream::Out, "ghi", None);
        last.continued = true;
        let done = joiner.push(last);
        assert_eq!(texts(&done), ["abcdefghi"]);
        assert!(!done[0].partial && !done[0].continued);
        let filter = LineFilter {
            pattern: Some(Regex::new("cdefg").unwrap()),
            ..LineFilter::default()
        };
        assert_eq!(filter.verdict(&done[0]), Verdict::Keep);
        // A prompt never continued comes out as it is when the next line begins.
        let mut prompt = line(0, Stream::Out, "password: ", None);
        prompt.partial = true;
        assert!(joiner.push(prompt).is_empty());
        let done = joiner.push(line(0, Stream::Err, "next", None));
        assert_eq!(texts(&done), ["password: ", "next"]);
        assert!(done[0].partial);
        assert!(joiner.finish().is_none());
    }

    #[test]
    fn the_last_lines_are_kept_per_process() {
        let mut last = LastLines::new(2);
        let mut out = Vec::new();
        for (id, text) in [
            (0, "a1"),
            (0, "a2"),
            (0, "a3"),
            (1, "b1"),
            (2, "c1"),
            (2, "c2"),
        ] {
            out.extend(last.push(line(id, Stream::Out, text, None)));
        }
        out.extend(last.finish());
        assert_eq!(texts(&out), ["a2", "a3", "b1", "c1", "c2"]);
        let mut none = LastLines::new(0);
        assert!(none.push(line(0, Stream::Out, "x", None)).is_empty());
        assert!(none.finish().is_empty());
    }

    #[test]
    fn json_lines_have_the_documented_keys() {
        let mut bytes = line(3, Stream::Err, "bad \u{1b} byte", Some(5_250));
        bytes.line.push(0xff);
        let value: serde_json::Value =
            serde_json::from_str(&json_line(&bytes, Some(&("app".into(), 2)))).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "time": "1970-01-01T00:00:05.250Z",
                "name": "app",
                "instance": 2,
                "id": 3,
                "stream": "err",
                "line": "bad \u{1b} byte\u{fffd}",
            })
        );
        let from_file = json_line(&line(0, Stream::Out, "x", None), None);
        assert_eq!(
            from_file,
            r#"{"time":null,"name":"app0","instance":null,"id":0,"stream":"out","line":"x"}"#
        );
        assert!(!json_line(&bytes, None).contains('\n'));
    }
}
