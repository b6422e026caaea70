//! The Prometheus text format (0.0.4) of a [`Snapshot`], and what `/readyz` says. Pure:
//! figures in, text out.
//!
//! Each family is written whole (`# HELP`, `# TYPE`, then its samples), in a fixed
//! order; every process sample carries the labels `name`, `instance` and `id`, so no
//! two samples are one series. Only the figures of [`ProcessSample`] reach the text:
//! never an environment variable, an argument or a path.

use std::fmt::Write;

use velos_proto::{ProcessStatus, Stream};

use super::{Daemon, ProcessSample, REASONS, Snapshot};

/// `Content-Type` of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics, in the text format.
pub fn render(snapshot: &Snapshot, daemon: &Daemon) -> String {
    let mut out = String::with_capacity(1024 + snapshot.processes.len() * 2048);
    let mut text = Text(&mut out);
    text.family(
        "velos_build_info",
        "gauge",
        "The velos daemon's version, as a label; always 1.",
    );
    text.sample(
        "velos_build_info",
        &[("version", daemon.version)],
        &Value::Int(1),
    );
    text.family(
        "velos_daemon_resident_memory_bytes",
        "gauge",
        "Resident memory of the velos daemon itself, in bytes.",
    );
    if let Some(bytes) = daemon.resident_bytes {
        text.sample(
            "velos_daemon_resident_memory_bytes",
            &[],
            &Value::Int(bytes.into()),
        );
    }
    let processes = &snapshot.processes;
    text.process_family(
        processes,
        "velos_process_up",
        "gauge",
        "1 while the process has a live run (a pid), else 0.",
        |p| vec![(None, Value::Int(p.pid.is_some().into()))],
    );
    text.process_family(
        processes,
        "velos_process_ready",
        "gauge",
        "1 while the process is running and ready (status running), else 0.",
        |p| {
            vec![(
                None,
                Value::Int((p.status == ProcessStatus::Running).into()),
            )]
        },
    );
    text.process_family(
        processes,
        "velos_process_cpu_seconds_total",
        "counter",
        "CPU time (user and system) used by the current run's whole process tree; starts again at each run.",
        |p| p.cpu_seconds.map(|s| (None, Value::Float(s))).into_iter().collect(),
    );
    text.process_family(
        processes,
        "velos_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the current run's whole process tree, in bytes.",
        |p| {
            p.memory_bytes
                .map(|b| (None, Value::Int(b.into())))
                .into_iter()
                .collect()
        },
    );
    text.process_family(
        processes,
        "velos_process_restarts_total",
        "counter",
        "Restarts since the process was added, by reason: crash (the restart policy), watch, memory, cron, manual (restart or reload).",
        |p| {
            REASONS
                .iter()
                .zip(p.restarts)
                .map(|(reason, count)| {
                    (Some(("reason", reason.as_str())), Value::Int(count.into()))
                })
                .collect()
        },
    );
    text.process_family(
        processes,
        "velos_process_start_time_seconds",
        "gauge",
        "When the current run started, in seconds since the Unix epoch.",
        |p| {
            p.start_time_seconds
                .map(|s| (None, Value::Float(s)))
                .into_iter()
                .collect()
        },
    );
    text.process_family(
        processes,
        "velos_process_last_exit_code",
        "gauge",
        "The exit code of the process's last run that exited with one.",
        |p| {
            p.last_exit_code
                .map(|c| (None, Value::Int(c.into())))
                .into_iter()
                .collect()
        },
    );
    text.process_family(
        processes,
        "velos_log_bytes_total",
        "counter",
        "Bytes the process wrote to its stdout (stream out) and stderr (stream err) since the daemon started.",
        |p| {
            [Stream::Out, Stream::Err]
                .into_iter()
                .zip(p.log_bytes)
                .map(|(stream, bytes)| {
                    (Some(("stream", stream.as_str())), Value::Int(bytes.into()))
                })
                .collect()
        },
    );
    text.process_family(
        processes,
        "velos_reloads_total",
        "counter",
        "Reloads of the process since the daemon started, by result: replaced, failed (the old run kept running) or skipped (not running).",
        |p| {
            let counts = p.reloads;
            [
                ("replaced", counts.replaced),
                ("failed", counts.failed),
                ("skipped", counts.skipped),
            ]
            .into_iter()
            .map(|(result, count)| (Some(("result", result)), Value::Int(count.into())))
            .collect()
        },
    );
    out
}

/// The processes that keep `/readyz` from answering 200: those with a ready mode that
/// are not running and ready, as `name:K status` (`api:0 starting`).
pub fn not_ready(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .processes
        .iter()
        .filter(|p| p.ready_mode && p.status != ProcessStatus::Running)
        .map(|p| format!("{}:{} {}", p.name, p.instance, p.status))
        .collect()
}

/// A sample's value.
enum Value {
    Int(i128),
    Float(f64),
}

struct Text<'a>(&'a mut String);

impl Text<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Help text is ours: no backslash or newline to escape.
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &Value) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(label);
                self.0.push_str("=\"");
                escape_into(self.0, text);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = match value {
            Value::Int(n) => writeln!(self.0, " {n}"),
            Value::Float(x) if x.is_finite() => writeln!(self.0, " {x}"),
            Value::Float(_) => writeln!(self.0, " NaN"),
        };
    }

    /// A family with a sample per process (or several, told apart by one more label).
    fn process_family(
        &mut self,
        processes: &[ProcessSample],
        name: &str,
        kind: &str,
        help: &str,
        values: impl Fn(&ProcessSample) -> Vec<(Option<(&'static str, &'static str)>, Value)>,
    ) {
        self.family(name, kind, help);
        for process in processes {
            let (instance, id) = (process.instance.to_string(), process.id.to_string());
            for (extra, value) in values(process) {
                let mut labels = vec![
                    ("name", process.name.as_str()),
                    ("instance", instance.as_str()),
                    ("id", id.as_str()),
                ];
                labels.extend(extra);
                self.sample(name, &labels, &value);
            }
        }
    }
}

/// A label value as the format wants it: `\` → `\\`, `"` → `\"`, a newline → `\n`.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ReloadCounts;

    fn sample(id: u32, name: &str, status: ProcessStatus) -> ProcessSample {
        ProcessSample {
            id,
            name: name.to_owned(),
            instance: 0,
            status,
            pid: (status == ProcessStatus::Running).then_some(4242),
            ready_mode: false,
            cpu_seconds: None,
            memory_bytes: None,
            restarts: [0; 5],
            start_time_seconds: None,
            last_exit_code: None,
            log_bytes: [0; 2],
            reloads: ReloadCounts::default(),
        }
    }

    fn daemon() -> Daemon {
        Daemon {
            version: "0.1.0",
            resident_bytes: Some(4096),
        }
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let mut api = sample(3, "api", ProcessStatus::Running);
        api.cpu_seconds = Some(1.25);
        api.memory_bytes = Some(1 << 20);
        api.restarts = [2, 0, 0, 0, 1];
        api.start_time_seconds = Some(1_700_000_000.5);
        api.log_bytes = [10, 20];
        api.reloads.replaced = 4;
        let mut worker = sample(4, "worker", ProcessStatus::Errored);
        worker.last_exit_code = Some(3);
        let text = render(
            &Snapshot {
                processes: vec![api, worker],
            },
            &daemon(),
        );
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{line} before its TYPE");
            }
        }
        for wanted in [
            "velos_build_info{version=\"0.1.0\"} 1",
            "velos_daemon_resident_memory_bytes 4096",
            "velos_process_up{name=\"api\",instance=\"0\",id=\"3\"} 1",
            "velos_process_up{name=\"worker\",instance=\"0\",id=\"4\"} 0",
            "velos_process_ready{name=\"api\",instance=\"0\",id=\"3\"} 1",
            "velos_process_cpu_seconds_total{name=\"api\",instance=\"0\",id=\"3\"} 1.25",
            "velos_process_resident_memory_bytes{name=\"api\",instance=\"0\",id=\"3\"} 1048576",
            "velos_process_restarts_total{name=\"api\",instance=\"0\",id=\"3\",reason=\"crash\"} 2",
            "velos_process_restarts_total{name=\"api\",instance=\"0\",id=\"3\",reason=\"manual\"} 1",
            "velos_process_restarts_total{name=\"worker\",instance=\"0\",id=\"4\",reason=\"cron\"} 0",
            "velos_process_start_time_seconds{name=\"api\",instance=\"0\",id=\"3\"} 1700000000.5",
            "velos_process_last_exit_code{name=\"worker\",instance=\"0\",id=\"4\"} 3",
            "velos_log_bytes_total{name=\"api\",instance=\"0\",id=\"3\",stream=\"err\"} 20",
            "velos_reloads_total{name=\"api\",instance=\"0\",id=\"3\",result=\"replaced\"} 4",
        ] {
            assert!(
                text.lines().any(|line| line == wanted),
                "no {wanted} in\n{text}"
            );
        }
        // A stopped process has no CPU, memory or start time.
        assert!(
            !text.contains("cpu_seconds_total{name=\"worker\""),
            "{text}"
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_into(&mut out, "a\\b\"c\nd");
        assert_eq!(out, "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn readiness_names_what_is_not_ready() {
        let mut starting = sample(0, "api", ProcessStatus::Starting);
        starting.ready_mode = true;
        let mut ready = sample(1, "web", ProcessStatus::Running);
        ready.ready_mode = true;
        // Without a ready mode, a process never holds readiness up.
        let plain = sample(2, "cron", ProcessStatus::Errored);
        let snapshot = Snapshot {
            processes: vec![starting, ready, plain],
        };
        assert_eq!(not_ready(&snapshot), ["api:0 starting"]);
        assert!(not_ready(&Snapshot::default()).is_empty());
    }
}
