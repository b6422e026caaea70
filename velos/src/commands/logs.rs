//! `velos logs`: the last lines a process wrote, oldest first, and with `--follow` every
//! new line as it is written; `velos flush` empties the files.
//!
//! Lines are bytes and need not be UTF-8, so they are written as they are to a locked,
//! buffered stdout, never through a `String`. Each gets a `name | ` prefix, coloured on a
//! terminal (red for stderr lines) and never padded, so `grep 'api |'` finds them.
//! `--raw` drops the prefix and prints exactly what the process wrote, plus the newline
//! the daemon took off. `--timestamps` puts the time the daemon received the line first.
//!
//! Following uses the SDK's `follow_logs` stream (the daemon pushes each line; nothing is
//! polled). Each line is flushed as soon as it is written, so a reader (a pipe, `grep`)
//! sees it at once and Ctrl-C (the default SIGINT exit) loses nothing already received.
//! It also ends when the daemon closes the stream as it shuts down, or when the process
//! followed is deleted: a note on stderr, and exit 0 (the stream is over, as `docker logs
//! -f` of a removed container).

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use futures_lite::StreamExt;
use futures_lite::future::block_on;
use velos_proto::{LogLine, Target};
use velos_sdk::{Error as SdkError, FollowEvent};

use super::{daemon, explain};
use crate::cli::LogsArgs;
use crate::output::Style;

/// How each line is written.
#[derive(Debug, Clone, Copy)]
struct LineFormat {
    raw: bool,
    timestamps: bool,
    style: Style,
}

/// Runs `velos logs`.
pub fn run(args: LogsArgs, style: Style) -> Result<()> {
    let target = args.target.as_deref().map_or(Target::All, Target::parse);
    let format = LineFormat {
        raw: args.raw,
        timestamps: args.timestamps,
        style,
    };
    if args.follow {
        return follow(target, args.lines, format);
    }
    let logs = block_on(daemon()?.logs(target.clone(), args.lines)).map_err(explain)?;
    for warning in &logs.warnings {
        eprintln!("warning: {warning}");
    }
    let lines = logs.lines;
    if lines.is_empty() && args.lines > 0 {
        match target {
            Target::All => eprintln!("no log lines yet"),
            target => eprintln!("no log lines from '{target}' yet"),
        }
        return Ok(());
    }
    let mut stdout = BufWriter::new(io::stdout().lock());
    write_lines(&mut stdout, &lines, format)?;
    stdout.flush()?;
    Ok(())
}

/// `velos logs --follow`: the last lines, then each new one, until the stream ends.
fn follow(target: Target, lines: u32, format: LineFormat) -> Result<()> {
    let mut follow = block_on(daemon()?.follow_logs(target, lines)).map_err(explain)?;
    let initial = follow.take_initial();
    for warning in &initial.warnings {
        eprintln!("warning: {warning}");
    }
    let mut stdout = BufWriter::new(io::stdout().lock());
    write_lines(&mut stdout, &initial.lines, format)?;
    stdout.flush()?;
    // The stream ends right after a `log.end` when every followed process was deleted.
    let mut ended = false;
    loop {
        match block_on(follow.next()) {
            Some(Ok(FollowEvent::Line(line))) => {
                ended = false;
                write_line(&mut stdout, &line, format)?;
                stdout.flush()?;
            }
            Some(Ok(FollowEvent::Gap(skipped))) => {
                ended = false;
                eprintln!("{}", gap_note(skipped));
            }
            Some(Ok(FollowEvent::Ended(end))) => {
                ended = true;
                eprintln!(
                    "velos: '{}' (id {}) was {}; no more lines from it",
                    end.name, end.id, end.reason
                );
            }
            Some(Ok(_)) => {}
            None if ended => return Ok(()),
            // The daemon went away mid-message: as much an end as a clean close.
            Some(Err(SdkError::Disconnected)) | None => {
                eprintln!("velos: the daemon stopped; no more lines to follow");
                return Ok(());
            }
            Some(Err(err)) => return Err(explain(err).context("following the logs")),
        }
    }
}

/// `velos: 3 lines skipped`: the daemon never waits for a slow reader, so lines that came
/// faster than this terminal (or pipe) took them were dropped from the stream (they are
/// still in the log files).
fn gap_note(skipped: u64) -> String {
    let lines = if skipped == 1 { "line" } else { "lines" };
    format!("velos: {skipped} {lines} skipped")
}

/// Writes `lines` with [`write_line`].
fn write_lines(out: &mut impl Write, lines: &[LogLine], format: LineFormat) -> io::Result<()> {
    for line in lines {
        write_line(out, line, format)?;
    }
    Ok(())
}

/// Writes one line: the timestamp if asked, the prefix unless `raw`, the bytes, and
/// `\n` (unless `raw` and the process never wrote that newline).
fn write_line(out: &mut impl Write, line: &LogLine, format: LineFormat) -> io::Result<()> {
    if format.timestamps {
        out.write_all(format.style.timestamp(line.time_ms).as_bytes())?;
    }
    if !format.raw {
        out.write_all(format.style.log_prefix(&line.name, line.stream).as_bytes())?;
    }
    out.write_all(&line.line)?;
    if !(format.raw && line.partial) {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `velos flush [name|id|all]`
pub fn flush(target: Option<&str>) -> Result<()> {
    let target = target.map_or(Target::All, Target::parse);
    let flushed = block_on(daemon()?.flush(target.clone())).map_err(explain)?;
    if flushed.is_empty() && target == Target::All {
        eprintln!("no processes to flush");
        return Ok(());
    }
    // A name no longer in the list whose files the daemon emptied.
    if let (true, Target::Name(name)) = (flushed.is_empty(), &target) {
        writeln!(
            io::stdout().lock(),
            "flushed the log files '{name}' left (it is not in the list)"
        )?;
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    for process in &flushed {
        writeln!(
            stdout,
            "flushed the logs of '{}' (id {})",
            process.name, process.id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use velos_proto::Stream;

    use super::*;

    fn line(name: &str, stream: Stream, bytes: &[u8]) -> LogLine {
        LogLine {
            id: 0,
            name: name.into(),
            stream,
            line: bytes.to_vec(),
            partial: false,
            time_ms: None,
        }
    }

    fn lines() -> Vec<LogLine> {
        vec![
            line("api", Stream::Out, b"listening on :3000"),
            line("worker", Stream::Err, b"bad byte \xff here"),
            line("api", Stream::Out, b""),
        ]
    }

    fn format(raw: bool, timestamps: bool, style: Style) -> LineFormat {
        LineFormat {
            raw,
            timestamps,
            style,
        }
    }

    #[test]
    fn lines_get_a_name_prefix() {
        let mut out = Vec::new();
        write_lines(&mut out, &lines(), format(false, false, Style::plain())).unwrap();
        assert_eq!(
            out,
            b"api | listening on :3000\nworker | bad byte \xff here\napi | \n"
        );
    }

    #[test]
    fn raw_lines_are_the_bytes_as_written() {
        let mut out = Vec::new();
        write_lines(
            &mut out,
            &lines(),
            format(true, false, Style::new(true, None)),
        )
        .unwrap();
        assert_eq!(out, b"listening on :3000\nbad byte \xff here\n\n");
    }

    #[test]
    fn coloured_prefixes_leave_the_line_alone() {
        let mut out = Vec::new();
        let style = Style::new(true, None);
        write_lines(&mut out, &lines()[1..2], format(false, false, style)).unwrap();
        assert_eq!(out, b"\x1b[31mworker |\x1b[39m bad byte \xff here\n");
    }

    #[test]
    fn timestamps_come_first_and_unknown_ones_keep_the_column() {
        let mut timed = line("api", Stream::Out, b"up");
        timed.time_ms = Some(1_714_564_800_123);
        let untimed = line("api", Stream::Out, b"old");
        let mut out = Vec::new();
        write_lines(
            &mut out,
            &[untimed, timed],
            format(false, true, Style::plain()),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "-                        api | old\n2024-05-01T12:00:00.123Z api | up\n"
        );
    }

    #[test]
    fn gaps_are_counted_in_words() {
        assert_eq!(gap_note(1), "velos: 1 line skipped");
        assert_eq!(gap_note(250), "velos: 250 lines skipped");
    }
}
