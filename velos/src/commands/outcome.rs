//! Whether each process a command acted on ended up as asked, and the exit that follows.
//!
//! A command that acts on several processes (`restart all`, `resurrect`, a config file)
//! reports each one that worked on stdout as it goes, and collects the others here. At the
//! end, [`Outcomes::finish`] turns them into the command's result: success when there are
//! none; with one, its own line is the error; with more, each is printed on stderr and the
//! error counts them. So a deploy script that reads the exit code learns the truth.

use anyhow::{Result, anyhow};
use velos_proto::{ProcessInfo, ProcessStatus};

/// The processes a command did not bring to the state it was asked for.
#[derive(Debug)]
pub struct Outcomes {
    /// What was asked, for the summary: `restart`, `come back`, `start`.
    verb: &'static str,
    /// How many processes were acted on.
    total: usize,
    /// One line for each process that failed.
    failures: Vec<String>,
}

impl Outcomes {
    /// No outcome yet, of processes that were asked to `verb`.
    pub fn new(verb: &'static str) -> Outcomes {
        Outcomes {
            verb,
            total: 0,
            failures: Vec::new(),
        }
    }

    /// Counts one process that ended up as asked.
    pub fn succeeded(&mut self) {
        self.total += 1;
    }

    /// Counts one process that did not, with the line that says why.
    pub fn failed(&mut self, line: String) {
        self.total += 1;
        self.failures.push(line);
    }

    /// The command's result.
    pub fn finish(self) -> Result<()> {
        match self.failures.as_slice() {
            [] => Ok(()),
            [one] => Err(anyhow!("{one}")),
            many => {
                for line in many {
                    eprintln!("{line}");
                }
                Err(anyhow!(
                    "{} of {} processes did not {} (each is named above)",
                    many.len(),
                    self.total,
                    self.verb
                ))
            }
        }
    }
}

/// Whether a process that was asked to run does: it has a pid, or it is between two runs
/// of an automatic restart. Statuses this version does not know count as up when there is
/// a pid (a newer daemon's `starting`).
pub fn is_up(process: &ProcessInfo) -> bool {
    match process.status {
        ProcessStatus::Running | ProcessStatus::Starting | ProcessStatus::Waiting => true,
        ProcessStatus::Errored | ProcessStatus::Stopped | ProcessStatus::Stopping => false,
        ProcessStatus::Unknown => process.pid.is_some(),
    }
}

/// Why a process is not up: `errored: <reason>` or its status.
pub fn why_not_up(process: &ProcessInfo) -> String {
    match process.error.as_deref() {
        Some(reason) => format!("{}: {reason}", process.status),
        None => format!("it is {}", process.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::process;

    #[test]
    fn only_running_or_waiting_processes_count_as_up() {
        let mut errored = process(3, "api", ProcessStatus::Errored);
        errored.error = Some("could not run 'x'".into());
        assert!(!is_up(&errored));
        assert_eq!(why_not_up(&errored), "errored: could not run 'x'");
        let stopped = process(3, "api", ProcessStatus::Stopped);
        assert!(!is_up(&stopped));
        assert_eq!(why_not_up(&stopped), "it is stopped");
        assert!(is_up(&process(3, "api", ProcessStatus::Running)));
        assert!(is_up(&process(3, "api", ProcessStatus::Waiting)));
    }

    #[test]
    fn one_failure_is_the_error_and_several_are_counted() {
        let mut outcomes = Outcomes::new("restart");
        outcomes.succeeded();
        assert!(outcomes.finish().is_ok());

        let mut outcomes = Outcomes::new("restart");
        outcomes.succeeded();
        outcomes.failed("'a' (id 1) did not restart: errored".into());
        assert_eq!(
            outcomes.finish().unwrap_err().to_string(),
            "'a' (id 1) did not restart: errored"
        );

        let mut outcomes = Outcomes::new("restart");
        outcomes.succeeded();
        outcomes.failed("a".into());
        outcomes.failed("b".into());
        assert_eq!(
            outcomes.finish().unwrap_err().to_string(),
            "2 of 3 processes did not restart (each is named above)"
        );
    }
}
