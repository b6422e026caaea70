//! `process.signal`: a signal of the user's choice to the process group of each running
//! process a target names (PM2's `sendSignal`: `velos signal SIGHUP nginx`).

use velos_proto::{ProcessInfo, ProcessStatus, SignalParams};

use super::Supervisor;
use crate::error::Error;
use crate::process;

impl Supervisor {
    /// Sends the signal to the current run's process group of every process `target`
    /// names that is running (or starting); the others get nothing. Refused, with nothing
    /// sent, when the signal names none or no process of the target runs. Answers with
    /// every process the target names, as they are once the signal went out: those not
    /// `running` or `starting` were not signalled.
    pub(super) fn signal(&mut self, params: SignalParams) -> Result<Vec<ProcessInfo>, Error> {
        let signal = process::parse_signal(&params.signal).map_err(Error::BadSignal)?;
        let ids = self.table.resolve(&params.target)?;
        let groups: Vec<u32> = ids
            .iter()
            .filter_map(|&id| self.table.get(id))
            .filter(|entry| receives_signals(entry.lifecycle.status()))
            .filter_map(|entry| entry.lifecycle.pid())
            .collect();
        if groups.is_empty() {
            let only = match ids[..] {
                [id] => self
                    .table
                    .get(id)
                    .map(|entry| (entry.name.clone(), id, entry.lifecycle.status())),
                _ => None,
            };
            return Err(Error::NotRunning {
                target: params.target,
                only,
            });
        }
        for pgid in groups {
            // The leader's pid is its group's id.
            process::signal_group(pgid, signal);
        }
        Ok(self.infos(&ids))
    }
}

/// Whether a process with this status gets a signal sent to it: one whose run is up, not
/// one being stopped (its stop signal went already) nor one without a run.
pub(crate) fn receives_signals(status: ProcessStatus) -> bool {
    matches!(status, ProcessStatus::Running | ProcessStatus::Starting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runs_that_are_up_get_signals() {
        assert!(receives_signals(ProcessStatus::Running));
        assert!(receives_signals(ProcessStatus::Starting));
        for status in [
            ProcessStatus::Stopping,
            ProcessStatus::Stopped,
            ProcessStatus::Errored,
            ProcessStatus::Waiting,
        ] {
            assert!(!receives_signals(status), "{status}");
        }
    }
}
