//! Logs and events for clients: `log.read`, `log.follow`, `log.flush`, and the event
//! subscribers.
//!
//! Followers and subscribers get what happens without the daemon ever waiting for them:
//! a full queue means a missed line (reported as a gap) or a missed event.

use velos_proto::{
    EventKind, LogLines, LogReadParams, ProcessCursor, ProcessEvent, ProcessInfo, Response, Target,
};

use super::{Reply, Supervisor};
use crate::error::Error;
use crate::follow::{self, FollowStream};
use crate::logfile::rotated_path;
use crate::logread::{MAX_REPLY_BYTES, Snapshot, read_page};
use crate::logs;

impl Supervisor {
    pub(super) fn read_logs(&mut self, params: LogReadParams, reply: Reply) {
        let wanted = params.lines as usize;
        let first = params.cursor.is_none();
        let cursors: Vec<ProcessCursor> = match params.cursor {
            Some(cursor) => cursor.processes,
            None => match self.table.resolve(&params.target) {
                Ok(ids) => ids
                    .into_iter()
                    .map(|id| ProcessCursor {
                        id,
                        at: None,
                        continued: false,
                    })
                    .collect(),
                Err(error) => {
                    let _ = reply.try_send(Err(error.into()));
                    return;
                }
            },
        };
        // Snapshots of as many processes as one page is likely to need; the rest wait
        // in the cursor.
        let mut snapshots = Vec::new();
        let mut warnings = Vec::new();
        let mut estimate = 0usize;
        let mut cursors = cursors.into_iter();
        let mut rest = Vec::new();
        for cursor in cursors.by_ref() {
            if estimate >= MAX_REPLY_BYTES {
                rest.push(cursor);
                break;
            }
            // A process deleted between pages has nothing more to show.
            let Some(entry) = self.table.get(cursor.id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            if first && let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            let snapshot = Snapshot::take(entry, &mut ring, cursor, wanted);
            estimate = estimate.saturating_add(snapshot.estimate());
            snapshots.push(snapshot);
        }
        rest.extend(cursors);
        // Older lines come from the files: blocking reads, so off the supervisor's thread.
        smol::spawn(async move {
            let (lines, next) =
                smol::unblock(move || read_page(snapshots, rest, MAX_REPLY_BYTES)).await;
            let answer = LogLines {
                lines,
                warnings,
                next,
            };
            let _ = reply.try_send(Ok(Response::LogRead(answer)));
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
            // A line not ended yet that followers have not seen all of goes to them now,
            // so that what this follower's first lines show of it is what everyone saw,
            // and its end reaches everyone as the same continuation.
            ring.show_partial(velos_proto::Stream::Out);
            ring.show_partial(velos_proto::Stream::Err);
            let cursor = ProcessCursor {
                id,
                at: None,
                continued: false,
            };
            lines.push(Snapshot::take(entry, &mut ring, cursor, wanted));
            ring.follow(follower.clone());
        }
        if params.target == Target::All {
            self.all_followers.retain(|follower| !follower.is_closed());
            self.all_followers.push(follower);
        }
        let lines = assemble_in_memory(lines);
        Ok((
            LogLines {
                lines,
                warnings,
                next: None,
            },
            stream,
        ))
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
            entry.ring.flush(|| {
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
            });
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
            instance: entry.instance,
            pid: None,
            exit_code: None,
            signal: None,
            restarts: entry.lifecycle.restarts(),
            restart_in_ms: None,
            reason: None,
            restart_reason: None,
            time_ms: logs::now_ms(),
        };
        fill(&mut event);
        for tx in &self.subscribers {
            // A full queue: this subscriber misses the event rather than the daemon waiting.
            let _ = tx.try_send(event.clone());
        }
    }
}

/// The lines in memory of every snapshot (each its last `lines`), in arrival order.
fn assemble_in_memory(snapshots: Vec<Snapshot>) -> Vec<velos_proto::LogLine> {
    let mut lines: Vec<_> = snapshots
        .into_iter()
        .flat_map(Snapshot::into_lines)
        .collect();
    lines.sort_by_key(|line| line.time_ms.unwrap_or(0));
    lines
}
