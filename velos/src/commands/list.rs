//! `velos list` (`ls`, `ps`): the process table, or `--json` for scripts.
//!
//! The JSON is the daemon's [`ProcessInfo`] objects as serde writes them: stable keys
//! (`id`, `name`, `pid`, `status`, `exit_code`, `cpu_percent`, `memory_bytes`, ...),
//! never coloured. An empty list is `[]` with `--json`; without it, stdout stays empty
//! and a hint goes to stderr. Below the table, each errored process that velos knows more
//! about (it gave up restarting it, or could not spawn it) gets a line saying why.
//!
//! The table fits the width of the output ([`output_width`]: `$COLUMNS`, else the
//! terminal's; no limit for a pipe without `COLUMNS`): long names are shortened with `…`
//! and the least useful columns dropped, and the lines below it are wrapped.

use std::io::{self, Write};

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::{NoParams, ProcessInfo, ProcessStatus, methods, rpc};
use velos_sdk::Error as SdkError;

use super::list_json;

use crate::output::{Style, output_width, process_table, wrap};

/// Printed on stderr when there is nothing to list.
const EMPTY_HINT: &str = "no processes; start one with 'velos start <script>'";

/// Runs `velos list`.
pub fn run(json: bool, style: Style) -> Result<()> {
    if json {
        return run_json();
    }
    let mut processes = super::retrying(|client| block_on(client.list()))?;
    processes.sort_by_key(|process| process.id);
    let mut stdout = io::stdout().lock();
    if processes.is_empty() {
        eprintln!("{EMPTY_HINT}");
    } else {
        let width = output_width();
        stdout.write_all(process_table(&processes, style, width).as_bytes())?;
        for line in error_lines(&processes) {
            for part in wrap(&line, width) {
                writeln!(stdout, "{part}")?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

/// `velos list --json`: the daemon's MessagePack written as JSON directly
/// ([`list_json`]), or, when that cannot be sure to print what the decoded list would,
/// decoded and written by serde_json.
fn run_json() -> Result<()> {
    let bytes = super::retrying(|client| block_on(client.call_raw::<methods::List>(NoParams {})))?;
    let text = match list_json::transcode(&bytes) {
        Some(text) => text,
        None => {
            let mut processes: Vec<ProcessInfo> =
                rpc::decode_value(&bytes).map_err(|err| super::explain(SdkError::Protocol(err)))?;
            processes.sort_by_key(|process| process.id);
            to_json(&processes)?.into_bytes()
        }
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(&text)?;
    stdout.flush()?;
    Ok(())
}

/// `'api' (id 0) errored: <reason>` for each errored process with a reason.
fn error_lines(processes: &[ProcessInfo]) -> Vec<String> {
    processes
        .iter()
        .filter(|process| process.status == ProcessStatus::Errored)
        .filter_map(|process| {
            let error = process.error.as_deref()?;
            Some(format!(
                "'{}' (id {}) errored: {error}",
                process.name, process.id
            ))
        })
        .collect()
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
    use super::*;
    use crate::output::tests::process;

    #[test]
    fn errored_processes_with_a_reason_get_a_line() {
        let mut gave_up = process(1, "worker", ProcessStatus::Errored);
        gave_up.error = Some("exited 3 times in a row".into());
        let quiet = process(2, "crashed", ProcessStatus::Errored);
        let running = process(0, "api", ProcessStatus::Running);
        assert_eq!(
            error_lines(&[running, gave_up, quiet]),
            ["'worker' (id 1) errored: exited 3 times in a row"]
        );
    }

    #[test]
    fn json_has_the_contract_keys_and_types() {
        let mut process = process(2, "api", ProcessStatus::Errored);
        process.exit_code = Some(1);
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
