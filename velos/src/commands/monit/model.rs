//! What `velos monit` shows, as plain data: the process rows with their CPU and memory
//! history and last restart reason, the selection, the filter, the log pane, and the
//! key bindings. No terminal, no daemon, no clock: `mod.rs` feeds it lists, events, log
//! lines and keys, and does what [`Model::key`] answers; `view.rs` draws it.
//!
//! Keys: ↑/↓ select, `R` restart, `r` reload (no downtime), `s` stop, `S` start (a restart of a process that does
//! not run: velos starts a listed process again with `restart`), `/` filter (typing edits
//! it, Enter keeps it, Esc clears it), `l` full-screen logs (`l` or Esc back), `q` or
//! Ctrl-C quit.

use std::collections::VecDeque;

use velos_proto::{EventKind, LogLine, ProcessEvent, ProcessInfo, ProcessStatus, Stream};

/// Samples of CPU and memory kept per process: one a second, so a minute.
pub const HISTORY_SAMPLES: usize = 60;

/// Lines kept in the log pane.
pub const LOG_PANE_LINES: usize = 1000;

/// A key, as far as monit cares: what crossterm reports, reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Ctrl and a character.
    Ctrl(char),
    Up,
    Down,
    PageUp,
    PageDown,
    Enter,
    Esc,
    Backspace,
}

/// What a key asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave monit.
    Quit,
    /// Restart the process with this id.
    Restart { id: u32, name: String },
    /// Reload it (a replacement run, ready before the old one stops).
    Reload { id: u32, name: String },
    /// Stop it.
    Stop { id: u32, name: String },
    /// Start it again (it does not run).
    Start { id: u32, name: String },
}

/// Which part of the screen has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The table, with the selected process's details and logs below it.
    Table,
    /// Typing the filter.
    Filter,
    /// The selected process's logs on the whole screen.
    Logs,
}

/// One process as monit shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// What the last list said, updated by events since.
    pub info: ProcessInfo,
    /// CPU use in tenths of a percent of one core, oldest first.
    pub cpu_history: VecDeque<u64>,
    /// Resident memory in bytes, oldest first.
    pub memory_history: VecDeque<u64>,
    /// Why it last started again: `after exit 1` (the restart policy's), `manual`, or `after SIGTERM` (how
    /// the run before ended, for a restart monit did not see).
    pub last_restart: Option<String>,
    /// Why the run being replaced ended, between its exit and the next start.
    pending_restart: Option<String>,
}

impl Row {
    fn new(info: ProcessInfo) -> Row {
        // Before any event, how the last run ended is all that is known of why it
        // started again (whether someone asked is not).
        let last_restart = (info.restarts > 0)
            .then(|| exit_text(info.exit_code, info.signal))
            .flatten()
            .map(|exit| format!("after {exit}"));
        Row {
            info,
            cpu_history: VecDeque::with_capacity(HISTORY_SAMPLES),
            memory_history: VecDeque::with_capacity(HISTORY_SAMPLES),
            last_restart,
            pending_restart: None,
        }
    }

    fn sample(&mut self) {
        push_bounded(
            &mut self.cpu_history,
            self.info
                .cpu_percent
                .map_or(0, |cpu| (cpu * 10.0).round().max(0.0) as u64),
            HISTORY_SAMPLES,
        );
        push_bounded(
            &mut self.memory_history,
            self.info.memory_bytes.unwrap_or(0),
            HISTORY_SAMPLES,
        );
    }
}

/// The log pane: one process's lines, newest last.
#[derive(Debug, Default)]
pub struct LogPane {
    /// Whose lines these are.
    pub id: Option<u32>,
    /// The lines, as text safe to print.
    pub lines: VecDeque<(Stream, String)>,
    /// Lines scrolled back from the newest (0: following the end).
    pub scroll: usize,
    /// Lines the daemon skipped because monit fell behind.
    pub skipped: u64,
}

/// Everything on the screen.
#[derive(Debug)]
pub struct Model {
    rows: Vec<Row>,
    selected: Option<u32>,
    /// The filter: rows whose name contains it (ignoring case).
    pub filter: String,
    /// Which part has the keys.
    pub mode: Mode,
    /// The selected process's logs.
    pub logs: LogPane,
    /// The last outcome of an action or a problem, shown in the bottom line.
    pub message: Option<String>,
    /// Set while the daemon cannot be reached: why.
    pub disconnected: Option<String>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            rows: Vec::new(),
            selected: None,
            filter: String::new(),
            mode: Mode::Table,
            logs: LogPane::default(),
            message: None,
            disconnected: None,
        }
    }
}

impl Model {
    /// Takes a fresh list: new rows appear, deleted ones go, and every row gets a sample
    /// of its CPU and memory.
    pub fn listed(&mut self, mut processes: Vec<ProcessInfo>) {
        processes.sort_by_key(|process| process.id);
        let mut old: Vec<Row> = std::mem::take(&mut self.rows);
        self.rows = processes
            .into_iter()
            .map(|info| {
                let mut row = match old.iter().position(|row| row.info.id == info.id) {
                    Some(at) => {
                        let mut row = old.swap_remove(at);
                        row.info = info;
                        row
                    }
                    None => Row::new(info),
                };
                row.sample();
                row
            })
            .collect();
        self.disconnected = None;
        self.keep_selection();
    }

    /// Applies an event to its row at once, ahead of the next list.
    pub fn event(&mut self, event: &ProcessEvent) {
        if event.kind == EventKind::Deleted {
            self.rows.retain(|row| row.info.id != event.id);
            self.keep_selection();
            return;
        }
        let Some(row) = self.rows.iter_mut().find(|row| row.info.id == event.id) else {
            return;
        };
        let info = &mut row.info;
        info.restarts = event.restarts;
        match event.kind {
            EventKind::Started => {
                // With a ready mode a run is `starting` until its `ready` event.
                info.status = match info.ready {
                    Some(_) => ProcessStatus::Starting,
                    None => ProcessStatus::Running,
                };
                info.pid = event.pid;
                info.uptime_ms = Some(0);
                if let Some(reason) = row.pending_restart.take() {
                    row.last_restart = Some(event.reason.clone().unwrap_or(reason));
                }
            }
            // A reload's second run (the replaced one, or a failed replacement) ended: the
            // row's run goes on.
            EventKind::Exited if event.pid.is_some() && event.pid != info.pid => {}
            EventKind::Exited => {
                info.pid = None;
                info.exit_code = event.exit_code;
                info.signal = event.signal;
                info.cpu_percent = None;
                info.memory_bytes = None;
                row.pending_restart = Some(
                    exit_text(event.exit_code, event.signal)
                        .map_or_else(|| "autorestart".to_owned(), |exit| format!("after {exit}")),
                );
            }
            EventKind::Starting => info.status = ProcessStatus::Starting,
            EventKind::Ready if event.pid.is_some() && event.pid != info.pid => {}
            EventKind::Ready => info.status = ProcessStatus::Running,
            // The replacement took the place of the run the row showed.
            EventKind::Replaced => {
                info.status = ProcessStatus::Running;
                info.pid = event.pid;
                info.uptime_ms = Some(0);
                row.last_restart = Some("reload".to_owned());
            }
            EventKind::Restarting => {
                // The restart policy's waits for its backoff; a trigger's (watch, memory,
                // cron) stops the run at once, then starts it: `stopping`, as `list` says.
                info.status = if event.restart_in_ms.is_some() {
                    ProcessStatus::Waiting
                } else {
                    ProcessStatus::Stopping
                };
                info.restart_in_ms = event.restart_in_ms;
                if let Some(reason) = &event.reason {
                    row.pending_restart = Some(reason.clone());
                }
            }
            EventKind::Stopped => {
                info.status = ProcessStatus::Stopped;
                // What starts it next is a person (or a script) asking.
                row.pending_restart = Some("manual".to_owned());
            }
            EventKind::Errored => {
                info.status = ProcessStatus::Errored;
                info.error = event.reason.clone().or(info.error.take());
            }
            EventKind::Deleted
            | EventKind::ReloadStarted
            | EventKind::ReloadDone
            | EventKind::ReloadFailed
            | EventKind::WatchError
            | EventKind::Unknown => {}
        }
    }

    /// The rows the filter lets through, by id.
    pub fn visible(&self) -> impl Iterator<Item = &Row> {
        let filter = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(move |row| row.info.name.to_lowercase().contains(&filter))
    }

    /// How many processes there are, filtered or not.
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    /// The selected row, if any is visible.
    pub fn selected(&self) -> Option<&Row> {
        let id = self.selected?;
        self.visible().find(|row| row.info.id == id)
    }

    /// The selected row's place among the visible ones.
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.visible().position(|row| row.info.id == id)
    }

    /// Whose logs the pane should follow: the selected process's.
    pub fn wanted_logs(&self) -> Option<u32> {
        self.selected().map(|row| row.info.id)
    }

    /// Starts the log pane over for `id`, with the lines written before.
    pub fn logs_reset(&mut self, id: Option<u32>, initial: Vec<LogLine>) {
        self.logs = LogPane {
            id,
            ..LogPane::default()
        };
        for line in initial {
            self.log_line(&line);
        }
    }

    /// Adds a line the followed process wrote.
    pub fn log_line(&mut self, line: &LogLine) {
        if Some(line.id) != self.logs.id {
            return;
        }
        let text = printable(&line.line);
        if line.continued
            && let Some((_, last)) = self.logs.lines.back_mut()
        {
            last.push_str(&text);
            return;
        }
        push_bounded(&mut self.logs.lines, (line.stream, text), LOG_PANE_LINES);
        if self.logs.scroll > 0 {
            // Keep the lines being read in place while new ones arrive.
            self.logs.scroll = (self.logs.scroll + 1).min(self.logs.lines.len());
        }
    }

    /// What `key` does.
    pub fn key(&mut self, key: Key) -> Action {
        if key == Key::Ctrl('c') {
            return Action::Quit;
        }
        match self.mode {
            Mode::Filter => {
                match key {
                    Key::Char(c) => self.filter.push(c),
                    Key::Backspace => {
                        self.filter.pop();
                    }
                    Key::Enter => self.mode = Mode::Table,
                    Key::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Table;
                    }
                    Key::Up => self.move_selection(-1),
                    Key::Down => self.move_selection(1),
                    _ => {}
                }
                self.keep_selection();
                Action::None
            }
            Mode::Logs => match key {
                Key::Char('q') => Action::Quit,
                Key::Char('l') | Key::Esc => {
                    self.mode = Mode::Table;
                    Action::None
                }
                Key::Up => self.scroll_logs(1),
                Key::Down => self.scroll_logs(-1),
                Key::PageUp => self.scroll_logs(20),
                Key::PageDown => self.scroll_logs(-20),
                _ => self.process_key(key),
            },
            Mode::Table => match key {
                Key::Char('q') => Action::Quit,
                Key::Up => {
                    self.move_selection(-1);
                    Action::None
                }
                Key::Down => {
                    self.move_selection(1);
                    Action::None
                }
                Key::PageUp => self.scroll_logs(20),
                Key::PageDown => self.scroll_logs(-20),
                Key::Char('/') => {
                    self.mode = Mode::Filter;
                    Action::None
                }
                Key::Char('l') => {
                    self.mode = Mode::Logs;
                    Action::None
                }
                Key::Esc => {
                    self.filter.clear();
                    self.keep_selection();
                    Action::None
                }
                _ => self.process_key(key),
            },
        }
    }

    /// The keys that act on the selected process.
    fn process_key(&mut self, key: Key) -> Action {
        let Some(row) = self.selected() else {
            return Action::None;
        };
        let (id, name) = (row.info.id, row.info.name.clone());
        let alive = matches!(
            row.info.status,
            ProcessStatus::Running | ProcessStatus::Starting | ProcessStatus::Stopping
        );
        match key {
            Key::Char('R') => Action::Restart { id, name },
            Key::Char('r') => Action::Reload { id, name },
            Key::Char('s') => Action::Stop { id, name },
            Key::Char('S') if alive => {
                self.message = Some(format!("'{name}' is already running"));
                Action::None
            }
            Key::Char('S') => Action::Start { id, name },
            _ => Action::None,
        }
    }

    fn scroll_logs(&mut self, by: isize) -> Action {
        let most = self.logs.lines.len().saturating_sub(1);
        self.logs.scroll = self.logs.scroll.saturating_add_signed(by).min(most);
        Action::None
    }

    fn move_selection(&mut self, by: isize) {
        let ids: Vec<u32> = self.visible().map(|row| row.info.id).collect();
        if ids.is_empty() {
            return;
        }
        let at = self
            .selected_index()
            .map_or(0, |at| at.saturating_add_signed(by).min(ids.len() - 1));
        self.selected = Some(ids[at]);
    }

    /// Keeps a visible selection: the same process if the filter shows it, else the
    /// first visible one.
    fn keep_selection(&mut self) {
        if self.selected().is_none() {
            let first = self.visible().next().map(|row| row.info.id);
            self.selected = first;
        }
    }
}

/// `exit 1` or `SIGKILL`, for a run that ended.
fn exit_text(code: Option<i32>, signal: Option<i32>) -> Option<String> {
    match (code, signal) {
        (Some(code), _) => Some(format!("exit {code}")),
        (None, Some(signal)) => Some(crate::output::signal_name(signal)),
        (None, None) => None,
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, most: usize) {
    if queue.len() == most {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// A log line as text that cannot move the cursor or change the terminal: invalid UTF-8
/// replaced, escape sequences (colours included) removed, tabs as spaces, other control
/// characters as `?`.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI (`ESC [ ... final`) and OSC (`ESC ] ... BEL|ESC \`); any other escape
                // takes one more character.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// `values` as a line of block characters, one per value, scaled to the largest (or to
/// `floor`, whichever is larger, so that noise near zero stays flat).
pub fn spark_text(values: impl ExactSizeIterator<Item = u64> + Clone, floor: u64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let top = values.clone().max().unwrap_or(0).max(floor).max(1);
    values
        .map(|value| {
            let step = (value.min(top) * (BARS.len() as u64 - 1) + top / 2) / top;
            BARS[step as usize]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u32, name: &str) -> ProcessInfo {
        ProcessInfo {
            id,
            name: name.into(),
            status: ProcessStatus::Running,
            pid: Some(100 + id),
            ..ProcessInfo::default()
        }
    }

    fn event(kind: EventKind, id: u32) -> ProcessEvent {
        ProcessEvent {
            kind,
            id,
            name: String::new(),
            instance: 0,
            pid: None,
            exit_code: None,
            signal: None,
            restarts: 0,
            restart_in_ms: None,
            restart_reason: None,
            reason: None,
            time_ms: 0,
        }
    }

    fn model(names: &[&str]) -> Model {
        let mut model = Model::default();
        model.listed(
            names
                .iter()
                .enumerate()
                .map(|(id, name)| info(id as u32, name))
                .collect(),
        );
        model
    }

    fn line(id: u32, text: &str) -> LogLine {
        LogLine {
            id,
            name: String::new(),
            stream: Stream::Out,
            line: text.as_bytes().to_vec(),
            partial: false,
            continued: false,
            time_ms: None,
        }
    }

    #[test]
    fn r_reloads_the_selected_process() {
        let mut model = model(&["api", "worker"]);
        model.key(Key::Down);
        assert_eq!(
            model.key(Key::Char('r')),
            Action::Reload {
                id: 1,
                name: "worker".to_owned()
            }
        );
    }

    #[test]
    fn arrows_move_the_selection_within_the_visible_rows() {
        let mut model = model(&["api", "worker", "web"]);
        assert_eq!(model.wanted_logs(), Some(0));
        model.key(Key::Up);
        assert_eq!(model.wanted_logs(), Some(0));
        model.key(Key::Down);
        model.key(Key::Down);
        model.key(Key::Down);
        assert_eq!(model.wanted_logs(), Some(2));
        assert_eq!(
            model.key(Key::Char('R')),
            Action::Restart {
                id: 2,
                name: "web".into()
            }
        );
    }

    #[test]
    fn the_filter_narrows_the_rows_and_keeps_a_visible_selection() {
        let mut model = model(&["api", "worker", "web-api"]);
        model.key(Key::Down);
        assert_eq!(model.wanted_logs(), Some(1));
        assert_eq!(model.key(Key::Char('/')), Action::None);
        for c in "API".chars() {
            // Typed keys go to the filter, not to the bindings ('R' restarts nothing).
            assert_eq!(model.key(Key::Char(c)), Action::None);
        }
        let names: Vec<&str> = model.visible().map(|row| row.info.name.as_str()).collect();
        assert_eq!(names, ["api", "web-api"]);
        assert_eq!(model.wanted_logs(), Some(0), "worker is hidden");
        model.key(Key::Enter);
        assert_eq!(model.mode, Mode::Table);
        assert_eq!(model.filter, "API");
        model.key(Key::Esc);
        assert_eq!(model.visible().count(), 3);
    }

    #[test]
    fn keys_act_on_the_selected_process_by_its_state() {
        let mut model = model(&["api"]);
        assert_eq!(
            model.key(Key::Char('s')),
            Action::Stop {
                id: 0,
                name: "api".into()
            }
        );
        assert_eq!(model.key(Key::Char('S')), Action::None, "already running");
        assert!(
            model
                .message
                .as_deref()
                .unwrap()
                .contains("already running")
        );
        model.event(&event(EventKind::Stopped, 0));
        assert_eq!(
            model.key(Key::Char('S')),
            Action::Start {
                id: 0,
                name: "api".into()
            }
        );
        assert_eq!(model.key(Key::Char('q')), Action::Quit);
        assert_eq!(model.key(Key::Ctrl('c')), Action::Quit);
        assert_eq!(Model::default().key(Key::Char('R')), Action::None);
    }

    #[test]
    fn the_last_restart_reason_comes_from_the_events() {
        let mut model = model(&["api"]);
        assert_eq!(model.selected().unwrap().last_restart, None);
        let mut restarted = info(0, "api");
        (restarted.restarts, restarted.signal) = (2, Some(9));
        let mut seen_before = Model::default();
        seen_before.listed(vec![restarted]);
        assert_eq!(
            seen_before.selected().unwrap().last_restart.as_deref(),
            Some("after SIGKILL")
        );
        let mut exited = event(EventKind::Exited, 0);
        exited.exit_code = Some(3);
        model.event(&exited);
        let mut backoff = event(EventKind::Restarting, 0);
        backoff.restart_in_ms = Some(100);
        model.event(&backoff);
        assert_eq!(
            model.selected().unwrap().info.status,
            ProcessStatus::Waiting
        );
        let mut started = event(EventKind::Started, 0);
        started.pid = Some(999);
        started.restarts = 1;
        model.event(&started);
        let row = model.selected().unwrap();
        assert_eq!(row.last_restart.as_deref(), Some("after exit 3"));
        assert_eq!((row.info.pid, row.info.restarts), (Some(999), 1));
        // A restart someone asked for: exited, stopped, started.
        let mut killed = event(EventKind::Exited, 0);
        killed.signal = Some(15);
        model.event(&killed);
        model.event(&event(EventKind::Stopped, 0));
        model.event(&event(EventKind::Started, 0));
        assert_eq!(
            model.selected().unwrap().last_restart.as_deref(),
            Some("manual")
        );
        // With a ready mode: starting until ready.
        model.rows[0].info.ready = Some("notify".into());
        model.event(&event(EventKind::Started, 0));
        assert_eq!(
            model.selected().unwrap().info.status,
            ProcessStatus::Starting
        );
        model.event(&event(EventKind::Ready, 0));
        assert_eq!(
            model.selected().unwrap().info.status,
            ProcessStatus::Running
        );
        model.event(&event(EventKind::Deleted, 0));
        assert_eq!(model.total(), 0);
        assert_eq!(model.wanted_logs(), None);
    }

    #[test]
    fn each_list_adds_one_sample_and_keeps_a_minute() {
        let mut model = Model::default();
        for n in 0..HISTORY_SAMPLES as u64 + 5 {
            let mut api = info(0, "api");
            api.cpu_percent = Some(n as f64 / 10.0);
            api.memory_bytes = Some(n * 1024);
            model.listed(vec![api]);
        }
        let row = model.selected().unwrap();
        assert_eq!(row.cpu_history.len(), HISTORY_SAMPLES);
        assert_eq!(row.cpu_history.back(), Some(&(HISTORY_SAMPLES as u64 + 4)));
        assert_eq!(row.memory_history.front(), Some(&(5 * 1024)));
        // Gone from the list: gone from the screen.
        model.listed(Vec::new());
        assert_eq!(model.total(), 0);
    }

    #[test]
    fn the_log_pane_takes_the_followed_process_lines_only() {
        let mut model = model(&["api", "web"]);
        model.logs_reset(Some(0), vec![line(0, "before"), line(1, "not ours")]);
        model.log_line(&line(0, "after"));
        let mut rest = line(0, " and more");
        rest.continued = true;
        model.log_line(&rest);
        let texts: Vec<&str> = model.logs.lines.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["before", "after and more"]);
        for n in 0..LOG_PANE_LINES {
            model.log_line(&line(0, &n.to_string()));
        }
        assert_eq!(model.logs.lines.len(), LOG_PANE_LINES);
        assert_eq!(model.logs.lines.front().unwrap().1, "0");
    }

    #[test]
    fn log_text_cannot_drive_the_terminal() {
        assert_eq!(printable(b"\x1b[31mred\x1b[0m ok"), "red ok");
        assert_eq!(printable(b"a\tb\rc\x07"), "a    b?c?");
        assert_eq!(printable(b"\x1b]0;title\x07after"), "after");
        assert_eq!(printable(b"\x1b]8;;http://x\x1b\\link"), "link");
        assert_eq!(printable(b"bad \xff byte"), "bad \u{fffd} byte");
    }

    #[test]
    fn spark_text_scales_to_the_largest_or_the_floor() {
        assert_eq!(spark_text([0, 5, 10].into_iter(), 1), "▁▅█");
        assert_eq!(spark_text([1, 1].into_iter(), 100), "▁▁");
        assert_eq!(spark_text(std::iter::empty::<u64>(), 1), "");
    }

    #[test]
    fn a_triggers_restart_shows_stopping_until_its_run_starts() {
        let mut model = model(&["api"]);
        let mut restarting = event(EventKind::Restarting, 0);
        restarting.restart_reason = Some(velos_proto::RestartReason::Memory);
        restarting.reason = Some("memory 612 MiB > 512 MiB for 3s".into());
        model.event(&restarting);
        assert_eq!(
            model.selected().unwrap().info.status,
            ProcessStatus::Stopping
        );
        model.event(&event(EventKind::Exited, 0));
        assert_eq!(
            model.selected().unwrap().info.status,
            ProcessStatus::Stopping
        );
        let mut started = event(EventKind::Started, 0);
        started.reason = Some("memory 612 MiB > 512 MiB for 3s".into());
        model.event(&started);
        let row = model.selected().unwrap();
        assert_eq!(row.info.status, ProcessStatus::Running);
        assert_eq!(
            row.last_restart.as_deref(),
            Some("memory 612 MiB > 512 MiB for 3s")
        );
    }
}
