//! [`Command::Metrics`](super::Command::Metrics): the figures a metrics scrape renders,
//! copied out of the table in one step (rendering and HTTP happen on the connections'
//! thread, see `crate::metrics`).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use velos_proto::Stream;

use super::Supervisor;
use crate::metrics::{ProcessSample, Snapshot};
use crate::state::Entry;

impl Supervisor {
    /// Every process's figures, by id; CPU and memory sampled first when `usage` (at
    /// most once a second per process, as for `list`).
    pub(super) fn metrics(&mut self, usage: bool) -> Snapshot {
        if usage {
            let ids: Vec<u32> = self.table.iter().map(|entry| entry.id).collect();
            self.refresh_usage(&ids);
        }
        let (now, wall) = (Instant::now(), SystemTime::now());
        let processes = self
            .table
            .iter()
            .map(|entry| sample(entry, now, wall))
            .collect();
        Snapshot { processes }
    }
}

fn sample(entry: &Entry, now: Instant, wall: SystemTime) -> ProcessSample {
    let life = &entry.lifecycle;
    // Figures of the current run only, as `info` shows them.
    let usage = Some(entry.usage)
        .filter(|usage| life.is_alive() && life.run().is_some_and(|run| run.number == usage.run));
    let start_time_seconds = life.run().and_then(|run| {
        let started = wall.checked_sub(now.saturating_duration_since(run.since))?;
        Some(started.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
    });
    let log_bytes = {
        let ring = crate::logs::lock(&entry.ring);
        [ring.received(Stream::Out), ring.received(Stream::Err)]
    };
    ProcessSample {
        id: entry.id,
        name: entry.name.clone(),
        instance: entry.instance,
        status: life.status(),
        pid: life.pid(),
        ready_mode: entry.spec.ready.is_some(),
        cpu_seconds: usage
            .and_then(|usage| usage.cpu_total)
            .map(|cpu| cpu.as_secs_f64()),
        memory_bytes: usage.and_then(|usage| usage.memory_bytes),
        restarts: {
            let counts = life.restart_counts();
            crate::metrics::REASONS.map(|reason| counts.get(reason))
        },
        start_time_seconds,
        last_exit_code: life.last_exit().and_then(|exit| exit.code),
        log_bytes,
        reloads: entry.reloads,
    }
}
