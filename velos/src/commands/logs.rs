//! `velos logs`: the last lines a process wrote, oldest first.
//!
//! Lines are bytes and need not be UTF-8, so they are written as they are to a locked,
//! buffered stdout, never through a `String`. Each gets a `name | ` prefix, coloured on a
//! terminal (red for stderr lines) and never padded, so `grep 'api |'` finds them.
//! `--raw` drops the prefix and prints exactly what the process wrote, plus the newline
//! the daemon took off.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use futures_lite::future::block_on;
use velos_proto::{LogLine, Target};

use super::{daemon, explain};
use crate::cli::LogsArgs;
use crate::output::Style;

/// Runs `velos logs`.
pub fn run(args: LogsArgs, style: Style) -> Result<()> {
    let target = args.target.as_deref().map_or(Target::All, Target::parse);
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
    write_lines(&mut stdout, &lines, args.raw, style)?;
    stdout.flush()?;
    Ok(())
}

/// Writes `lines`, prefixed unless `raw`, each ending in `\n` (unless `raw` and the
/// process never wrote that newline).
fn write_lines(out: &mut impl Write, lines: &[LogLine], raw: bool, style: Style) -> io::Result<()> {
    for line in lines {
        if !raw {
            out.write_all(style.log_prefix(&line.name, line.stream).as_bytes())?;
        }
        out.write_all(&line.line)?;
        if !(raw && line.partial) {
            out.write_all(b"\n")?;
        }
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

    #[test]
    fn lines_get_a_name_prefix() {
        let mut out = Vec::new();
        write_lines(&mut out, &lines(), false, Style::plain()).unwrap();
        assert_eq!(
            out,
            b"api | listening on :3000\nworker | bad byte \xff here\napi | \n"
        );
    }

    #[test]
    fn raw_lines_are_the_bytes_as_written() {
        let mut out = Vec::new();
        write_lines(&mut out, &lines(), true, Style::new(true, None)).unwrap();
        assert_eq!(out, b"listening on :3000\nbad byte \xff here\n\n");
    }

    #[test]
    fn coloured_prefixes_leave_the_line_alone() {
        let mut out = Vec::new();
        let style = Style::new(true, None);
        write_lines(&mut out, &lines()[1..2], false, style).unwrap();
        assert_eq!(out, b"\x1b[31mworker |\x1b[39m bad byte \xff here\n");
    }
}
