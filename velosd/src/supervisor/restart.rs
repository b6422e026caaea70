//! Automatic restarts: the backoff after an unexpected exit, and giving up.
//!
//! An unexpected exit of a process with autorestart arms a timer (100 ms, doubling, at most
//! 15 s; back to the start once a run lasted `min_uptime`) that sends
//! [`Command::AutoRestart`]; after `max_restarts` quick failures in a row the process is
//! left `errored` with the reason. Stop and delete cancel a pending restart (in `stop`).
//!
//! A spawn that fails during an automatic restart (EMFILE, EAGAIN, ENOMEM, a working
//! directory briefly gone) is one more quick failure: the process waits for the next
//! attempt with the backoff, its `error` saying why the last one failed. A restart the
//! user asked for (`velos restart`) fails at once instead, with the cause.

use std::time::{Duration, Instant};

use async_io::Timer;
use velos_proto::{EventKind, ProcessStatus};

use super::{Command, Supervisor};
use crate::run::launch;
use crate::state::backoff;

impl Supervisor {
    /// After an unexpected exit, or a failed spawn of an automatic restart (`spawn_error`):
    /// arm the backoff timer, or give up.
    pub(super) fn schedule_restart(&mut self, id: u32, spawn_error: Option<String>) {
        if self.shutting_down {
            return;
        }
        let commands = self.commands.clone();
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if !entry.spec.autorestart {
            return;
        }
        let lasted = entry.started_at.map_or(Duration::ZERO, |at| at.elapsed());
        if lasted >= entry.spec.min_uptime {
            entry.quick_failures = 0;
        }
        entry.quick_failures += 1;
        if entry.quick_failures > entry.spec.max_restarts {
            let reason = match &spawn_error {
                Some(error) => format!(
                    "failed {} times in a row within {} of starting, the last time: {error}; not restarting it",
                    entry.quick_failures,
                    humantime::format_duration(entry.spec.min_uptime),
                ),
                None => format!(
                    "exited {} times in a row within {} of starting; not restarting it (see 'velos logs {}')",
                    entry.quick_failures,
                    humantime::format_duration(entry.spec.min_uptime),
                    entry.name
                ),
            };
            entry.error = Some(reason.clone());
            self.emit(id, EventKind::Errored, |event| event.reason = Some(reason));
            return;
        }
        let delay = backoff(entry.quick_failures);
        let run = entry.run;
        entry.status = ProcessStatus::Waiting;
        entry.restart_at = Some(Instant::now() + delay);
        entry.restart_timer = Some(smol::spawn(async move {
            Timer::after(delay).await;
            let _ = commands.send(Command::AutoRestart { id, run }).await;
        }));
        let delay_ms = crate::state::millis(delay);
        if let Some(error) = &spawn_error {
            crate::log(format_args!(
                "'{}' (id {id}) could not be started again: {error}; trying again in {}",
                entry.name,
                humantime::format_duration(delay)
            ));
        }
        self.emit(id, EventKind::Restarting, |event| {
            event.restart_in_ms = Some(delay_ms);
            event.reason = spawn_error;
        });
    }

    pub(super) fn auto_restart(&mut self, id: u32, run: u64) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if entry.run != run || entry.status != ProcessStatus::Waiting || self.shutting_down {
            return;
        }
        entry.restarts += 1;
        if let Err(error) = self.relaunch(id) {
            // A failed spawn failed at once: a quick failure, with the backoff.
            if let Some(entry) = self.table.get_mut(id) {
                entry.started_at = Some(Instant::now());
            }
            self.schedule_restart(id, Some(error));
        }
        self.persist();
    }

    /// Starts a stopped process again; a failure leaves it `errored` with the reason,
    /// which is returned too.
    pub(super) fn relaunch(&mut self, id: u32) -> Result<(), String> {
        let Some(entry) = self.table.get_mut(id) else {
            return Ok(());
        };
        match launch(entry, &self.home, &self.commands) {
            Ok(()) => {
                let pid = entry.pid;
                self.leaders.extend(pid);
                self.emit(id, EventKind::Started, |event| event.pid = pid);
                Ok(())
            }
            Err(error) => {
                let reason = error.to_string();
                entry.status = ProcessStatus::Errored;
                entry.restart_timer = None;
                entry.error = Some(reason.clone());
                Err(reason)
            }
        }
    }
}
