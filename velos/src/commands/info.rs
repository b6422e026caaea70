//! `velos info` (`describe`): one process in detail, as `key  value` lines, or `--json`.
//!
//! The JSON is the daemon's [`ProcessInfo`] as serde writes it, the same object as one
//! entry of `velos list --json`. The text shows what a person asks about a process:
//! where it runs, how it is doing, how its last run ended and why velos gave up on it,
//! its restart policy, its logs, CPU and memory. Values velos does not know show `-`;
//! lines about problems (`error`, `log error`) appear only when there is one.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::{ProcessInfo, ProcessStatus, RestartMode, RestartReason, Target};

use crate::output::{
    Style, cpu_column, format_delay, format_timestamp, format_uptime, memory_column, signal_name,
};
use crate::size::{format_bytes, format_limit};

/// Runs `velos info`.
pub fn run(target: &str, json: bool, style: Style) -> Result<()> {
    let target = Target::parse(target);
    let process = super::retrying(|client| block_on(client.info(target.clone())))?;
    let mut stdout = io::stdout().lock();
    if json {
        let mut text = serde_json::to_string_pretty(&process).context("writing JSON")?;
        text.push('\n');
        stdout.write_all(text.as_bytes())?;
    } else {
        stdout.write_all(details(&process, style).as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}

/// The text of `velos info`: one `key  value` line each, keys padded to one column.
fn details(process: &ProcessInfo, style: Style) -> String {
    let dash = || "-".to_owned();
    let mut rows: Vec<(&str, String)> = vec![
        ("name", process.name.clone()),
        ("id", process.id.to_string()),
        ("status", style.status(process.status)),
        ("pid", process.pid.map_or_else(dash, |pid| pid.to_string())),
    ];
    match (process.status, process.uptime_ms, process.restart_in_ms) {
        (ProcessStatus::Waiting, _, Some(ms)) => rows.push(("restart in", format_delay(ms))),
        (_, Some(ms), _) => rows.push(("uptime", format_uptime(Duration::from_millis(ms)))),
        _ => rows.push(("uptime", dash())),
    }
    rows.push(("restarts", restarts_text(process)));
    if let Some(last) = &process.last_restart {
        rows.push((
            "restarted",
            format!(
                "{} ({}) at {}",
                last.detail,
                reason_text(last.reason),
                format_timestamp(Some(last.time_ms))
            ),
        ));
    }
    rows.push(("last exit", last_exit(process)));
    if let Some(error) = &process.error {
        rows.push(("error", error.clone()));
    }
    if let Some(text) = &process.status_text {
        rows.push(("status text", text.clone()));
    }
    if let Some(mode) = &process.ready {
        let timeout = process.ready_timeout_ms.map_or_else(String::new, |ms| {
            format!(
                " (within {})",
                humantime::format_duration(Duration::from_millis(ms))
            )
        });
        rows.push(("ready", format!("{mode}{timeout}")));
    }
    rows.extend([
        ("script", process.script.clone()),
        (
            "interpreter",
            process.interpreter.clone().unwrap_or_else(dash),
        ),
        ("args", args_text(&process.args)),
        ("cwd", process.cwd.clone()),
        ("autorestart", autorestart_text(process)),
        ("stop exit codes", stop_exit_codes_text(process)),
        ("cron restart", cron_text(process)),
        (
            "kill timeout",
            humantime::format_duration(Duration::from_millis(process.kill_timeout_ms)).to_string(),
        ),
        (
            "kill signal",
            if process.kill_signal.is_empty() {
                "SIGTERM".to_owned()
            } else {
                process.kill_signal.clone()
            },
        ),
        ("cpu", cpu_column(process)),
        ("memory", memory_column(process)),
        ("out log", process.out_log.clone()),
        ("err log", process.err_log.clone()),
        ("log rotation", rotation_text(process)),
    ]);
    if process.time {
        rows.push((
            "log times",
            "each line in the files starts with its time (--time)".to_owned(),
        ));
    }
    if let Some(error) = &process.log_error {
        rows.push(("log error", error.clone()));
    }
    if let Some(limit) = memory_limit_text(process) {
        let at = rows
            .iter()
            .position(|(key, _)| *key == "memory")
            .map_or(0, |i| i + 1);
        rows.insert(at, ("memory limit", limit));
    }
    // Only when it has some.
    rows.retain(|(key, value)| {
        !matches!(*key, "stop exit codes" | "cron restart") || !value.is_empty()
    });
    if !process.listen.is_empty() {
        let at = rows
            .iter()
            .position(|(key, _)| *key == "cwd")
            .map_or(0, |i| i + 1);
        rows.insert(at, ("listen", process.listen.join(", ")));
    }
    if !process.watch.is_empty() {
        let at = rows
            .iter()
            .position(|(key, _)| *key == "listen" || *key == "cwd")
            .map_or(0, |i| i + 1);
        let at = if rows.get(at).is_some_and(|(key, _)| *key == "listen") {
            at + 1
        } else {
            at
        };
        rows.insert(at, ("watch", watch_text(process)));
        if let Some(error) = &process.watch_error {
            rows.insert(at + 1, ("watch error", error.clone()));
        }
    }
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

/// How a restart reason reads in text: the restart policy's restarts (`crash` on the
/// wire and in the metrics) are `autorestart`, as systemd and PM2 call them, since with
/// `--restart always` they include clean exits, which are no crash.
fn reason_text(reason: RestartReason) -> &'static str {
    match reason {
        RestartReason::Crash => "autorestart",
        other => other.as_str(),
    }
}

/// `3 (autorestart 1, manual 2)`: the count and, when known, the reasons that add up to
/// it.
fn restarts_text(process: &ProcessInfo) -> String {
    let counts = &process.restart_counts;
    let reasons: Vec<String> = [
        RestartReason::Crash,
        RestartReason::Watch,
        RestartReason::Memory,
        RestartReason::Cron,
        RestartReason::Manual,
    ]
    .into_iter()
    .filter(|&reason| counts.get(reason) > 0)
    .map(|reason| format!("{} {}", reason_text(reason), counts.get(reason)))
    .collect();
    if reasons.is_empty() {
        process.restarts.to_string()
    } else {
        format!("{} ({})", process.restarts, reasons.join(", "))
    }
}

/// `/srv/api/src, /srv/api/config.json (12 directories, 240 files; 300ms after the
/// last change; also ignoring uploads)`: what is watched, how much that is once set up,
/// the delay, and the user's ignores (the built-in ones are always there).
fn watch_text(process: &ProcessInfo) -> String {
    let mut notes = Vec::new();
    if let Some(watched) = process.watched {
        notes.push(format!(
            "{} director{}, {} file{}",
            watched.directories,
            if watched.directories == 1 { "y" } else { "ies" },
            watched.files,
            if watched.files == 1 { "" } else { "s" }
        ));
    }
    if let Some(ms) = process.watch_delay_ms {
        notes.push(format!(
            "{} after the last change",
            humantime::format_duration(Duration::from_millis(ms))
        ));
    }
    if !process.watch_ignore.is_empty() {
        notes.push(format!("also ignoring {}", process.watch_ignore.join(", ")));
    }
    let paths = process.watch.join(", ");
    if notes.is_empty() {
        paths
    } else {
        format!("{paths} ({})", notes.join("; "))
    }
}

/// `code 1`, `signal SIGKILL`, or `-` when it has not ended yet.
fn last_exit(process: &ProcessInfo) -> String {
    match (process.exit_code, process.signal) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => format!("signal {}", signal_name(signal)),
        (None, None) => "-".to_owned(),
    }
}

/// The arguments as a shell would need them: plain words bare, others quoted.
fn args_text(args: &[String]) -> String {
    if args.is_empty() {
        return "-".to_owned();
    }
    let plain = |arg: &str| {
        !arg.is_empty()
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@%+".contains(&b))
    };
    args.iter()
        .map(|arg| {
            if plain(arg) {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `on (gives up after 16 quick failures in a row; a run of 1s is not quick)`, `always
/// (...)` when an exit 0 is restarted too, or `off`.
fn autorestart_text(process: &ProcessInfo) -> String {
    if !process.autorestart || process.restart == RestartMode::Never {
        return "off".to_owned();
    }
    let (mode, exits) = match process.restart {
        RestartMode::Always => ("always", "exits (code 0 too)"),
        _ => ("on", "failures"),
    };
    format!(
        "{mode} (gives up after {} quick {exits} in a row; a run of {} is not quick)",
        process.max_restarts,
        humantime::format_duration(Duration::from_millis(process.min_uptime_ms))
    )
}

/// `512 MiB (whole tree), restart after 3s over it`, with a limit.
fn memory_limit_text(process: &ProcessInfo) -> Option<String> {
    let bytes = process.max_memory_bytes?;
    let window = Duration::from_millis(process.max_memory_for_ms.unwrap_or_default());
    Some(format!(
        "{} (whole tree), restart after {} over it",
        format_limit(bytes),
        humantime::format_duration(window)
    ))
}

/// `0 3 * * * (next 2026-05-02T01:00:00.000Z)`: the schedule and, while it is armed, its
/// next time (empty without a schedule).
fn cron_text(process: &ProcessInfo) -> String {
    let Some(expression) = &process.cron_restart else {
        return String::new();
    };
    match process.cron_next_ms {
        Some(next) => format!("{expression} (next {})", format_timestamp(Some(next))),
        None => format!("{expression} (not armed: it is not running)"),
    }
}

/// `0, 3`: the exit codes that are a clean stop (empty without any).
fn stop_exit_codes_text(process: &ProcessInfo) -> String {
    process
        .stop_exit_codes
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `at 10.0 MiB, 5 rotated files kept`, or `off`.
fn rotation_text(process: &ProcessInfo) -> String {
    match process.max_log_bytes {
        Some(bytes) => format!(
            "at {}, {} rotated file{} kept",
            format_bytes(bytes),
            process.log_files,
            if process.log_files == 1 { "" } else { "s" }
        ),
        None => "off".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::process;

    #[test]
    fn details_say_what_is_watched_after_the_working_directory() {
        let mut api = process(0, "api", ProcessStatus::Errored);
        api.watch = vec!["/srv/src".into(), "/srv/config.json".into()];
        api.watch_ignore = vec!["uploads".into()];
        api.watch_delay_ms = Some(300);
        api.watched = Some(velos_proto::WatchedCount {
            directories: 12,
            files: 1,
        });
        api.watch_error = Some("out of inotify watches".into());
        let text = details(&api, Style::plain());
        assert!(
            text.contains(
                "cwd           /srv\nwatch         /srv/src, /srv/config.json (12 directories, 1 \
                 file; 300ms after the last change; also ignoring uploads)\nwatch error   out \
                 of inotify watches\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn details_show_every_setting_in_one_column() {
        let mut api = process(0, "api", ProcessStatus::Running);
        api.args = vec!["--port".into(), "3000".into(), "two words".into()];
        api.restarts = 2;
        api.exit_code = Some(1);
        api.cpu_percent = Some(1.5);
        api.memory_bytes = Some(30 << 20);
        api.max_log_bytes = Some(10 << 20);
        api.out_log = "/h/logs/api-out.log".into();
        api.err_log = "/h/logs/api-err.log".into();
        let expected = "\
name          api
id            0
status        running
pid           4242
uptime        3m 12s
restarts      2
last exit     code 1
script        /srv/api.js
interpreter   node
args          --port 3000 'two words'
cwd           /srv
autorestart   on (gives up after 16 quick failures in a row; a run of 1s is not quick)
kill timeout  5s
kill signal   SIGTERM
cpu           1.5%
memory        30.0 MiB
out log       /h/logs/api-out.log
err log       /h/logs/api-err.log
log rotation  at 10.0 MiB, 5 rotated files kept
";
        assert_eq!(details(&api, Style::plain()), expected);
    }

    #[test]
    fn problems_and_waits_get_their_own_lines() {
        let mut worker = process(1, "worker", ProcessStatus::Waiting);
        worker.pid = None;
        worker.restart_in_ms = Some(400);
        worker.signal = Some(9);
        worker.error = Some("gave up".into());
        worker.log_error = Some("disk full".into());
        worker.autorestart = false;
        let text = details(&worker, Style::plain());
        for line in [
            "restart in    400ms\n",
            "last exit     signal SIGKILL\n",
            "error         gave up\n",
            "log error     disk full\n",
            "autorestart   off\n",
            "log rotation  off\n",
            "args          -\n",
            "pid           -\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(!text.contains("memory limit"), "{text}");
        worker.max_memory_bytes = Some(512 << 20);
        worker.max_memory_for_ms = Some(3000);
        let text = details(&worker, Style::plain());
        for line in [
            "memory        -\n",
            "memory limit  512 MiB (whole tree), restart after 3s over it\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn restarts_show_their_reasons_and_the_latest_one() {
        let mut api = process(0, "api", ProcessStatus::Running);
        api.restarts = 3;
        api.restart_counts = velos_proto::RestartCounts {
            crash: 1,
            cron: 2,
            ..Default::default()
        };
        api.last_restart = Some(velos_proto::LastRestart {
            reason: RestartReason::Cron,
            detail: "cron 0 3 * * *".into(),
            time_ms: 1_700_000_000_000,
        });
        let text = details(&api, Style::plain());
        for line in [
            "restarts      3 (autorestart 1, cron 2)\n",
            "restarted     cron 0 3 * * * (cron) at 2023-11-14T22:13:20.000Z\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        api.restart = RestartMode::Always;
        api.stop_exit_codes = vec![0, 3];
        let text = details(&api, Style::plain());
        for line in [
            "autorestart      always (gives up after 16 quick exits (code 0 too) in a row; a run of 1s is not quick)\n",
            "stop exit codes  0, 3\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        api.cron_restart = Some("0 3 * * *".into());
        api.cron_next_ms = Some(1_700_000_000_000);
        let text = details(&api, Style::plain());
        assert!(
            text.contains("cron restart     0 3 * * * (next 2023-11-14T22:13:20.000Z)\n"),
            "{text}"
        );
        api.cron_next_ms = None;
        let text = details(&api, Style::plain());
        let line = "cron restart     0 3 * * * (not armed: it is not running)\n";
        assert!(text.contains(line), "{line:?} not in\n{text}");
        // From a daemon that does not count reasons: the number alone.
        api.restart_counts = velos_proto::RestartCounts::default();
        assert_eq!(restarts_text(&api), "3");
    }

    #[test]
    fn args_are_quoted_only_when_needed() {
        let args = ["a", "", "it's", "x=1"].map(String::from);
        assert_eq!(args_text(&args), r"a '' 'it'\''s' x=1");
    }
}
