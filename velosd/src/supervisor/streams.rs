//! Logs and events for clients: `log.read`, `log.follow`, `log.flush`, and the event
//! subscribers.
//!
//! Followers and subscribers get what happens without the daemon ever waiting for them:
//! a full queue means a missed line (reported as a gap) or a missed event.

use velos_proto::{
    EventKind, LogLines, LogReadParams, ProcessEvent, ProcessInfo, Response, Target,
};

use super::{Reply, Supervisor};
use crate::error::Error;
use crate::follow::{self, FollowStream};
use crate::logfile::rotated_path;
use crate::logread::{Snapshot, assemble};
use crate::logs;

impl Supervisor {
    /// The snapshots of the lines in memory of `target`, and warnings about its files.
    pub(super) fn snapshots(
        &self,
        target: &Target,
        wanted: usize,
    ) -> Result<(Vec<Snapshot>, Vec<String>), Error> {
        let mut snapshots = Vec::new();
        let mut warnings = Vec::new();
        for id in self.table.resolve(target)? {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            if let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            snapshots.push(Snapshot::take(entry, &mut ring, wanted));
        }
        Ok((snapshots, warnings))
    }

    pub(super) fn read_logs(&mut self, params: LogReadParams, reply: Reply) {
        let wanted = params.lines as usize;
        let (snapshots, warnings) = match self.snapshots(&params.target, wanted) {
            Ok(found) => found,
            Err(error) => {
                let _ = reply.try_send(Err(error.into()));
                return;
            }
        };
        // Older lines come from the files: blocking reads, so off the supervisor's thread.
        smol::spawn(async move {
            let lines = smol::unblock(move || assemble(snapshots, wanted)).await;
            let _ = reply.try_send(Ok(Response::Logs(LogLines { lines, warnings })));
        })
        .detach();
    }

    /// `log.follow`: the last lines now (from memory; following is about what comes),
    /// and a follower registered on every process the target names. Registering under
    /// the same lock as the snapshot means no line falls between the two.
    pub(super) fn follow(
        &mut self,
        params: LogReadParams,
    ) -> Result<(LogLines, FollowStream), Error> {
        let ids = self.table.resolve(&params.target)?;
        let (follower, stream) = follow::channel();
        let wanted = params.lines as usize;
        let mut lines = Vec::new();
        let mut warnings = Vec::new();
        for id in ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            if let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            lines.push(Snapshot::take(entry, &mut ring, wanted));
            ring.follow(follower.clone());
        }
        if params.target == Target::All {
            self.all_followers.retain(|follower| !follower.is_closed());
            self.all_followers.push(follower);
        }
        let lines = assemble_in_memory(lines, wanted);
        Ok((LogLines { lines, warnings }, stream))
    }

    pub(super) fn flush(&mut self, target: &Target) -> Result<Vec<ProcessInfo>, Error> {
        let ids = match (self.table.resolve(target), target) {
            (Ok(ids), _) => ids,
            // A name no longer in the list: the files it left, if any (an empty answer).
            (Err(not_found), Target::Name(name)) => {
                velos_proto::home::validate_name(name)?;
                if super::logfiles::flush(&self.home.logs_dir(), name) {
                    return Ok(Vec::new());
                }
                return Err(not_found);
            }
            (Err(error), _) => return Err(error),
        };
        for &id in &ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            for path in [&entry.spec.out_log, &entry.spec.err_log] {
                // Truncated in place: the collector's append-mode handle writes on at 0.
                if let Ok(file) =
                    crate::paths::open_in_home(path, std::fs::OpenOptions::new().write(true))
                {
                    let _ = file.set_len(0);
                }
                for back in 1..=u64::from(entry.spec.log_files).max(1) {
                    let _ = std::fs::remove_file(rotated_path(path, back));
                }
            }
            ring.flushed();
        }
        Ok(self.infos(&ids))
    }

    /// Tells every subscriber about `kind` happening to process `id`.
    pub(super) fn emit(&mut self, id: u32, kind: EventKind, fill: impl FnOnce(&mut ProcessEvent)) {
        self.subscribers.retain(|tx| !tx.is_closed());
        if self.subscribers.is_empty() {
            return;
        }
        let Some(entry) = self.table.get(id) else {
            return;
        };
        let mut event = ProcessEvent {
            kind,
            id,
            name: entry.name.clone(),
            pid: None,
            exit_code: None,
            signal: None,
            restarts: entry.restarts,
            restart_in_ms: None,
            reason: None,
            time_ms: logs::now_ms(),
        };
        fill(&mut event);
        for tx in &self.subscribers {
            // A full queue: this subscriber misses the event rather than the daemon waiting.
            let _ = tx.try_send(event.clone());
        }
    }
}

/// The last `wanted` lines in memory across snapshots, in arrival order.
fn assemble_in_memory(snapshots: Vec<Snapshot>, wanted: usize) -> Vec<velos_proto::LogLine> {
    let mut lines: Vec<_> = snapshots
        .into_iter()
        .flat_map(Snapshot::into_lines)
        .collect();
    lines.sort_by_key(|line| line.time_ms.unwrap_or(0));
    lines.drain(..lines.len().saturating_sub(wanted));
    lines
}
