//! How results look: [`Style`] (colour or not, decided once), the process table and its
//! columns (uptime or restart delay, CPU, memory, last exit), and log timestamps.
//!
//! Colour is on only when stdout is a terminal and `NO_COLOR` is not set (to anything,
//! even empty: the contract says "set"). Call sites never check either themselves; they
//! ask the style (`style.status(s)`), which returns plain text when colour is off.
//! `--json` and `--raw` output never goes through here.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::IsTerminal;
use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{CellAlignment, Table};
use owo_colors::OwoColorize;
use velos_proto::{ProcessInfo, ProcessStatus, Stream};

use crate::size::{format_bytes, format_limit};

/// Whether output is coloured; decided once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn detect() -> Style {
        Style::new(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }

    /// The decision itself, apart from where its inputs come from.
    pub fn new(stdout_is_terminal: bool, no_color: Option<&OsStr>) -> Style {
        Style {
            color: stdout_is_terminal && no_color.is_none(),
        }
    }

    /// Never colour.
    #[cfg(test)]
    pub fn plain() -> Style {
        Style { color: false }
    }

    /// A status word, coloured by what it means: running green, stopping and waiting
    /// yellow, stopped dim, errored red.
    pub fn status(self, status: ProcessStatus) -> String {
        let word = status.as_str();
        if !self.color {
            return word.to_owned();
        }
        match status {
            ProcessStatus::Running => word.green().to_string(),
            ProcessStatus::Starting | ProcessStatus::Stopping | ProcessStatus::Waiting => {
                word.yellow().to_string()
            }
            ProcessStatus::Stopped => word.dimmed().to_string(),
            ProcessStatus::Errored => word.red().to_string(),
            _ => word.to_owned(),
        }
    }

    /// The time in front of a log line (`2024-05-01T12:00:00.123Z `), dimmed; `-` padded
    /// to the same width for a line whose time is not known (read back from a file).
    pub fn timestamp(self, time_ms: Option<u64>) -> String {
        let text = format_timestamp(time_ms);
        if self.color {
            format!("{} ", text.dimmed())
        } else {
            format!("{text} ")
        }
    }

    /// The `name | ` in front of a log line: green for stdout, red for stderr.
    pub fn log_prefix(self, name: &str, stream: Stream) -> String {
        let prefix = format!("{name} |");
        if !self.color {
            return format!("{prefix} ");
        }
        match stream {
            Stream::Out => format!("{} ", prefix.green()),
            Stream::Err => format!("{} ", prefix.red()),
        }
    }
}

/// comfy-table's `UTF8_FULL_CONDENSED` (no lines between rows) with solid inner
/// vertical lines: one kind of vertical line, which [`color_status_cell`] splits on.
const TABLE_STYLE: &str = "││──╞═╪╡│    ┬┴┌┐└┘";

/// A column of the `velos list` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Name,
    Pid,
    Status,
    Uptime,
    Restarts,
    Cpu,
    Mem,
    Exit,
}

/// Every column, in table order.
const COLUMNS: [Column; 9] = [
    Column::Id,
    Column::Name,
    Column::Pid,
    Column::Status,
    Column::Uptime,
    Column::Restarts,
    Column::Cpu,
    Column::Mem,
    Column::Exit,
];

/// The columns a narrow terminal loses, least useful first: the last exit and the restart
/// count are in `velos info`, CPU matters less than memory, the pid less than the uptime.
/// Id, name and status always stay.
const DROP_ORDER: [Column; 6] = [
    Column::Exit,
    Column::Restarts,
    Column::Cpu,
    Column::Pid,
    Column::Mem,
    Column::Uptime,
];

/// Names are shortened to this many characters before any column is dropped...
const NAME_FLOOR: usize = 12;
/// ...and to at most this few once every droppable column is gone.
const NAME_MIN: usize = 4;

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Name => "name",
            Column::Pid => "pid",
            Column::Status => "status",
            Column::Uptime => "uptime",
            Column::Restarts => "restarts",
            Column::Cpu => "cpu",
            Column::Mem => "mem",
            Column::Exit => "exit",
        }
    }

    fn cell(self, process: &ProcessInfo) -> String {
        match self {
            Column::Id => process.id.to_string(),
            Column::Name => process.name.clone(),
            Column::Pid => process
                .pid
                .map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
            Column::Status => process.status.as_str().to_owned(),
            Column::Uptime => uptime_column(process),
            Column::Restarts => process.restarts.to_string(),
            Column::Cpu => cpu_column(process),
            Column::Mem => match process.max_memory_bytes {
                Some(limit) => format!("{}/{}", memory_column(process), format_limit(limit)),
                None => memory_column(process),
            },
            Column::Exit => exit_column(process),
        }
    }

    fn right_aligned(self) -> bool {
        matches!(
            self,
            Column::Id | Column::Pid | Column::Restarts | Column::Cpu | Column::Mem
        )
    }
}

/// The names of the apps in `processes` that have several instances (or one numbered
/// above 0): their rows show which instance each is.
pub fn apps_of_several(processes: &[ProcessInfo]) -> HashSet<&str> {
    let mut seen = HashSet::new();
    let mut several = HashSet::new();
    for process in processes {
        if !seen.insert(process.name.as_str()) || process.instance > 0 {
            several.insert(process.name.as_str());
        }
    }
    several
}

/// A process as the user addresses it: `web:2` for an instance of an app of several
/// (see [`apps_of_several`]), else its name.
pub fn label(process: &ProcessInfo, several: &HashSet<&str>) -> String {
    if several.contains(process.name.as_str()) {
        format!("{}:{}", process.name, process.instance)
    } else {
        process.name.clone()
    }
}

/// Which columns to show and how long a name may be, for a table at most `width`
/// characters wide (no limit when `None`). `widths` are the columns' natural widths.
fn fit(widths: &[(Column, usize)], width: Option<usize>) -> (Vec<Column>, usize) {
    let mut kept: Vec<Column> = COLUMNS.to_vec();
    let name_full = widths
        .iter()
        .find(|(column, _)| *column == Column::Name)
        .map_or(NAME_MIN, |(_, width)| *width);
    let Some(width) = width else {
        return (kept, name_full);
    };
    // Each column takes its width plus a space either side and one border; plus the last.
    let others = |kept: &[Column]| -> usize {
        widths
            .iter()
            .filter(|(column, _)| *column != Column::Name && kept.contains(column))
            .map(|(_, width)| width + 3)
            .sum::<usize>()
            + 3
            + 1
    };
    let room = |kept: &[Column]| width.saturating_sub(others(kept));
    if room(&kept) >= name_full.min(NAME_FLOOR) {
        return (kept.clone(), name_full.min(room(&kept)));
    }
    for dropped in DROP_ORDER {
        kept.retain(|column| *column != dropped);
        if room(&kept) >= name_full.min(NAME_FLOOR) {
            return (kept.clone(), name_full.min(room(&kept)));
        }
    }
    let name_width = room(&kept).max(NAME_MIN).min(name_full);
    (kept, name_width)
}

/// `name` cut to `width` characters by an ellipsis in the middle when it is longer: the
/// end stays, since names often differ there (`api-1`, `api-2`).
fn shorten(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_owned();
    }
    let kept = width.saturating_sub(1);
    let tail = kept / 2;
    let head = kept - tail;
    let mut short: String = chars[..head].iter().collect();
    short.push('…');
    short.extend(&chars[chars.len() - tail..]);
    short
}

/// The `velos list` table, one row per process, ending with a newline. With a `width`,
/// every line fits in it (down to about 30 characters): names are shortened first (to 12
/// characters), then the least useful columns dropped ([`DROP_ORDER`]), then names
/// shortened further.
pub fn process_table(processes: &[ProcessInfo], style: Style, width: Option<usize>) -> String {
    let several = apps_of_several(processes);
    let rows: Vec<Vec<String>> = processes
        .iter()
        .map(|process| {
            COLUMNS
                .iter()
                .map(|column| match column {
                    Column::Name => label(process, &several),
                    column => column.cell(process),
                })
                .collect()
        })
        .collect();
    let widths: Vec<(Column, usize)> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let widest = rows.iter().map(|row| row[i].chars().count()).max();
            (*column, widest.unwrap_or(0).max(column.header().len()))
        })
        .collect();
    let (kept, name_width) = fit(&widths, width);

    let mut table = Table::new();
    table
        .load_preset(TABLE_STYLE)
        .set_header(kept.iter().map(|column| column.header()));
    for row in &rows {
        table.add_row(
            COLUMNS
                .iter()
                .zip(row)
                .filter(|(column, _)| kept.contains(column))
                .map(|(column, cell)| match column {
                    Column::Name => shorten(cell, name_width),
                    _ => cell.clone(),
                }),
        );
    }
    for (i, column) in kept.iter().enumerate() {
        if column.right_aligned()
            && let Some(column) = table.column_mut(i)
        {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let status_column = kept.iter().position(|column| *column == Column::Status);
    let mut text = String::new();
    for line in table.lines() {
        // comfy-table measures a cell by its characters, escape codes included, so a
        // coloured cell would skew its column (its own colour support needs a terminal
        // library). Colour the status words after the layout is done instead.
        match status_column {
            Some(column) if style.color => text.push_str(&color_status_cell(&line, column, style)),
            _ => text.push_str(&line),
        }
        text.push('\n');
    }
    text
}

/// The width output should fit: `$COLUMNS` when set to a number, else the terminal's
/// when stdout is one; `None` (no limit) for a pipe or a file without `COLUMNS`, so that
/// `velos list | grep` sees whole names.
pub fn output_width() -> Option<usize> {
    let stdout = std::io::stdout();
    let terminal = if stdout.is_terminal() {
        rustix::termios::tcgetwinsize(&stdout)
            .ok()
            .map(|size| size.ws_col)
    } else {
        None
    };
    width_from(std::env::var("COLUMNS").ok().as_deref(), terminal)
}

/// [`output_width`]'s decision, apart from where its inputs come from.
fn width_from(columns: Option<&str>, terminal: Option<u16>) -> Option<usize> {
    let columns = columns
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&columns| columns > 0);
    columns.or(terminal.filter(|&c| c > 0).map(usize::from))
}

/// `text` broken into lines of at most `width` characters at spaces (a word longer than
/// that is cut), the lines after the first indented by two spaces.
pub fn wrap(text: &str, width: Option<usize>) -> Vec<String> {
    const INDENT: &str = "  ";
    let Some(width) = width.filter(|&width| width > 2 * INDENT.len()) else {
        return vec![text.to_owned()];
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    let (mut len, mut at_start) = (0, true);
    for word in text.split(' ').filter(|word| !word.is_empty()) {
        let mut chars: Vec<char> = word.chars().collect();
        while !chars.is_empty() {
            let needed = chars.len() + usize::from(!at_start);
            if len + needed <= width {
                if !at_start {
                    line.push(' ');
                }
                line.extend(&chars);
                len += needed;
                chars.clear();
                at_start = false;
                continue;
            }
            if at_start {
                // Longer than a whole line: cut it.
                let rest = chars.split_off(width - len);
                line.extend(&chars);
                chars = rest;
            }
            lines.push(std::mem::replace(&mut line, INDENT.to_owned()));
            (len, at_start) = (INDENT.len(), true);
        }
    }
    if !at_start || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `line` with the word in its status cell (cell `column`, from 0) coloured; other lines
/// (borders, the header) come back unchanged.
fn color_status_cell(line: &str, column: usize, style: Style) -> String {
    // Every vertical line is this one (TABLE_STYLE), and no cell holds it: names are ASCII.
    const BORDER: char = '│';
    // Before the first border there is nothing, so cell N is piece N + 1.
    let mut cells: Vec<String> = line.split(BORDER).map(str::to_owned).collect();
    let Some(cell) = cells.get_mut(column + 1) else {
        return line.to_owned();
    };
    let word = cell.trim();
    let Some(status) = [
        ProcessStatus::Running,
        ProcessStatus::Starting,
        ProcessStatus::Stopping,
        ProcessStatus::Stopped,
        ProcessStatus::Errored,
        ProcessStatus::Waiting,
    ]
    .into_iter()
    .find(|status| status.as_str() == word) else {
        return line.to_owned();
    };
    *cell = cell.replacen(word, &style.status(status), 1);
    cells.join(&BORDER.to_string())
}

/// How long it has been running, like `3m 12s`; while it waits for an automatic restart,
/// when that comes (`restart in 400ms`); `-` otherwise.
pub fn uptime_column(process: &ProcessInfo) -> String {
    match (process.status, process.uptime_ms, process.restart_in_ms) {
        (ProcessStatus::Running | ProcessStatus::Starting, Some(ms), _) => {
            format_uptime(Duration::from_millis(ms))
        }
        (ProcessStatus::Waiting, _, Some(ms)) => format!("restart in {}", format_delay(ms)),
        (ProcessStatus::Waiting, _, None) => "restarting".to_owned(),
        _ => "-".to_owned(),
    }
}

/// A short delay to the millisecond below 10 s (`400ms`, `3s 200ms`), to the second above.
pub fn format_delay(ms: u64) -> String {
    let ms = if ms >= 10_000 {
        (ms + 500) / 1000 * 1000
    } else {
        ms
    };
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// CPU use in percent of one core, like `0.3%`; `-` unless it runs (or off Linux).
pub fn cpu_column(process: &ProcessInfo) -> String {
    process
        .cpu_percent
        .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.1}%"))
}

/// Resident memory, like `12.4 MiB`; `-` unless it runs (or off Linux).
pub fn memory_column(process: &ProcessInfo) -> String {
    process
        .memory_bytes
        .map_or_else(|| "-".to_owned(), format_bytes)
}

/// The width of [`format_timestamp`]'s text.
const TIMESTAMP_WIDTH: usize = "2024-05-01T12:00:00.123Z".len();

/// Unix milliseconds as RFC 3339 UTC with milliseconds; `-` padded to the same width
/// when unknown.
pub fn format_timestamp(time_ms: Option<u64>) -> String {
    match time_ms {
        Some(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        None => format!("{:<TIMESTAMP_WIDTH$}", "-"),
    }
}

/// A duration rounded to whole seconds, in humantime's words: `3m 12s`, `2h 5s`.
pub fn format_uptime(uptime: Duration) -> String {
    let seconds = (uptime.as_millis() + 500) / 1000;
    let seconds = u64::try_from(seconds).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

/// How its last run ended: the exit code, or the signal's name (`SIGKILL`); `-` while it
/// runs or when it never ended.
pub fn exit_column(process: &ProcessInfo) -> String {
    if matches!(
        process.status,
        ProcessStatus::Running | ProcessStatus::Starting
    ) {
        return "-".to_owned();
    }
    match (process.exit_code, process.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => signal_name(signal),
        (None, None) => "-".to_owned(),
    }
}

/// `SIGTERM` for 15; `signal 64` for a number without a name here.
pub fn signal_name(signal: i32) -> String {
    velos_proto::signal_name(signal).map_or_else(|| format!("signal {signal}"), str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use rustix::process::Signal;

    use super::*;

    /// A process as the daemon would show it: running ones with a pid and an uptime.
    pub(crate) fn process(id: u32, name: &str, status: ProcessStatus) -> ProcessInfo {
        ProcessInfo {
            id,
            name: name.into(),
            pid: (status == ProcessStatus::Running).then_some(4242),
            status,
            uptime_ms: (status == ProcessStatus::Running).then_some(192_400),
            script: format!("/srv/{name}.js"),
            interpreter: Some("node".into()),
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            log_files: 5,
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn instances_of_an_app_of_several_are_shown_as_name_k() {
        let mut web: Vec<ProcessInfo> = (0..3)
            .map(|k| {
                let mut web = process(k, "web", ProcessStatus::Running);
                web.instance = k;
                web
            })
            .collect();
        web.push(process(3, "api", ProcessStatus::Running));
        let several = apps_of_several(&web);
        let labels: Vec<String> = web.iter().map(|p| label(p, &several)).collect();
        assert_eq!(labels, ["web:0", "web:1", "web:2", "api"]);
        let table = process_table(&web, Style::plain(), None);
        assert!(
            table.contains("web:2") && !table.contains("api:"),
            "{table}"
        );
    }

    #[test]
    fn uptime_is_rounded_to_seconds() {
        assert_eq!(format_uptime(Duration::from_millis(192_400)), "3m 12s");
        assert_eq!(format_uptime(Duration::from_millis(192_600)), "3m 13s");
        assert_eq!(format_uptime(Duration::from_millis(300)), "0s");
        assert_eq!(format_uptime(Duration::from_secs(7205)), "2h 5s");
    }

    #[test]
    fn uptime_shows_only_while_running() {
        assert_eq!(
            uptime_column(&process(0, "api", ProcessStatus::Running)),
            "3m 12s"
        );
        let mut stopped = process(0, "api", ProcessStatus::Stopped);
        stopped.uptime_ms = Some(1000);
        assert_eq!(uptime_column(&stopped), "-");
    }

    #[test]
    fn exit_column_shows_the_code_or_the_signal_name() {
        let mut errored = process(0, "api", ProcessStatus::Errored);
        assert_eq!(exit_column(&errored), "-");
        errored.exit_code = Some(3);
        assert_eq!(exit_column(&errored), "3");
        errored.exit_code = None;
        errored.signal = Some(Signal::KILL.as_raw());
        assert_eq!(exit_column(&errored), "SIGKILL");
        errored.signal = Some(Signal::TERM.as_raw());
        assert_eq!(exit_column(&errored), "SIGTERM");
        let mut running = process(0, "api", ProcessStatus::Running);
        running.exit_code = Some(1);
        assert_eq!(exit_column(&running), "-");
    }

    #[test]
    fn waiting_processes_show_when_they_restart() {
        let mut waiting = process(0, "api", ProcessStatus::Waiting);
        waiting.restart_in_ms = Some(400);
        assert_eq!(uptime_column(&waiting), "restart in 400ms");
        waiting.restart_in_ms = Some(3200);
        assert_eq!(uptime_column(&waiting), "restart in 3s 200ms");
        waiting.restart_in_ms = Some(12_800);
        assert_eq!(uptime_column(&waiting), "restart in 13s");
        waiting.restart_in_ms = None;
        assert_eq!(uptime_column(&waiting), "restarting");
    }

    #[test]
    fn cpu_and_memory_show_while_known() {
        let mut running = process(0, "api", ProcessStatus::Running);
        assert_eq!(
            (cpu_column(&running), memory_column(&running)),
            ("-".into(), "-".into())
        );
        running.cpu_percent = Some(0.3);
        running.memory_bytes = Some(13_002_342);
        assert_eq!(cpu_column(&running), "0.3%");
        assert_eq!(memory_column(&running), "12.4 MiB");
        running.cpu_percent = Some(153.0);
        assert_eq!(cpu_column(&running), "153.0%");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_or_a_padded_dash() {
        assert_eq!(
            format_timestamp(Some(1_714_564_800_123)),
            "2024-05-01T12:00:00.123Z"
        );
        let unknown = format_timestamp(None);
        assert_eq!(unknown.len(), TIMESTAMP_WIDTH);
        assert!(unknown.starts_with('-'));
        assert_eq!(
            Style::plain().timestamp(Some(0)),
            "1970-01-01T00:00:00.000Z "
        );
        assert!(
            Style::new(true, None)
                .timestamp(Some(0))
                .starts_with('\u{1b}')
        );
    }

    #[test]
    fn names_are_shortened_in_the_middle() {
        assert_eq!(shorten("api", 4), "api");
        assert_eq!(shorten("payments-worker-1", 9), "paym…er-1");
        assert_eq!(shorten("payments-worker-1", 4), "pa…1");
    }

    #[test]
    fn width_comes_from_columns_then_the_terminal() {
        assert_eq!(width_from(Some("60"), Some(120)), Some(60));
        assert_eq!(width_from(None, Some(120)), Some(120));
        assert_eq!(width_from(Some("wide"), Some(100)), Some(100));
        assert_eq!(width_from(Some("0"), None), None);
        assert_eq!(width_from(None, None), None);
        assert_eq!(width_from(None, Some(0)), None);
    }

    #[test]
    fn long_lines_wrap_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("a b c", None), ["a b c"]);
        assert_eq!(wrap("a b c", Some(10)), ["a b c"]);
        assert_eq!(
            wrap("'worker' (id 1) errored: exited 4 times", Some(16)),
            ["'worker' (id 1)", "  errored:", "  exited 4 times"]
        );
        assert_eq!(
            wrap("see /a/very/long/path/name", Some(10)),
            ["see", "  /a/very/", "  long/pat", "  h/name"]
        );
        for line in wrap(&"word ".repeat(50), Some(13)) {
            assert!(line.chars().count() <= 13, "{line:?}");
        }
    }

    #[test]
    fn a_narrow_table_shortens_names_then_drops_columns() {
        let mut processes: Vec<ProcessInfo> = (0..3)
            .map(|id| {
                let name = format!("a-rather-long-process-name-number-{id}");
                process(id, &name, ProcessStatus::Running)
            })
            .collect();
        processes[2].status = ProcessStatus::Errored;
        let wide = process_table(&processes, Style::plain(), None);
        assert!(wide.contains("a-rather-long-process-name-number-0"));
        assert!(wide.lines().next().unwrap().chars().count() > 90, "{wide}");
        for width in [100, 80, 60, 40, 30] {
            let table = process_table(&processes, Style::plain(), Some(width));
            for line in table.lines() {
                assert!(line.chars().count() <= width, "{width}:\n{table}");
            }
            assert!(table.contains("│ id │ name"), "{width}:\n{table}");
            assert!(table.contains("status"), "{width}:\n{table}");
            assert!(table.contains("errored"), "{width}:\n{table}");
        }
        let table = process_table(&processes, Style::plain(), Some(80));
        assert!(table.contains(" a-rathe…umber-0 │"), "names first\n{table}");
        assert!(table.contains("exit"), "no column dropped at 80\n{table}");
        let table = process_table(&processes, Style::plain(), Some(60));
        assert!(
            !table.contains("exit") && !table.contains("restarts"),
            "{table}"
        );
        assert!(table.contains("uptime"), "{table}");
        // Colour does not change the layout.
        let coloured = process_table(&processes, Style::new(true, None), Some(60));
        assert_eq!(strip_escapes(&coloured), table);
        assert!(coloured.contains("\u{1b}[31merrored"), "{coloured}");
    }

    #[test]
    fn unnamed_signals_show_their_number() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(200), "signal 200");
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert_eq!(Style::new(true, None), Style { color: true });
        assert_eq!(Style::new(false, None), Style::plain());
        assert_eq!(Style::new(true, Some(OsStr::new("1"))), Style::plain());
        assert_eq!(Style::new(true, Some(OsStr::new(""))), Style::plain());
    }

    #[test]
    fn plain_style_adds_no_escape_codes() {
        let style = Style::plain();
        assert_eq!(style.status(ProcessStatus::Errored), "errored");
        assert_eq!(style.log_prefix("api", Stream::Err), "api | ");
    }

    #[test]
    fn coloured_style_colours_statuses_and_prefixes() {
        let style = Style::new(true, None);
        assert_eq!(
            style.status(ProcessStatus::Running),
            "\u{1b}[32mrunning\u{1b}[39m"
        );
        assert!(
            style
                .status(ProcessStatus::Errored)
                .starts_with("\u{1b}[31m")
        );
        assert!(
            style
                .log_prefix("api", Stream::Err)
                .starts_with("\u{1b}[31mapi |")
        );
    }

    #[test]
    fn table_without_colour_lines_up() {
        let mut worker = process(1, "worker", ProcessStatus::Errored);
        worker.exit_code = Some(1);
        worker.restarts = 3;
        let table = process_table(
            &[process(0, "api", ProcessStatus::Running), worker],
            Style::plain(),
            None,
        );
        let expected = "\
┌────┬────────┬──────┬─────────┬────────┬──────────┬─────┬─────┬──────┐
│ id │ name   │  pid │ status  │ uptime │ restarts │ cpu │ mem │ exit │
╞════╪════════╪══════╪═════════╪════════╪══════════╪═════╪═════╪══════╡
│  0 │ api    │ 4242 │ running │ 3m 12s │        0 │   - │   - │ -    │
│  1 │ worker │    - │ errored │ -      │        3 │   - │   - │ 1    │
└────┴────────┴──────┴─────────┴────────┴──────────┴─────┴─────┴──────┘
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn the_memory_column_shows_a_limit() {
        let mut api = process(0, "api", ProcessStatus::Running);
        api.memory_bytes = Some(30 << 20);
        assert_eq!(Column::Mem.cell(&api), "30.0 MiB");
        api.max_memory_bytes = Some(512 << 20);
        assert_eq!(Column::Mem.cell(&api), "30.0 MiB/512 MiB");
        api.memory_bytes = None;
        assert_eq!(Column::Mem.cell(&api), "-/512 MiB");
    }

    /// `text` without its `ESC [ ... m` sequences.
    fn strip_escapes(text: &str) -> String {
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        plain
    }

    #[test]
    fn coloured_table_keeps_the_layout() {
        let processes = [
            process(0, "api", ProcessStatus::Running),
            process(1, "running", ProcessStatus::Stopped),
        ];
        let plain = process_table(&processes, Style::plain(), None);
        let coloured = process_table(&processes, Style::new(true, None), None);
        assert_ne!(plain, coloured);
        let stripped = strip_escapes(&coloured);
        assert_eq!(stripped, plain);
        // The name `running` is not coloured; its status is.
        assert!(
            coloured.contains("│ running │    - │ \u{1b}[2mstopped\u{1b}[0m │"),
            "{coloured}"
        );
    }
}
