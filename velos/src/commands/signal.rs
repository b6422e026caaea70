//! `velos signal <SIG> <target>`: a signal to the process group of each running process
//! of the target (`process.signal`; PM2's `sendSignal`).
//!
//! One line on stdout per process that got it; one on stderr per process of the target
//! that is not running (it got nothing).

use std::io::{self, Write};

use anyhow::Result;
use futures_lite::future::block_on;
use velos_proto::{ProcessInfo, ProcessStatus, Target};

use super::{daemon, explain_change};
use crate::output::{apps_of_several, label};

/// Runs `velos signal`; `signal` is a name already checked by the command line.
pub fn run(signal: &str, target: &str) -> Result<()> {
    let target = Target::parse(target);
    let what = format!("sending {signal} to '{target}'");
    let mut client = daemon()?;
    let processes =
        block_on(client.signal(target, signal)).map_err(|err| explain_change(err, &what))?;
    let several = apps_of_several(&processes);
    let mut stdout = io::stdout().lock();
    for process in &processes {
        let who = label(process, &several);
        match sent_to(process) {
            Some(pid) => writeln!(
                stdout,
                "sent {signal} to '{who}' (id {}, pid {pid})",
                process.id
            )?,
            None => eprintln!(
                "'{who}' (id {}) is {}: no signal sent",
                process.id, process.status
            ),
        }
    }
    Ok(())
}

/// The pid of the group that got the signal, if `process` was running.
fn sent_to(process: &ProcessInfo) -> Option<u32> {
    matches!(
        process.status,
        ProcessStatus::Running | ProcessStatus::Starting
    )
    .then_some(process.pid)
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::process;

    #[test]
    fn only_running_processes_got_it() {
        let mut running = process(1, "web", ProcessStatus::Running);
        running.pid = Some(40);
        assert_eq!(sent_to(&running), Some(40));
        let mut stopped = process(2, "web", ProcessStatus::Stopped);
        stopped.pid = None;
        assert_eq!(sent_to(&stopped), None);
    }
}
