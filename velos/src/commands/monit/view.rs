//! Draws a [`Model`] with ratatui: the process table on top, the selected process's CPU
//! and memory sparklines and its log pane below, one line of keys at the bottom. In
//! [`Mode::Logs`] the log pane takes the whole screen. Drawing reads the model only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Paragraph, Row as TableRow, Sparkline, Table, TableState,
};
use velos_proto::{ProcessStatus, Stream};

use super::model::{Mode, Model, Row, spark_text};
use crate::output::{cpu_column, memory_column, uptime_column};
use crate::size::format_bytes;

/// Samples shown in the table's trend columns (the newest).
const TREND_SAMPLES: usize = 12;

/// The keys, as the bottom line lists them.
const KEYS: &str = "↑↓ select  R restart  r reload  s stop  S start  / filter  l logs  q quit";

/// Colours, or none (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    /// Whether to colour at all.
    pub color: bool,
}

impl Palette {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    fn status(self, status: ProcessStatus) -> Style {
        match status {
            ProcessStatus::Running => self.fg(Color::Green),
            ProcessStatus::Starting | ProcessStatus::Stopping | ProcessStatus::Waiting => {
                self.fg(Color::Yellow)
            }
            ProcessStatus::Errored => self.fg(Color::Red),
            ProcessStatus::Stopped => Style::new().add_modifier(Modifier::DIM),
            _ => Style::new(),
        }
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, model: &Model, palette: Palette) {
    let [main, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(frame.area());
    if model.mode == Mode::Logs {
        logs(frame, main, model, palette);
    } else {
        let shown = model.visible().count() as u16;
        let [table_area, detail_area, logs_area] = Layout::vertical([
            Constraint::Length(shown.max(1) + 3),
            Constraint::Length(5),
            Constraint::Min(3),
        ])
        .areas(main);
        table(frame, table_area, model, palette);
        detail(frame, detail_area, model, palette);
        logs(frame, logs_area, model, palette);
    }
    status_line(frame, bottom, model, palette);
}

/// Below this width the table leaves out its two trend columns (the sparklines below it
/// still show the selected process's history).
const TRENDS_WIDTH: u16 = 110;

fn table(frame: &mut Frame, area: Rect, model: &Model, palette: Palette) {
    let trends = area.width >= TRENDS_WIDTH;
    let mut header = vec!["id", "name", "status", "pid", "uptime", "↺", "cpu"];
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(3),
        Constraint::Length(6),
    ];
    if trends {
        header.push("cpu 1m");
        widths.push(Constraint::Length(TREND_SAMPLES as u16));
    }
    header.push("mem");
    widths.push(Constraint::Length(10));
    if trends {
        header.push("mem 1m");
        widths.push(Constraint::Length(TREND_SAMPLES as u16));
    }
    header.push("last restart");
    widths.push(Constraint::Fill(3));
    let header = TableRow::new(header).style(Style::new().add_modifier(Modifier::BOLD));
    let rows: Vec<TableRow> = model
        .visible()
        .map(|row| table_row(row, trends, palette))
        .collect();
    let plural = if model.total() == 1 { "" } else { "es" };
    let mut title = format!(" velos monit: {} process{plural} ", model.total());
    if !model.filter.is_empty() || model.mode == Mode::Filter {
        title = format!(
            " velos monit: {} of {} process{plural}, filter '{}' ",
            rows.len(),
            model.total(),
            model.filter
        );
    }
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::new().borders(Borders::ALL).title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶");
    let mut state = TableState::new().with_selected(model.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    if empty {
        let hint = if model.total() == 0 {
            "no processes; start one with 'velos start <script>'"
        } else {
            "no process matches the filter (Esc clears it)"
        };
        let inner = Rect {
            y: area.y + 2,
            height: 1,
            x: area.x + 2,
            width: area.width.saturating_sub(4),
        };
        frame.render_widget(Paragraph::new(hint), inner);
    }
}

fn table_row(row: &Row, trends: bool, palette: Palette) -> TableRow<'static> {
    let info = &row.info;
    let trend = |history: &std::collections::VecDeque<u64>, floor| {
        let skip = history.len().saturating_sub(TREND_SAMPLES);
        spark_text(history.iter().skip(skip).copied(), floor)
    };
    let mut cells = vec![
        Cell::from(info.id.to_string()),
        Cell::from(info.name.clone()),
        Cell::from(info.status.as_str()).style(palette.status(info.status)),
        Cell::from(
            info.pid
                .map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
        ),
        Cell::from(uptime_column(info)),
        Cell::from(info.restarts.to_string()),
        Cell::from(cpu_column(info)),
    ];
    if trends {
        // 1.0% of a core at least at the top, so an idle process's noise stays flat.
        cells.push(Cell::from(trend(&row.cpu_history, 10)).style(palette.fg(Color::Cyan)));
    }
    cells.push(Cell::from(memory_column(info)));
    if trends {
        cells.push(Cell::from(trend(&row.memory_history, 1)).style(palette.fg(Color::Magenta)));
    }
    cells.push(Cell::from(
        row.last_restart.clone().unwrap_or_else(|| "-".to_owned()),
    ));
    TableRow::new(cells)
}

fn detail(frame: &mut Frame, area: Rect, model: &Model, palette: Palette) {
    let Some(row) = model.selected() else {
        frame.render_widget(Block::new().borders(Borders::ALL), area);
        return;
    };
    let [cpu_area, memory_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
    let width = usize::from(cpu_area.width.saturating_sub(2));
    let newest = |history: &std::collections::VecDeque<u64>| -> Vec<u64> {
        let skip = history.len().saturating_sub(width);
        history.iter().skip(skip).copied().collect()
    };
    let cpu_peak = row.cpu_history.iter().max().copied().unwrap_or(0);
    let cpu = Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(format!(
            " '{}' cpu {} (peak {:.1}% in {} s) ",
            row.info.name,
            cpu_column(&row.info),
            cpu_peak as f64 / 10.0,
            row.cpu_history.len()
        )))
        // At least 1% of a core at the top, so that idle noise stays flat.
        .max(cpu_peak.max(10))
        .data(newest(&row.cpu_history))
        .style(palette.fg(Color::Cyan));
    frame.render_widget(cpu, cpu_area);
    let memory_peak = row.memory_history.iter().max().copied().unwrap_or(0);
    let memory = Sparkline::default()
        .block(Block::new().borders(Borders::ALL).title(format!(
            " memory {} (peak {}) ",
            memory_column(&row.info),
            format_bytes(memory_peak)
        )))
        .data(newest(&row.memory_history))
        .style(palette.fg(Color::Magenta));
    frame.render_widget(memory, memory_area);
}

fn logs(frame: &mut Frame, area: Rect, model: &Model, palette: Palette) {
    let name = model
        .selected()
        .map_or_else(String::new, |row| format!("'{}' ", row.info.name));
    let pane = &model.logs;
    let mut title = format!(" logs {name}");
    if pane.scroll > 0 {
        title.push_str(&format!("(scrolled back {} lines) ", pane.scroll));
    }
    if pane.skipped > 0 {
        title.push_str(&format!(
            "({} lines skipped: too fast to show) ",
            pane.skipped
        ));
    }
    let height = usize::from(area.height.saturating_sub(2));
    let end = pane.lines.len().saturating_sub(pane.scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = pane
        .lines
        .range(start..end)
        .map(|(stream, text)| {
            let style = match stream {
                Stream::Err => palette.fg(Color::Red),
                Stream::Out => Style::new(),
            };
            Line::from(Span::styled(text.clone(), style))
        })
        .collect();
    let paragraph = Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(title));
    frame.render_widget(paragraph, area);
}

fn status_line(frame: &mut Frame, area: Rect, model: &Model, palette: Palette) {
    let line = if model.mode == Mode::Filter {
        Line::from(format!(
            "filter: {}▏ (Enter keeps it, Esc clears it)",
            model.filter
        ))
    } else if let Some(why) = &model.disconnected {
        Line::from(Span::styled(
            format!("{why}  (q quits)"),
            palette.fg(Color::Red),
        ))
    } else if let Some(message) = &model.message {
        Line::from(vec![
            Span::raw(KEYS),
            Span::raw("  "),
            Span::styled(message.clone(), palette.fg(Color::Yellow)),
        ])
    } else {
        Line::from(KEYS)
    };
    frame.render_widget(Paragraph::new(line), area);
}
