//! `velos logs`: the last lines a process wrote, oldest first, and with `--follow` every
//! new line as it is written; `velos flush` empties the files.
//!
//! Lines are bytes and need not be UTF-8, so they are written as they are to a locked,
//! buffered stdout, never through a `String`. Each gets a `name | ` prefix, coloured on a
//! terminal (red for stderr lines); without a name, the names are right-aligned so that
//! every line's text starts in one column and `grep 'api |'` still finds them. On a
//! terminal, control characters but tab are shown escaped (`\x1b`), so an app's output
//! (often text an attacker chose, such as request paths) cannot clear the screen, retitle
//! the window or set the clipboard. `--raw` drops the prefix and prints exactly what the
//! process wrote, plus the newline the daemon took off. `--timestamps` puts the time the
//! daemon received the line first.
//!
//! Lines come a page at a time (`Client::logs_page`), each page printed as it arrives, so
//! `-n` may ask for any number of lines; a long line may come in pieces (`partial`, then
//! `continued`), which are printed as one line, as is a prompt the program has not ended
//! yet and its end when it comes.
//!
//! Following uses the SDK's `follow_logs` stream (the daemon pushes each line; nothing is
//! polled). Output is flushed whenever nothing more has arrived, so a reader (a pipe,
//! `grep`) sees each line at once, while a burst is written a buffer at a time rather than
//! a write per line; Ctrl-C (the default SIGINT exit) can lose only lines that arrived in
//! that same instant and are still in the buffer.
//! It also ends when the daemon closes the stream as it shuts down, or when the process
//! followed is deleted: a note on stderr, and exit 0 (the stream is over, as `docker logs
//! -f` of a removed container).

use std::collections::HashMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::SystemTime;

use anyhow::Result;
use async_io::block_on;
use futures_lite::StreamExt;
use futures_lite::future;
use velos_proto::{LogLine, LogReadParams, Stream, Target};
use velos_sdk::{Error as SdkError, FollowEvent};

use super::log_filter::{Joiner, LastLines, LineFilter, Verdict, json_line};
use super::{daemon, explain};
use crate::cli::LogsArgs;
use crate::output::Style;

/// How each line is written.
#[derive(Debug, Clone, Copy)]
struct LineFormat {
    raw: bool,
    timestamps: bool,
    style: Style,
    /// Show control characters (but tab) escaped: stdout is a terminal and not `--raw`,
    /// so an app's output cannot move the cursor, retitle the window or set the
    /// clipboard.
    escape: bool,
}

/// Runs `velos logs`.
pub fn run(args: LogsArgs, style: Style) -> Result<()> {
    let target = args.target.as_deref().map_or(Target::All, Target::parse);
    let format = LineFormat {
        raw: args.raw,
        timestamps: args.timestamps,
        style,
        escape: !args.raw && io::stdout().is_terminal(),
    };
    let now = SystemTime::now();
    let filter = LineFilter {
        pattern: args.grep.clone(),
        since_ms: args.since.map(|since| since.to_ms(now)),
        until_ms: args.until.map(|until| until.to_ms(now)),
        stream: match (args.err, args.out) {
            (true, _) => Some(Stream::Err),
            (_, true) => Some(Stream::Out),
            _ => None,
        },
    };
    let search = (filter.tests_lines() || args.json).then(|| Search::new(filter, args.json));
    let mut client = daemon()?;
    // Every process's lines: names padded to the longest, so the lines start in one column.
    let width = match (&target, args.raw || args.json) {
        (Target::All, false) => block_on(client.list())
            .map_err(explain)?
            .iter()
            .map(|process| process.name.len())
            .max()
            .unwrap_or(0),
        _ => 0,
    };
    if args.follow {
        return follow(client, target, args.lines, format, width, search);
    }
    if let Some(search) = search {
        return search.run(client, target, args.lines, format, width);
    }
    let mut params = LogReadParams {
        target: target.clone(),
        lines: args.lines,
        cursor: None,
    };
    let mut printer = Printer::new(BufWriter::new(io::stdout().lock()), format);
    printer.width = width;
    let mut any = false;
    // Page by page (see `Client::logs_page`): however many lines were asked for, each is
    // printed whole, and neither side holds more than a page.
    loop {
        let page = block_on(client.logs_page(&params)).map_err(explain)?;
        for warning in &page.warnings {
            eprintln!("warning: {warning}");
        }
        any |= !page.lines.is_empty();
        printer.lines(&page.lines)?;
        match page.next {
            Some(next) => params.cursor = Some(next),
            None => break,
        }
    }
    printer.finish()?;
    if !any && args.lines > 0 {
        match target {
            Target::All => eprintln!("no log lines yet"),
            target => eprintln!("no log lines from '{target}' yet"),
        }
    }
    Ok(())
}

/// `velos logs --follow`: the last lines, then each new one, until the stream ends.
fn follow(
    mut client: velos_sdk::Client,
    target: Target,
    lines: u32,
    format: LineFormat,
    width: usize,
    mut search: Option<Search>,
) -> Result<()> {
    let mut follow = block_on(client.follow_logs(target, lines)).map_err(explain)?;
    let initial = follow.take_initial();
    for warning in &initial.warnings {
        eprintln!("warning: {warning}");
    }
    let mut printer = Printer::new(BufWriter::new(io::stdout().lock()), format);
    printer.width = width;
    // With filters, a line is written once it is whole and has passed them.
    let mut write = |printer: &mut Printer<_>, line: LogLine| match &mut search {
        Some(search) => search
            .judge(line)
            .iter()
            .try_for_each(|kept| search.write(printer, kept, &mut client)),
        None => printer.line(&line),
    };
    for line in initial.lines {
        write(&mut printer, line)?;
    }
    printer.flush()?;
    // The stream ends right after a `log.end` when every followed process was deleted.
    let mut ended = false;
    let result = loop {
        // What has already arrived is written in one go; the output is flushed only when
        // the stream has nothing more for now (a write per line would slow a reader of a
        // burst into gaps).
        let next = match block_on(future::poll_once(follow.next())) {
            Some(next) => next,
            None => {
                printer.flush()?;
                block_on(follow.next())
            }
        };
        match next {
            Some(Ok(FollowEvent::Line(line))) => {
                ended = false;
                write(&mut printer, line)?;
            }
            Some(Ok(FollowEvent::Gap(skipped))) => {
                ended = false;
                printer.interrupt()?;
                printer.flush()?;
                eprintln!("{}", gap_note(skipped));
            }
            Some(Ok(FollowEvent::Ended(end))) => {
                ended = true;
                printer.interrupt()?;
                printer.flush()?;
                eprintln!(
                    "velos: '{}' (id {}) was {}; no more lines from it",
                    end.name, end.id, end.reason
                );
            }
            Some(Ok(_)) => {}
            None if ended => break Ok(()),
            // The daemon went away mid-message: as much an end as a clean close.
            Some(Err(SdkError::Disconnected)) | None => {
                printer.interrupt()?;
                eprintln!("velos: the daemon stopped; no more lines to follow");
                break Ok(());
            }
            Some(Err(err)) => break Err(explain(err).context("following the logs")),
        }
    };
    printer.finish()?;
    result
}

/// `velos logs` with --grep, --since, --until, --err, --out or --json: pieces joined into
/// whole lines, judged by the [`LineFilter`], written as text or JSON.
struct Search {
    filter: LineFilter,
    joiner: Joiner,
    json: bool,
    /// Lines that passed every test but the time they do not carry.
    untimed: u64,
    /// Lines written.
    shown: u64,
    /// The app name and instance number of each process id seen (`--json`).
    instances: HashMap<u32, Option<(String, u32)>>,
}

impl Search {
    fn new(filter: LineFilter, json: bool) -> Search {
        Search {
            filter,
            joiner: Joiner::default(),
            json,
            untimed: 0,
            shown: 0,
            instances: HashMap::new(),
        }
    }

    /// Takes one item as the daemon sent it; returns the whole lines that passed.
    fn judge(&mut self, piece: LogLine) -> Vec<LogLine> {
        let whole = self.joiner.push(piece);
        self.keep(whole)
    }

    /// The line left open at the end (a prompt), if it passes.
    fn judge_rest(&mut self) -> Vec<LogLine> {
        let rest = self.joiner.finish().into_iter().collect();
        self.keep(rest)
    }

    fn keep(&mut self, lines: Vec<LogLine>) -> Vec<LogLine> {
        lines
            .into_iter()
            .filter(|line| match self.filter.verdict(line) {
                Verdict::Keep => true,
                Verdict::Drop => false,
                Verdict::NoTime => {
                    self.untimed += 1;
                    false
                }
            })
            .collect()
    }

    /// Writes one kept line; `client` tells `--json` which instance an id is.
    fn write<W: Write>(
        &mut self,
        printer: &mut Printer<W>,
        line: &LogLine,
        client: &mut velos_sdk::Client,
    ) -> io::Result<()> {
        self.shown += 1;
        if !self.json {
            return printer.line(line);
        }
        if !self.instances.contains_key(&line.id) {
            self.look_up(line.id, client);
        }
        let app = self.instances.get(&line.id).cloned().flatten();
        writeln!(printer.out, "{}", json_line(line, app.as_ref()))
    }

    /// Learns the app name and instance number of the process `id` from a fresh list
    /// (one per id not seen before: a process started or scaled up while following);
    /// `None` for an id the list does not have (deleted meanwhile).
    fn look_up(&mut self, id: u32, client: &mut velos_sdk::Client) {
        if let Ok(list) = block_on(client.list()) {
            self.instances.extend(
                list.into_iter()
                    .map(|process| (process.id, Some((process.name, process.instance)))),
            );
        }
        self.instances.entry(id).or_insert(None);
    }

    /// Reads every line of the target's logs (the files included when a test looks at
    /// the lines) page by page, and writes the last `lines` that pass of each process.
    fn run(
        mut self,
        mut client: velos_sdk::Client,
        target: Target,
        lines: u32,
        format: LineFormat,
        width: usize,
    ) -> Result<()> {
        let mut params = LogReadParams {
            target: target.clone(),
            // Which lines pass is known only once they are read: all of them, then.
            lines: if self.filter.tests_lines() {
                u32::MAX
            } else {
                lines
            },
            cursor: None,
        };
        let mut printer = Printer::new(BufWriter::new(io::stdout().lock()), format);
        printer.width = width;
        let mut last = LastLines::new(lines);
        loop {
            let page = block_on(client.logs_page(&params)).map_err(explain)?;
            for warning in &page.warnings {
                eprintln!("warning: {warning}");
            }
            for piece in page.lines {
                for kept in self.judge(piece) {
                    for line in last.push(kept) {
                        self.write(&mut printer, &line, &mut client)?;
                    }
                }
            }
            match page.next {
                Some(next) => params.cursor = Some(next),
                None => break,
            }
        }
        for kept in self.judge_rest() {
            for line in last.push(kept) {
                self.write(&mut printer, &line, &mut client)?;
            }
        }
        for line in last.finish() {
            self.write(&mut printer, &line, &mut client)?;
        }
        printer.finish()?;
        self.notes(&target, lines);
        Ok(())
    }

    /// What stderr should know: lines left out for want of a time, nothing found.
    fn notes(&self, target: &Target, lines: u32) {
        if self.untimed > 0 {
            let (count, carry) = if self.untimed == 1 {
                ("1 line", "carries")
            } else {
                (&*format!("{} lines", self.untimed), "carry")
            };
            eprintln!(
                "velos: {count} read back from the log files {carry} no time; --since and \
                 --until left {} out",
                if self.untimed == 1 { "it" } else { "them" }
            );
        }
        if self.shown == 0 && lines > 0 {
            match target {
                Target::All => eprintln!("no matching log lines"),
                target => eprintln!("no matching log lines from '{target}'"),
            }
        }
    }
}

/// How `velos runtime` writes its apps' lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// `name | line`, as `velos logs`.
    Prefixed,
    /// The lines exactly as written (`--raw`).
    Raw,
    /// One JSON object per line (`--json`), as `velos logs --json`.
    Json,
}

/// `velos runtime`: writes every line of `follow` to this process's stdout (the apps'
/// stdout lines) or stderr (their stderr lines) until the stream ends (the daemon shuts
/// down). `client` tells `--json` which instance an id is. Each output is flushed when
/// the stream has nothing more for now, as `velos logs -f` does.
pub fn relay(
    mut follow: velos_sdk::LogFollow,
    mode: Relay,
    style: Style,
    mut client: velos_sdk::Client,
) -> Result<()> {
    let format = |terminal: bool| LineFormat {
        raw: mode == Relay::Raw,
        timestamps: false,
        style,
        escape: mode != Relay::Raw && terminal,
    };
    let stdout: Box<dyn Write> = Box::new(io::stdout());
    let stderr: Box<dyn Write> = Box::new(io::stderr());
    let mut printers = [
        Printer::new(BufWriter::new(stdout), format(io::stdout().is_terminal())),
        Printer::new(BufWriter::new(stderr), format(io::stderr().is_terminal())),
    ];
    let mut search = (mode == Relay::Json).then(|| Search::new(LineFilter::default(), true));
    loop {
        let next = match block_on(future::poll_once(follow.next())) {
            Some(next) => next,
            None => {
                for printer in &mut printers {
                    printer.flush()?;
                }
                block_on(follow.next())
            }
        };
        match next {
            Some(Ok(FollowEvent::Line(line))) => {
                let printer = &mut printers[usize::from(line.stream == Stream::Err)];
                match &mut search {
                    Some(search) => search
                        .judge(line)
                        .iter()
                        .try_for_each(|kept| search.write(printer, kept, &mut client))?,
                    None => printer.line(&line)?,
                }
            }
            Some(Ok(FollowEvent::Gap(skipped))) => {
                for printer in &mut printers {
                    printer.interrupt()?;
                    printer.flush()?;
                }
                eprintln!("{}", gap_note(skipped));
            }
            Some(Ok(_)) => {}
            Some(Err(SdkError::Disconnected)) | None => break,
            Some(Err(error)) => return Err(explain(error).context("following the logs")),
        }
    }
    for printer in &mut printers {
        printer.finish()?;
    }
    Ok(())
}

/// `velos: 3 lines skipped`: the daemon never waits for a slow reader, so lines that came
/// faster than this terminal (or pipe) took them were dropped from the stream (they are
/// still in the log files).
fn gap_note(skipped: u64) -> String {
    let lines = if skipped == 1 { "line" } else { "lines" };
    format!("velos: {skipped} {lines} skipped")
}

/// Writes lines as they come: a prefix (unless raw), the bytes, the newline. A line that
/// is `partial` (no newline yet: a prompt, or a long line coming in pieces) stays open:
/// the `continued` item after it is written right on, without a prefix; anything else
/// first ends it (unless raw, which writes only what the process wrote).
struct Printer<W: Write> {
    out: W,
    format: LineFormat,
    /// The process and stream of a line written without its end.
    open: Option<(u32, Stream)>,
    /// Names are right-aligned to this width (0: not padded); a longer name widens it.
    width: usize,
}

impl<W: Write> Printer<W> {
    fn new(out: W, format: LineFormat) -> Printer<W> {
        Printer {
            out,
            format,
            open: None,
            width: 0,
        }
    }

    fn lines(&mut self, lines: &[LogLine]) -> io::Result<()> {
        lines.iter().try_for_each(|line| self.line(line))
    }

    fn line(&mut self, line: &LogLine) -> io::Result<()> {
        let key = (line.id, line.stream);
        if !(line.continued && self.open == Some(key)) {
            self.interrupt()?;
            if self.format.timestamps {
                let stamp = self.format.style.timestamp(line.time_ms);
                self.out.write_all(stamp.as_bytes())?;
            }
            if !self.format.raw {
                if self.width > 0 {
                    self.width = self.width.max(line.name.len());
                    let pad = self.width - line.name.len();
                    write!(self.out, "{:pad$}", "")?;
                }
                let prefix = self.format.style.log_prefix(&line.name, line.stream);
                self.out.write_all(prefix.as_bytes())?;
            }
        }
        if self.format.escape {
            write_escaped(&mut self.out, &line.line)?;
        } else {
            self.out.write_all(&line.line)?;
        }
        if line.partial {
            self.open = Some(key);
        } else {
            self.open = None;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Ends an open line (something else is about to be written), unless raw.
    fn interrupt(&mut self) -> io::Result<()> {
        if self.open.take().is_some() && !self.format.raw {
            self.out.write_all(b"\n")?;
            self.out.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends an open line and flushes.
    fn finish(&mut self) -> io::Result<()> {
        self.interrupt()?;
        self.out.flush()
    }
}

/// Writes `bytes` with every control character but tab shown escaped (`\x1b`, `\u{9b}`)
/// and bytes that are not UTF-8 as `\xff`: what reaches the terminal is text only.
fn write_escaped(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let harmless = |b: &u8| (0x20..0x7f).contains(b) || *b == b'\t';
    if bytes.iter().all(harmless) {
        return out.write_all(bytes);
    }
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut start = 0;
        for (at, c) in valid.char_indices() {
            if c.is_control() && c != '\t' {
                out.write_all(&valid.as_bytes()[start..at])?;
                match u8::try_from(c) {
                    Ok(byte) if byte < 0x80 => write!(out, "\\x{byte:02x}")?,
                    _ => write!(out, "\\u{{{:x}}}", u32::from(c))?,
                }
                start = at + c.len_utf8();
            }
        }
        out.write_all(&valid.as_bytes()[start..])?;
        for byte in chunk.invalid() {
            write!(out, "\\x{byte:02x}")?;
        }
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
            continued: false,
            time_ms: None,
        }
    }

    fn write_lines(out: &mut Vec<u8>, lines: &[LogLine], format: LineFormat) -> io::Result<()> {
        let mut printer = Printer::new(out, format);
        printer.lines(lines)?;
        printer.finish()
    }

    #[test]
    fn control_characters_are_escaped_for_a_terminal() {
        let mut out = Vec::new();
        write_escaped(
            &mut out,
            b"a\tb\x1b]0;owned\x07\x1b[2J \xc2\x9b \xff \xe2\x9c\x93 \x7f",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\tb\\x1b]0;owned\\x07\\x1b[2J \\u{9b} \\xff \u{2713} \\x7f"
        );
    }

    #[test]
    fn names_are_right_aligned_to_the_longest() {
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out, format(false, false, Style::plain()));
        printer.width = 6;
        printer.lines(&lines()).unwrap();
        printer.finish().unwrap();
        assert_eq!(
            out,
            b"   api | listening on :3000\nworker | bad byte \xff here\n   api | \n"
        );
    }

    #[test]
    fn pieces_join_and_open_lines_end_before_anything_else() {
        let piece = |name: &str, bytes: &[u8], partial, continued| LogLine {
            partial,
            continued,
            ..line(name, Stream::Out, bytes)
        };
        let lines = [
            piece("api", b"long ", true, false),
            piece("api", b"line", false, true),
            piece("api", b"Password: ", true, false),
            piece("db", b"up", false, false),
            piece("api", b"tail", true, false),
        ];
        let mut out = Vec::new();
        write_lines(&mut out, &lines, format(false, false, Style::plain())).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "api | long line\napi | Password: \ndb | up\napi | tail\n"
        );
        let mut out = Vec::new();
        write_lines(&mut out, &lines, format(true, false, Style::plain())).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "long line\nPassword: up\ntail"
        );
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
            escape: false,
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
