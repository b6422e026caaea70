//! Restart schedules (`--cron-restart`): one task per scheduled process, armed while the
//! process should run (running, starting, or waiting for a restart) and dropped while it
//! is stopped, errored or being stopped, and when it is deleted. The task sleeps until the
//! schedule's next time (no polling), then sends [`Command::Trigger`] with the reason
//! `cron`, which the process's lifecycle turns into a restart, or a reload with a ready
//! mode; then it sleeps until the next time.

use std::time::SystemTime;

use async_channel::Sender;
use velos_proto::RestartReason;

use super::{Command, Supervisor};
use crate::cron::{self, Schedule};

impl Supervisor {
    /// Arms or drops the schedule of process `id` for the state it is in now (and arms
    /// the new one when its settings changed).
    pub(super) fn sync_cron(&mut self, id: u32) {
        let schedule = self.table.get(id).and_then(|entry| {
            entry
                .spec
                .cron
                .clone()
                .filter(|_| entry.lifecycle.wants_to_run())
        });
        match schedule {
            Some(schedule) => {
                let armed = self
                    .cron
                    .get(&id)
                    .is_some_and(|(expression, _)| expression == schedule.expression());
                if !armed {
                    let expression = schedule.expression().to_owned();
                    let task = smol::spawn(follow(id, schedule, self.commands.clone()));
                    self.cron.insert(id, (expression, task));
                }
            }
            None => {
                self.cron.remove(&id);
            }
        }
    }
}

/// Sends the trigger of process `id` at every time of `schedule`, until the supervisor
/// drops the task or is gone.
async fn follow(id: u32, schedule: Schedule, commands: Sender<Command>) {
    let detail = format!("cron {}", schedule.expression());
    while let Some(next) = schedule.next_after(SystemTime::now()) {
        // A timer counts on the monotonic clock: on waking, the wall clock says whether
        // it is time (it may have been set back meanwhile).
        loop {
            let left = cron::until(SystemTime::now(), next);
            if left.is_zero() {
                break;
            }
            async_io::Timer::after(left).await;
        }
        let trigger = Command::Trigger {
            id,
            reason: RestartReason::Cron,
            detail: detail.clone(),
        };
        if commands.send(trigger).await.is_err() {
            return;
        }
    }
}
