//! Answering `log.read`: the lines in memory, and older ones read back from the files.
//!
//! The supervisor takes a [`Snapshot`] of each process under its ring's lock (cheap:
//! the lines in memory and where its files' older lines end); [`assemble`] then reads
//! the files off the supervisor's thread. Reading across rotation goes from the file
//! holding the oldest line in memory back through `.1`, `.2`, ... as far as needed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use velos_proto::{LogLine, Stream};

use crate::logfile::rotated_path;
use crate::logs::{FileBoundary, LogRing, MAX_LINE_BYTES};
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
    pub fn take(entry: &Entry, ring: &mut LogRing, wanted: usize) -> Snapshot {
        ring.settle();
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
            let read = tail_lines(&path, end, missing).unwrap_or_default();
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

/// Bytes read at a time when reading a file backwards.
const CHUNK_BYTES: usize = 64 * 1024;

/// Lines read back from a file, oldest first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileLines {
    /// The lines, without newlines, each cut to [`MAX_LINE_BYTES`].
    pub lines: Vec<Vec<u8>>,
    /// The last one has no newline after it.
    pub last_partial: bool,
}

/// Reads up to `count` lines that end before `end` in the file at `path`. A missing file
/// has no lines.
pub fn tail_lines(path: &Path, end: u64, count: usize) -> std::io::Result<FileLines> {
    if count == 0 {
        return Ok(FileLines::default());
    }
    let mut file = match crate::paths::open_in_home(path, std::fs::OpenOptions::new().read(true)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileLines::default()),
        Err(e) => return Err(e),
    };
    let end = end.min(file.metadata()?.len());
    let mut lines: Vec<Vec<u8>> = Vec::new();
    // Bytes of the line being assembled, in reverse order.
    let mut current: Vec<u8> = Vec::new();
    let mut pos = end;
    let mut chunk = vec![0; CHUNK_BYTES];
    // The byte just before `end` should be the newline of the last line wanted; skip it.
    let mut skip_newline = true;
    let mut last_partial = false;
    while pos > 0 && lines.len() < count {
        let step = (pos.min(CHUNK_BYTES as u64)) as usize;
        pos -= step as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk[..step])?;
        for &byte in chunk[..step].iter().rev() {
            if skip_newline {
                skip_newline = false;
                if byte == b'\n' {
                    continue;
                }
                last_partial = true;
            }
            if byte == b'\n' {
                lines.push(finish_reversed(&mut current));
                if lines.len() == count {
                    break;
                }
            } else {
                current.push(byte);
            }
        }
    }
    // The first line of the file has no newline before it.
    if end > 0 && pos == 0 && lines.len() < count {
        lines.push(finish_reversed(&mut current));
    }
    lines.reverse();
    Ok(FileLines {
        lines,
        last_partial,
    })
}

/// Turns reversed bytes into a line, keeping its first [`MAX_LINE_BYTES`].
fn finish_reversed(current: &mut Vec<u8>) -> Vec<u8> {
    current.reverse();
    let mut line = std::mem::take(current);
    line.truncate(MAX_LINE_BYTES);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of_missing(dir: &Path) -> bool {
        tail_lines(&dir.join("missing"), 10, 3)
            .unwrap()
            .lines
            .is_empty()
    }

    #[test]
    fn tail_lines_reads_backwards_from_a_boundary() {
        let dir = std::env::temp_dir().join(format!("velosd-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.log");
        std::fs::write(&path, b"one\n\ntwo\nthree\nfour\n").unwrap();
        let lines = |end, count| tail_lines(&path, end, count).unwrap().lines;
        assert_eq!(lines(20, 2), [b"three".to_vec(), b"four".to_vec()]);
        assert_eq!(
            lines(9, 10),
            [b"one".to_vec(), b"".to_vec(), b"two".to_vec()]
        );
        assert!(lines(0, 5).is_empty());
        assert!(lines_of_missing(&dir));
        std::fs::write(&path, b"\nabc\n").unwrap();
        assert_eq!(lines(5, 5), [b"".to_vec(), b"abc".to_vec()]);
        std::fs::write(&path, b"no newline").unwrap();
        assert_eq!(lines(10, 3), [b"no newline".to_vec()]);
        assert!(tail_lines(&path, 10, 3).unwrap().last_partial);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
