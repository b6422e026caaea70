//! The memory sampler: the timer behind `--max-memory-restart`.
//!
//! It exists only while some running process has a memory limit (a daemon without one
//! does no work for it): [`Supervisor::start_sampler`] starts it once a batch of commands
//! leaves such a process running, and a tick that finds none ends it. Each tick samples
//! the whole tree of every running process with a limit (the figures `list` and `info`
//! show, `sample_usage`), at most [`FRESH`] old, and feeds the memory figure to the
//! process's [`OverLimit`](crate::memory_limit::OverLimit); a run that stayed over its
//! limit for the window gets one [`Command::Trigger`] with the reason `memory`; one over
//! it from its start goes to its lifecycle at once as a quick failure
//! ([`Cause::memory_at_start`]), which gives up after `max_restarts` of them in a row.

use std::time::{Duration, Instant};

use velos_proto::{ProcessStatus, RestartReason};

use super::{Command, Supervisor, escaped_of, sample_usage};
use crate::lifecycle::{Cause, Event};
use crate::memory_limit::Over;
use crate::orphans;

/// How often the sampler ticks.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// A tick samples again unless the figures (from `list`, say) are younger than this, so
/// that each tick's figure is at most this old.
const FRESH: Duration = Duration::from_millis(500);

impl Supervisor {
    /// Starts the sampler if a process with a memory limit runs and it is not ticking.
    pub(super) fn start_sampler(&mut self) {
        if self.sampler.is_some() || !self.any_limited_running() {
            return;
        }
        let commands = self.commands.clone();
        self.sampler = Some(smol::spawn(async move {
            let mut ticks = async_io::Timer::interval(SAMPLE_INTERVAL);
            while futures_lite::StreamExt::next(&mut ticks).await.is_some() {
                if commands.send(Command::SampleMemory).await.is_err() {
                    break;
                }
            }
        }));
    }

    /// Whether some process with a memory limit has a live run.
    fn any_limited_running(&self) -> bool {
        self.table
            .iter()
            .any(|entry| entry.spec.max_memory.is_some() && entry.is_alive())
    }

    /// A tick: samples every running process with a memory limit, and asks for the
    /// restart of each whose tree stayed over it for its window. Ends the sampler when
    /// no such process is left.
    pub(super) fn sample_memory(&mut self) {
        let limited: Vec<u32> = self
            .table
            .iter()
            .filter(|entry| entry.spec.max_memory.is_some() && entry.is_alive())
            .map(|entry| entry.id)
            .collect();
        if limited.is_empty() {
            self.sampler = None;
            return;
        }
        // One look at our children finds every run's escaped descendants.
        let strays = orphans::strays(self.home.root(), &self.leaders);
        let now = Instant::now();
        let mut over = Vec::new();
        for id in limited {
            let Some(entry) = self.table.get_mut(id) else {
                continue;
            };
            let Some(run) = entry.lifecycle.run().map(|run| run.number) else {
                continue;
            };
            sample_usage(entry, now, &escaped_of(&strays, id, run), FRESH);
            if entry.lifecycle.second().is_some() {
                // Being replaced (a reload): its own course; a failed one leaves the run,
                // which gets a new window.
                entry.over_limit.pause();
                continue;
            }
            // Only a running process is restarted: one starting or stopping has its own
            // course.
            if entry.lifecycle.status() != ProcessStatus::Running || entry.usage.run != run {
                continue;
            }
            let (Some(limit), Some(bytes)) = (entry.spec.max_memory, entry.usage.memory_bytes)
            else {
                continue;
            };
            if let Some(asked) = entry.over_limit.observe(&limit, run, bytes, now) {
                over.push((id, run, asked));
            }
        }
        for (id, run, Over { detail, at_start }) in over {
            match at_start {
                // A quick failure rather than a trigger (the lifecycle counts it toward
                // max_restarts), so it goes straight to the lifecycle with what it needs.
                Some(used) if !self.shutting_down => self.apply(
                    id,
                    Event::Trigger {
                        cause: Cause::memory_at_start(detail, used),
                        escaped: escaped_of(&strays, id, run),
                        now,
                    },
                ),
                Some(_) => {}
                None => {
                    // Our own inbox, which is unbounded: handled with the next batch.
                    let _ = self.commands.try_send(Command::Trigger {
                        id,
                        reason: RestartReason::Memory,
                        detail,
                    });
                }
            }
        }
    }
}
