//! Answering `log.read`: the lines in memory, and older ones read back from the files.
//!
//! The supervisor takes a [`Snapshot`] of each process under its ring's lock (cheap:
//! the lines in memory and where its files' older lines end); [`assemble`] then reads
//! the files off the supervisor's thread. Reading across rotation goes from the file
//! holding the oldest line in memory back through `.1`, `.2`, ... as far as needed.

use std::path::PathBuf;

use velos_proto::{LogLine, Stream};

use crate::logs::{self, FileBoundary, LogRing, MAX_LINE_BYTES, rotated_path};
use crate::state::Entry;

/// The most bytes of log lines one answer carries, well under the frame limit.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// One process's log lines in memory, and where its files' older lines end.
pub struct Snapshot {
    id: u32,
    name: String,
    lines: Vec<LogLine>,
    boundaries: [FileBoundary; 2],
    files: [PathBuf; 2],
    /// Rotated files kept, so how far back reading may go.
    rotated: u64,
}

impl Snapshot {
    /// The last `wanted` lines of `entry` in memory, from its locked `ring`.
    pub fn take(entry: &Entry, ring: &LogRing, wanted: usize) -> Snapshot {
        Snapshot {
            id: entry.id,
            name: entry.name.clone(),
            lines: ring
                .last(wanted)
                .map(|line| LogLine {
                    id: entry.id,
                    name: entry.name.clone(),
                    stream: line.stream,
                    line: line.bytes.to_vec(),
                    partial: line.partial,
                    time_ms: Some(line.time_ms),
                })
                .collect(),
            boundaries: ring.file_boundaries(),
            files: [entry.spec.out_log.clone(), entry.spec.err_log.clone()],
            rotated: entry
                .spec
                .max_log_bytes
                .map_or(0, |_| u64::from(entry.spec.log_files)),
        }
    }

    /// The lines in memory.
    pub fn into_lines(self) -> Vec<LogLine> {
        self.lines
    }

    /// Up to `count` lines of `stream` older than those in memory, oldest first.
    fn older(&self, stream: Stream, count: usize) -> Vec<LogLine> {
        let index = usize::from(stream == Stream::Err);
        let boundary = self.boundaries[index];
        let mut lines: Vec<LogLine> = Vec::new();
        for back in boundary.file..=self.rotated.max(boundary.file) {
            let missing = count.saturating_sub(lines.len());
            if missing == 0 {
                break;
            }
            let path = rotated_path(&self.files[index], back);
            let end = if back == boundary.file {
                boundary.end
            } else {
                u64::MAX
            };
            let read = logs::tail_lines(&path, end, missing).unwrap_or_default();
            let last = read.lines.len().saturating_sub(1);
            let mut batch: Vec<LogLine> = read
                .lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| LogLine {
                    id: self.id,
                    name: self.name.clone(),
                    stream,
                    line,
                    partial: i == last && read.last_partial,
                    time_ms: None,
                })
                .collect();
            // Older files come before what was read so far.
            batch.append(&mut lines);
            lines = batch;
        }
        lines
    }
}

/// The last `wanted` lines across snapshots, oldest first: memory first, then older
/// lines from the files (stdout's before stderr's, since the files do not record how
/// the two interleaved), bounded in bytes.
pub fn assemble(snapshots: Vec<Snapshot>, wanted: usize) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = Vec::new();
    for snapshot in snapshots {
        let missing = wanted.saturating_sub(snapshot.lines.len());
        if missing > 0 {
            let mut older = snapshot.older(Stream::Out, missing);
            older.extend(snapshot.older(Stream::Err, missing));
            older.drain(..older.len().saturating_sub(missing));
            all.extend(older);
        }
        all.extend(snapshot.lines);
    }
    // Across processes, lines read back from files (no time) sort first; a stable sort
    // keeps each process's own order.
    all.sort_by_key(|line| line.time_ms.unwrap_or(0));
    all.drain(..all.len().saturating_sub(wanted));
    let mut bytes = 0;
    let keep_from = all
        .iter()
        .rposition(|line| {
            bytes += line.line.len().min(MAX_LINE_BYTES) + 64;
            bytes > MAX_REPLY_BYTES
        })
        .map_or(0, |i| i + 1);
    all.drain(..keep_from);
    all
}
