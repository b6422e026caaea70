//! `velos save` and `velos resurrect`, as in PM2: write the process list to the daemon's
//! dump file, and later start again what was running then.
//!
//! The dump (`$VELOS_HOME/dump.msgpack`) is written only by `save`. Separately, the daemon
//! keeps `state.msgpack` current on every change, for `velosd --resurrect` at boot (see
//! `velos startup`); `resurrect` does not read that one.

use std::io::{self, Write};

use anyhow::{Result, anyhow};
use futures_lite::future::block_on;
use velos_proto::{ErrorCode, ProcessInfo};
use velos_sdk::Error as SdkError;

use super::{daemon, explain};

/// `velos save`
pub fn save() -> Result<()> {
    let saved = block_on(daemon()?.save()).map_err(explain)?;
    writeln!(
        io::stdout().lock(),
        "saved {} to {}",
        plural(saved.processes, "process", "processes"),
        saved.path
    )?;
    Ok(())
}

/// `velos resurrect`
pub fn resurrect() -> Result<()> {
    let back = match block_on(daemon()?.resurrect()) {
        Ok(back) => back,
        // "nothing saved yet: run 'velos save' first" says it all; `explain` would add a
        // pointer to `velos list`, which does not help here.
        Err(SdkError::Daemon {
            code: ErrorCode::NotFound,
            message,
        }) => return Err(anyhow!(message)),
        Err(err) => return Err(explain(err)),
    };
    if back.is_empty() {
        eprintln!(
            "nothing to resurrect: every saved process that was running is in the list already"
        );
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    for process in &back {
        writeln!(stdout, "{}", resurrected_line(process))?;
    }
    Ok(())
}

/// `resurrected 'api' (id 0, pid 1234)`, or with its status when it did not start.
fn resurrected_line(process: &ProcessInfo) -> String {
    let (name, id) = (&process.name, process.id);
    match process.pid {
        Some(pid) => format!("resurrected '{name}' (id {id}, pid {pid})"),
        None => format!("resurrected '{name}' (id {id}), now {}", process.status),
    }
}

fn plural(count: u32, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use velos_proto::ProcessStatus;

    use super::*;
    use crate::output::tests::process;

    #[test]
    fn lines_say_what_came_back() {
        assert_eq!(
            resurrected_line(&process(2, "api", ProcessStatus::Running)),
            "resurrected 'api' (id 2, pid 4242)"
        );
        assert_eq!(
            resurrected_line(&process(3, "job", ProcessStatus::Errored)),
            "resurrected 'job' (id 3), now errored"
        );
        assert_eq!(plural(1, "process", "processes"), "1 process");
        assert_eq!(plural(0, "process", "processes"), "0 processes");
    }
}
