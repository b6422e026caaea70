//! The printed result: one table per group of figures, then a line per figure saying how it
//! was taken.
//!
//! A table has the columns figure, velos, target, met? and, with `--compare pm2`, PM2 and
//! velos/PM2 (the ratio of the medians: below 1 means velos uses less time or memory, above
//! 1 means more throughput). Values are kept in base units (seconds, bytes, counts) and only
//! formatted here.

use crate::stats::Stats;

/// What a figure counts, which decides how it is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, shown in KiB or MiB.
    Bytes,
    /// Seconds, shown in µs, ms or s.
    Seconds,
    /// A plain count.
    Count,
    /// Things per second; the label names the things (`lines/s`).
    Rate(&'static str),
    /// Bytes per second, shown in MB/s (10^6, as disks are rated).
    ByteRate,
    /// A dimensionless ratio, shown as `0.85×`.
    Ratio,
}

/// What a figure should be to meet its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The median is at most this.
    AtMost(f64),
    /// The median is at least this.
    AtLeast(f64),
    /// Every run is at most this (for "zero lines lost").
    EveryAtMost(f64),
}

impl Target {
    /// Whether `stats` meets the target.
    pub fn met_by(self, stats: &Stats) -> bool {
        match self {
            Target::AtMost(bound) => stats.median <= bound,
            Target::AtLeast(bound) => stats.median >= bound,
            Target::EveryAtMost(bound) => stats.max <= bound,
        }
    }

    fn show(self, unit: Unit) -> String {
        match self {
            Target::AtMost(bound) => format!("≤ {}", format_value(unit, bound)),
            Target::AtLeast(bound) => format!("≥ {}", format_value(unit, bound)),
            Target::EveryAtMost(bound) => format!("≤ {} every run", format_value(unit, bound)),
        }
    }
}

/// One manager's reading of a figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Measured.
    Measured(Stats),
    /// Tried and failed; the reason is printed under the table.
    Failed(String),
    /// Not measured (not asked for, not applicable); the reason is printed.
    Skipped(String),
}

impl Value {
    /// The summary, when there is one.
    pub fn stats(&self) -> Option<&Stats> {
        match self {
            Value::Measured(stats) => Some(stats),
            _ => None,
        }
    }
}

/// A line of a table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured, in words.
    pub figure: String,
    /// Its unit.
    pub unit: Unit,
    /// velos's reading.
    pub velos: Value,
    /// PM2's reading, with `--compare pm2`.
    pub pm2: Option<Value>,
    /// The target from issue 4, if it sets one.
    pub target: Option<Target>,
    /// How it was measured, beyond runs, median, min and max.
    pub how: Option<String>,
    /// The same for PM2, when it differs.
    pub pm2_how: Option<String>,
}

/// A group of figures.
#[derive(Debug, Clone)]
pub struct Table {
    /// The heading.
    pub title: String,
    /// Its rows.
    pub rows: Vec<Row>,
}

impl Table {
    /// The table and its "how" lines, ready to print.
    pub fn render(&self, compare: bool) -> String {
        let mut header = vec!["figure", "velos", "target", "met?"];
        if compare {
            header.extend(["PM2", "velos/PM2"]);
        }
        let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        for row in &self.rows {
            let mut line = vec![
                row.figure.clone(),
                show(row.unit, &row.velos),
                row.target.map_or("—".into(), |t| t.show(row.unit)),
                met(row),
            ];
            if compare {
                let pm2 = row.pm2.as_ref();
                line.push(pm2.map_or("—".into(), |value| show(row.unit, value)));
                let ratio = match (row.velos.stats(), pm2.and_then(Value::stats)) {
                    (Some(v), Some(p)) if p.median != 0.0 => format_ratio(v.median / p.median),
                    _ => "—".into(),
                };
                line.push(ratio);
            }
            cells.push(line);
        }
        let columns = cells[0].len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| cells.iter().map(|line| width(&line[c])).max().unwrap_or(0))
            .collect();
        let mut out = format!("== {} ==\n", self.title);
        for line in &cells {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                // The figure is text: left-aligned; numbers are right-aligned.
                let pad = " ".repeat(widths[c] - width(cell));
                if c == 0 {
                    text.push_str(&format!("{cell}{pad}"));
                } else {
                    text.push_str(&format!("  {pad}{cell}"));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out.push_str("how:\n");
        for row in &self.rows {
            let velos_how = row.how.as_deref();
            let pm2 = row.pm2.as_ref().filter(|_| compare);
            let pm2_how = row.pm2_how.as_deref().or(velos_how);
            // Said once, at the end, when it is the same for both.
            let shared = pm2.is_some() && pm2_how == velos_how;
            let mut text = format!(
                "velos {}",
                describe(row.unit, &row.velos, velos_how.filter(|_| !shared))
            );
            if let Some(pm2) = pm2 {
                text.push_str(&format!("; PM2 {}", describe(row.unit, pm2, pm2_how)));
            }
            out.push_str(&format!("  {}: {text}\n", row.figure));
        }
        out
    }
}

/// Characters, not bytes: `≤`, `µ` and `—` are one column each.
fn width(text: &str) -> usize {
    text.chars().count()
}

fn show(unit: Unit, value: &Value) -> String {
    match value {
        Value::Measured(stats) => format_value(unit, stats.median),
        Value::Failed(_) => "failed".into(),
        Value::Skipped(_) => "n/a".into(),
    }
}

fn met(row: &Row) -> String {
    match (row.target, &row.velos) {
        (None, _) => "—".into(),
        (Some(target), Value::Measured(stats)) => {
            if target.met_by(stats) {
                "yes".into()
            } else {
                "NO".into()
            }
        }
        (Some(_), Value::Failed(_)) => "NO".into(),
        (Some(_), Value::Skipped(_)) => "—".into(),
    }
}

fn describe(unit: Unit, value: &Value, how: Option<&str>) -> String {
    let mut text = match value {
        Value::Measured(stats) if stats.runs == 1 => "1 reading".to_owned(),
        Value::Measured(stats) => format!(
            "{} runs, median {}, min {}, max {}",
            stats.runs,
            format_value(unit, stats.median),
            format_value(unit, stats.min),
            format_value(unit, stats.max)
        ),
        Value::Failed(reason) => format!("failed: {reason}"),
        Value::Skipped(reason) => format!("not measured: {reason}"),
    };
    if let Some(how) = how
        && matches!(value, Value::Measured(_))
    {
        text.push_str(&format!(" ({how})"));
    }
    text
}

/// A value in its unit, with three significant digits or so.
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Bytes => format_bytes(value),
        Unit::Seconds => format_seconds(value),
        Unit::Count => format_count(value),
        Unit::Rate(label) => format!("{} {label}", format_si(value)),
        Unit::ByteRate => format!("{} MB/s", significant(value / 1e6)),
        Unit::Ratio => format_ratio(value),
    }
}

fn format_bytes(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes.abs() >= MIB {
        format!("{} MiB", significant(bytes / MIB))
    } else if bytes.abs() >= KIB {
        format!("{} KiB", significant(bytes / KIB))
    } else {
        format!("{bytes:.0} B")
    }
}

fn format_seconds(seconds: f64) -> String {
    if seconds.abs() >= 1.0 {
        format!("{} s", significant(seconds))
    } else if seconds.abs() >= 1e-3 {
        format!("{} ms", significant(seconds * 1e3))
    } else if seconds == 0.0 {
        "0 s".into()
    } else {
        format!("{} µs", significant(seconds * 1e6))
    }
}

fn format_count(count: f64) -> String {
    if count.fract() == 0.0 {
        format!("{count:.0}")
    } else {
        significant(count)
    }
}

/// Large rates with k/M suffixes: `1.23 M`.
fn format_si(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{} M", significant(value / 1e6))
    } else if value.abs() >= 1e3 {
        format!("{} k", significant(value / 1e3))
    } else {
        significant(value)
    }
}

/// Ratios below 1 with two significant digits (`0.28×`, `0.0039×`), others like any value.
fn format_ratio(ratio: f64) -> String {
    if ratio != 0.0 && ratio.abs() < 1.0 {
        let decimals = (1.0 - ratio.abs().log10().floor()).clamp(2.0, 8.0) as usize;
        format!("{ratio:.decimals$}×")
    } else {
        format!("{}×", significant(ratio))
    }
}

/// Three significant digits, without a trailing `.0` on large values: `1.23`, `12.3`, `123`,
/// `4567`.
fn significant(value: f64) -> String {
    // Compared after rounding, so 9.999 is `10.0`, not `10.00`.
    let magnitude = value.abs();
    if (magnitude * 10.0).round() >= 1000.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if (magnitude * 100.0).round() >= 1000.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_in_a_readable_unit() {
        assert_eq!(format_value(Unit::Bytes, 1536.0), "1.50 KiB");
        assert_eq!(format_value(Unit::Bytes, 3.0 * 1024.0 * 1024.0), "3.00 MiB");
        assert_eq!(format_value(Unit::Bytes, 512.0), "512 B");
        assert_eq!(format_value(Unit::Count, 9.9966), "10.0");
        assert_eq!(format_value(Unit::Count, 99.96), "100");
        assert_eq!(format_value(Unit::Seconds, 0.00123), "1.23 ms");
        assert_eq!(format_value(Unit::Seconds, 0.000_045), "45.0 µs");
        assert_eq!(format_value(Unit::Seconds, 12.34), "12.3 s");
        assert_eq!(format_value(Unit::Seconds, 0.0), "0 s");
        assert_eq!(format_value(Unit::Count, 3.0), "3");
        assert_eq!(format_value(Unit::Rate("req/s"), 45_678.0), "45.7 k req/s");
        assert_eq!(format_value(Unit::ByteRate, 1_234_000_000.0), "1234 MB/s");
        assert_eq!(format_value(Unit::Ratio, 0.853), "0.85×");
        assert_eq!(format_value(Unit::Ratio, 0.0113), "0.011×");
        assert_eq!(format_value(Unit::Ratio, 0.0031), "0.0031×");
        assert_eq!(format_value(Unit::Ratio, 71.43), "71.4×");
    }

    #[test]
    fn targets_check_the_median_or_every_run() {
        let stats = Stats::of(&[1.0, 2.0, 9.0]).unwrap();
        assert!(Target::AtMost(2.0).met_by(&stats));
        assert!(!Target::AtMost(1.5).met_by(&stats));
        assert!(Target::AtLeast(2.0).met_by(&stats));
        assert!(!Target::EveryAtMost(2.0).met_by(&stats));
        assert!(Target::EveryAtMost(9.0).met_by(&stats));
    }

    fn row(velos: Value, pm2: Option<Value>) -> Row {
        Row {
            figure: "list --json, 100 processes".into(),
            unit: Unit::Seconds,
            velos,
            pm2,
            target: Some(Target::AtMost(0.0015)),
            how: Some("whole CLI".into()),
            pm2_how: None,
        }
    }

    #[test]
    fn a_table_shows_met_ratio_and_how() {
        let table = Table {
            title: "CLI".into(),
            rows: vec![row(
                Value::Measured(Stats::of(&[0.001, 0.002, 0.0012]).unwrap()),
                Some(Value::Measured(Stats::one(0.3))),
            )],
        };
        let text = table.render(true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== CLI ==");
        assert!(lines[1].starts_with("figure"), "{text}");
        assert!(lines[2].contains("1.20 ms"), "{text}");
        assert!(lines[2].contains("≤ 1.50 ms"), "{text}");
        assert!(lines[2].contains("yes"), "{text}");
        assert!(lines[2].contains("300 ms"), "{text}");
        assert!(lines[2].ends_with("0.0040×"), "{text}");
        assert!(
            lines[4].contains("velos 3 runs, median 1.20 ms, min 1.00 ms, max 2.00 ms"),
            "{text}"
        );
        assert!(
            lines[4].ends_with("max 2.00 ms; PM2 1 reading (whole CLI)"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_figure_misses_its_target_and_says_why() {
        let table = Table {
            title: "CLI".into(),
            rows: vec![row(Value::Failed("daemon gone".into()), None)],
        };
        let text = table.render(false);
        assert!(text.lines().nth(2).unwrap().contains("NO"), "{text}");
        assert!(text.contains("velos failed: daemon gone"), "{text}");
        assert!(!text.contains("PM2"), "{text}");
    }
}
