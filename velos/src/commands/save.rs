//! `velos save` and `velos resurrect`, as in PM2: write the process list to the daemon's
//! dump file, and later bring it back.
//!
//! The dump (`$VELOS_HOME/dump.msgpack`) is written only by `save`, which the daemon
//! refuses for an empty list over a dump that holds processes unless `--force`.
//! Separately, the daemon keeps `state.msgpack` current on every change, for
//! `velosd --resurrect` at boot (see `velos startup`); `resurrect` reads it only when
//! nothing was saved, and says so. Every saved process comes back, the stopped ones
//! stopped; one that cannot come back makes the exit non-zero.

use std::io::{self, Write};

use anyhow::Result;
use futures_lite::future::block_on;
use velos_proto::{Home, ProcessInfo, ProcessStatus, SaveParams};

use super::outcome::{Outcomes, why_not_up};
use super::{daemon, explain_change};

/// `velos save [--force]`
pub fn save(force: bool) -> Result<()> {
    let saved = block_on(daemon()?.save_with(SaveParams { force }))
        .map_err(|err| explain_change(err, "the save"))?;
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
    let home = Home::from_env()?;
    // The daemon reads the state file when there is no dump; said here, before it acts.
    let from_state = !home.dump_path().exists() && home.state_path().exists();
    // "nothing saved yet: run 'velos save' first" comes back as the daemon says it.
    let back = match block_on(daemon()?.resurrect()) {
        Ok(back) => back,
        Err(err) => return Err(explain_change(err, "the resurrect")),
    };
    if from_state {
        eprintln!(
            "nothing was saved with 'velos save' ({} does not exist): bringing back the list \
             the daemon last kept, {}",
            home.dump_path().display(),
            home.state_path().display()
        );
    }
    if back.is_empty() {
        eprintln!("nothing to resurrect: every saved process is in the list already");
        return Ok(());
    }
    let mut outcomes = Outcomes::new("come back");
    let mut stdout = io::stdout().lock();
    let several = crate::output::apps_of_several(&back);
    for process in &back {
        let shown = crate::output::label(process, &several);
        if process.status == ProcessStatus::Errored {
            outcomes.failed(failed_line(process, &shown));
        } else {
            outcomes.succeeded();
            writeln!(stdout, "{}", resurrected_line(process, &shown))?;
        }
    }
    drop(stdout);
    outcomes.finish()
}

/// `resurrected 'api' (id 0, pid 1234)`, or with its status when it was saved stopped;
/// `name` is how to name it (`web:1` for an instance of an app of several).
fn resurrected_line(process: &ProcessInfo, name: &str) -> String {
    let id = process.id;
    match process.pid {
        Some(pid) => format!("resurrected '{name}' (id {id}, pid {pid})"),
        None => format!("resurrected '{name}' (id {id}), {}", process.status),
    }
}

/// `'api' (id 0) did not come back: errored: <reason>`
fn failed_line(process: &ProcessInfo, name: &str) -> String {
    format!(
        "'{name}' (id {}) did not come back: {}",
        process.id,
        why_not_up(process)
    )
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
            resurrected_line(&process(2, "api", ProcessStatus::Running), "api"),
            "resurrected 'api' (id 2, pid 4242)"
        );
        assert_eq!(
            resurrected_line(&process(3, "job", ProcessStatus::Errored), "job"),
            "resurrected 'job' (id 3), errored"
        );
        let mut gone = process(4, "gone", ProcessStatus::Errored);
        gone.error = Some("not brought back: script '/x' not found".into());
        assert_eq!(
            failed_line(&gone, "gone"),
            "'gone' (id 4) did not come back: errored: not brought back: script '/x' not found"
        );
        let mut web = process(5, "web", ProcessStatus::Running);
        web.instance = 1;
        let several = crate::output::apps_of_several(std::slice::from_ref(&web));
        assert_eq!(
            resurrected_line(&web, &crate::output::label(&web, &several)),
            "resurrected 'web:1' (id 5, pid 4242)"
        );
        assert_eq!(plural(1, "process", "processes"), "1 process");
        assert_eq!(plural(0, "process", "processes"), "0 processes");
    }
}
