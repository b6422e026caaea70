//! `velos list` (`ls`, `ps`): the process table, or `--json` for scripts.
//!
//! The JSON is the daemon's [`ProcessInfo`] objects as serde writes them: stable keys
//! (`id`, `name`, `pid`, `status`, `exit_code`, ...), never coloured. An empty list is
//! `[]` with `--json`; without it, stdout stays empty and a hint goes to stderr.

use std::io::{self, Write};

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::ProcessInfo;

use super::{daemon, explain};
use crate::output::{Style, process_table};

/// Printed on stderr when there is nothing to list.
const EMPTY_HINT: &str = "no processes; start one with 'velos start <script>'";

/// Runs `velos list`.
pub fn run(json: bool, style: Style) -> Result<()> {
    let mut processes = block_on(daemon()?.list()).map_err(explain)?;
    processes.sort_by_key(|process| process.id);
    let mut stdout = io::stdout().lock();
    if json {
        stdout.write_all(to_json(&processes)?.as_bytes())?;
    } else if processes.is_empty() {
        eprintln!("{EMPTY_HINT}");
    } else {
        stdout.write_all(process_table(&processes, style).as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}

/// The JSON array on one line (compact, like `pm2 jlist`: scripts parse it, and `jq`
/// pretty-prints it for people), with a final newline.
fn to_json(processes: &[ProcessInfo]) -> Result<String> {
    let mut text = serde_json::to_string(processes).context("writing JSON")?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use velos_proto::ProcessStatus;

    use super::*;

    #[test]
    fn json_has_the_contract_keys_and_types() {
        let process = ProcessInfo {
            id: 2,
            name: "api".into(),
            pid: None,
            status: ProcessStatus::Errored,
            exit_code: Some(1),
            signal: None,
            restarts: 0,
            uptime_ms: None,
            script: "/srv/api.js".into(),
            interpreter: None,
            args: vec![],
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            out_log: String::new(),
            err_log: String::new(),
            error: None,
            log_error: None,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            max_log_bytes: None,
            log_files: 5,
            restart_in_ms: None,
            cpu_percent: None,
            memory_bytes: None,
        };
        let text = to_json(&[process]).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let object = &value.as_array().unwrap()[0];
        assert_eq!(object["id"], 2);
        assert_eq!(object["name"], "api");
        assert!(object["pid"].is_null());
        assert_eq!(object["status"], "errored");
        assert_eq!(object["exit_code"], 1);
        assert_eq!(to_json(&[]).unwrap(), "[]\n");
    }
}
