//! Log collection: a task per child pipe appends to the log file and keeps the last
//! lines in memory; `log.read` answers from memory and, for older lines, from the files.
//!
//! Ordering: each chunk read from a pipe is written to the file first, then split into
//! lines for the ring, so the file always holds at least what the ring shows. Every ring
//! line remembers where it starts in its file; reading older lines back from a file stops
//! at the oldest line the ring still holds, so nothing is shown twice even while the
//! child keeps writing.
//!
//! Faults: a log file deleted under the daemon is created again at the next write; a
//! write that fails (disk full) is recorded for `velos logs` and `velos list --json`
//! (`log_error`), the lines stay in memory, and the next chunk tries the file again, so
//! logging resumes by itself once the disk has room.
//!
//! Memory is bounded: at most [`RING_LINES`] lines and [`RING_BYTES`] bytes a process,
//! and a line keeps at most [`MAX_LINE_BYTES`] in memory (the file gets all of it). The
//! collector reads a fixed-size chunk at a time, so a child writing faster than the disk
//! is slowed by its full pipe, never buffered without limit.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncRead, AsyncReadExt};
use velos_proto::{LogLine, Stream};

/// Lines kept in memory per process.
pub const RING_LINES: usize = 1000;
/// Bytes of line content kept in memory per process.
pub const RING_BYTES: usize = 1024 * 1024;
/// Bytes of one line kept in memory; the rest of a longer line is only in the file.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Bytes a collector reads at a time at first: most programs write little, and an
/// idle process should cost next to nothing.
const FIRST_CHUNK_BYTES: usize = 1024;
/// Bytes a collector reads at a time at most, once its writer keeps filling the buffer.
const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Pipe capacity asked for once a writer is that busy (the default is 64 KiB): fewer,
/// larger reads, and a writer that blocks less often.
const BUSY_PIPE_BYTES: usize = 1024 * 1024;
/// Bytes read at a time when reading a file backwards.
const CHUNK_BYTES: usize = 64 * 1024;

/// A line held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingLine {
    /// Which pipe.
    pub stream: Stream,
    /// At most [`MAX_LINE_BYTES`] of it, without the newline.
    pub bytes: Box<[u8]>,
    /// When it arrived, Unix milliseconds.
    pub time_ms: u64,
    /// It ended without a newline (the pipe closed mid-line).
    pub partial: bool,
    /// Which file of its stream it is in: the rotation count when it was written.
    generation: u64,
    /// Where it starts in that file.
    offset: u64,
}

/// The partial last line of one stream, and where the stream's file ends.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// File offset where `bytes` starts.
    start: u64,
    /// File offset just after the last byte written: the file's size.
    end: u64,
    /// Rotations (and flushes) of this stream's file so far.
    generation: u64,
}

/// What a follower receives.
#[derive(Debug, Clone)]
pub enum FollowItem {
    /// A new line.
    Line(LogLine),
    /// Lines skipped because the follower read too slowly.
    Gap(u64),
}

/// Room for lines on their way to one follower; when it is full, lines are counted as
/// skipped rather than waited for.
pub const FOLLOW_QUEUE: usize = 1024;

/// A connection following this process's lines.
#[derive(Debug)]
pub struct Follower {
    tx: async_channel::Sender<FollowItem>,
    dropped: u64,
}

impl Follower {
    /// A follower sending on `tx`.
    pub fn new(tx: async_channel::Sender<FollowItem>) -> Follower {
        Follower { tx, dropped: 0 }
    }

    /// Hands `line` over without waiting; false once the follower has gone.
    fn offer(&mut self, line: &LogLine) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        if self.dropped > 0 && self.tx.try_send(FollowItem::Gap(self.dropped)).is_ok() {
            self.dropped = 0;
        }
        if self.dropped > 0 || self.tx.try_send(FollowItem::Line(line.clone())).is_err() {
            self.dropped += 1;
        }
        true
    }
}

/// Where reading a stream's older lines back from its files starts: `file` files back
/// from the current one (0 is the current file, 1 is `.1`, ...), before byte `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBoundary {
    /// How many rotations back.
    pub file: u64,
    /// Read lines that end before this offset; older files are read whole.
    pub end: u64,
}

/// The last lines of one process, both streams in arrival order.
#[derive(Debug, Default)]
pub struct LogRing {
    id: u32,
    name: String,
    lines: VecDeque<RingLine>,
    bytes: usize,
    pending: [Pending; 2],
    followers: Vec<Follower>,
    /// The last error writing a log file, for `velos logs` to report.
    pub write_error: Option<String>,
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Out => 0,
        Stream::Err => 1,
    }
}

impl LogRing {
    /// An empty ring for the process `id` called `name`.
    pub fn new(id: u32, name: &str) -> LogRing {
        LogRing {
            id,
            name: name.to_owned(),
            ..LogRing::default()
        }
    }

    /// Adds a follower: it gets every line completed from now on.
    pub fn follow(&mut self, follower: Follower) {
        self.followers.push(follower);
    }

    /// Notes that `stream`'s file is `len` bytes long before a new run appends to it.
    pub fn set_file_len(&mut self, stream: Stream, len: u64) {
        let pending = &mut self.pending[slot(stream)];
        pending.bytes.clear();
        pending.start = len;
        pending.end = len;
    }

    /// The size of `stream`'s current file, as far as the ring knows.
    fn file_len(&self, stream: Stream) -> u64 {
        self.pending[slot(stream)].end
    }

    /// Whether `stream` is between lines (nothing of a line written yet).
    fn at_line_start(&self, stream: Stream) -> bool {
        let pending = &self.pending[slot(stream)];
        pending.start == pending.end
    }

    /// Notes that `stream`'s file was replaced by one `len` bytes long (deleted and made
    /// again, or rotated): the lines in memory are not in the new file.
    fn file_replaced(&mut self, stream: Stream, len: u64) {
        let pending = &mut self.pending[slot(stream)];
        pending.generation += 1;
        pending.start = len;
        pending.end = len;
    }

    /// Forgets every line, as after `velos flush`; the files are empty now.
    pub fn flushed(&mut self) {
        self.lines.clear();
        self.bytes = 0;
        for pending in &mut self.pending {
            pending.bytes.clear();
            pending.generation += 1;
            pending.start = 0;
            pending.end = 0;
        }
    }

    /// Adds bytes read from `stream` (already written to its file).
    pub fn push(&mut self, stream: Stream, mut chunk: &[u8], time_ms: u64) {
        // A chunk with more lines than the ring holds would evict all of its own early
        // lines (and everything older): skip straight past them, unless someone follows
        // and must see every line.
        if self.followers.is_empty()
            && let Some(cut) = memchr::memrchr_iter(b'\n', chunk).nth(RING_LINES)
        {
            self.lines.clear();
            self.bytes = 0;
            let pending = &mut self.pending[slot(stream)];
            pending.bytes.clear();
            pending.end += cut as u64 + 1;
            pending.start = pending.end;
            chunk = &chunk[cut + 1..];
        }
        while let Some(newline) = memchr::memchr(b'\n', chunk) {
            self.extend_pending(stream, &chunk[..newline]);
            self.pending[slot(stream)].end += 1;
            self.end_line(stream, time_ms, false);
            chunk = &chunk[newline + 1..];
        }
        self.extend_pending(stream, chunk);
    }

    /// Ends `stream`: a last line without a newline becomes a line.
    pub fn finish(&mut self, stream: Stream, time_ms: u64) {
        if !self.at_line_start(stream) {
            self.end_line(stream, time_ms, true);
        }
    }

    fn extend_pending(&mut self, stream: Stream, bytes: &[u8]) {
        let pending = &mut self.pending[slot(stream)];
        let room = MAX_LINE_BYTES.saturating_sub(pending.bytes.len());
        pending
            .bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        pending.end += bytes.len() as u64;
    }

    fn end_line(&mut self, stream: Stream, time_ms: u64, partial: bool) {
        let pending = &mut self.pending[slot(stream)];
        let line = RingLine {
            stream,
            bytes: std::mem::take(&mut pending.bytes).into_boxed_slice(),
            time_ms,
            partial,
            generation: pending.generation,
            offset: pending.start,
        };
        pending.start = pending.end;
        if !self.followers.is_empty() {
            let shared = LogLine {
                id: self.id,
                name: self.name.clone(),
                stream,
                line: line.bytes.to_vec(),
                partial,
                time_ms: Some(time_ms),
            };
            self.followers
                .retain_mut(|follower| follower.offer(&shared));
        }
        self.bytes += line.bytes.len();
        self.lines.push_back(line);
        while self.lines.len() > RING_LINES || self.bytes > RING_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.bytes.len();
        }
    }

    /// The last `n` lines in memory, oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &RingLine> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n))
    }

    /// How many lines are in memory.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// For each stream, where its lines that are not in memory end in its files.
    pub fn file_boundaries(&self) -> [FileBoundary; 2] {
        [Stream::Out, Stream::Err].map(|stream| {
            let pending = &self.pending[slot(stream)];
            // Lines of a stream sit in memory oldest first, without gaps, so the oldest
            // one marks the boundary.
            match self.lines.iter().find(|line| line.stream == stream) {
                Some(oldest) => FileBoundary {
                    file: pending.generation - oldest.generation,
                    end: oldest.offset,
                },
                None => FileBoundary {
                    file: 0,
                    end: pending.start,
                },
            }
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Opens a log file for appending (0600) and returns it with its length.
pub fn open_log(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// The path of a stream's log file `back` rotations ago (`app-out.log.2`).
pub fn rotated_path(path: &Path, back: u64) -> PathBuf {
    if back == 0 {
        return path.to_owned();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{back}"));
    PathBuf::from(name)
}

/// How a stream's log file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file reaches this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`.1` is the newest).
    pub keep: u32,
}

/// One stream's log file, opened again when it was deleted or the last write failed,
/// and rotated at a line boundary once it reaches its size limit.
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    rotation: Option<Rotation>,
}

impl LogFile {
    /// Opens `path` for a new run, noting its length in the ring.
    pub fn open(
        path: PathBuf,
        rotation: Option<Rotation>,
        ring: &Mutex<LogRing>,
        stream: Stream,
    ) -> LogFile {
        let mut ring = lock(ring);
        let file = match open_log(&path) {
            Ok((file, len)) => {
                ring.set_file_len(stream, len);
                Some(file)
            }
            Err(error) => {
                ring.set_file_len(stream, 0);
                ring.write_error = Some(format!("cannot open {}: {error}", path.display()));
                None
            }
        };
        LogFile {
            path,
            file,
            rotation,
        }
    }

    /// Appends `chunk` and hands it to the ring, rotating the file whenever it would
    /// pass its size limit: at the last line boundary that keeps it within the limit, or
    /// right after a line that alone crosses it. A chunk may fill several files; no line
    /// is ever split across two.
    fn write(
        &mut self,
        chunk: &[u8],
        ring: &mut LogRing,
        stream: Stream,
        time_ms: u64,
    ) -> Result<(), String> {
        let mut rest = chunk;
        let mut written = Ok(());
        while let Some(rotation) = self.rotation {
            let len = ring.file_len(stream);
            if len + (rest.len() as u64) < rotation.max_bytes {
                break;
            }
            let room =
                usize::try_from(rotation.max_bytes.saturating_sub(len)).unwrap_or(usize::MAX);
            let cut = match memchr::memrchr(b'\n', &rest[..room.min(rest.len())]) {
                Some(newline) => newline + 1,
                // Nothing of a line written yet: this file is done.
                None if ring.at_line_start(stream) && len > 0 => 0,
                // A line that crosses the limit ends this file.
                None => match memchr::memchr(b'\n', &rest[room.min(rest.len())..]) {
                    Some(newline) => room.min(rest.len()) + newline + 1,
                    // In the middle of a long line: rotate after it ends.
                    None => break,
                },
            };
            let (before, after) = rest.split_at(cut);
            written = written.and(self.append(before, ring, stream));
            ring.push(stream, before, time_ms);
            self.rotate(rotation.keep);
            ring.file_replaced(stream, 0);
            rest = after;
        }
        written = written.and(self.append(rest, ring, stream));
        ring.push(stream, rest, time_ms);
        written
    }

    /// Appends `bytes`, opening the file again first if it is gone.
    fn append(&mut self, bytes: &[u8], ring: &mut LogRing, stream: Stream) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        // A file deleted under us has no links left; writing on would lose the lines.
        let gone = match &self.file {
            Some(file) => file.metadata().map_or(true, |m| m.nlink() == 0),
            None => true,
        };
        if gone {
            let (file, len) = open_log(&self.path)
                .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
            ring.file_replaced(stream, len);
            self.file = Some(file);
        }
        let file = self.file.as_mut().expect("opened just above");
        file.write_all(bytes).map_err(|e| {
            // Try a fresh open next time: the path may be writable again by then.
            self.file = None;
            format!("cannot write {}: {e}", self.path.display())
        })
    }

    /// Shifts `.1` to `.2` and so on (dropping the oldest past `keep`), moves the current
    /// file to `.1`, and lets the next append create a new one.
    fn rotate(&mut self, keep: u32) {
        self.file = None;
        let keep = u64::from(keep);
        // Rename failures leave a file where it was; logging goes on either way.
        let _ = std::fs::remove_file(rotated_path(&self.path, keep.max(1)));
        for back in (1..keep).rev() {
            let _ = std::fs::rename(
                rotated_path(&self.path, back),
                rotated_path(&self.path, back + 1),
            );
        }
        if keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::rename(&self.path, rotated_path(&self.path, 1));
        }
        if let Ok((file, _)) = open_log(&self.path) {
            self.file = Some(file);
        }
    }
}

/// Asks for a larger pipe; where that is not allowed, the default pipe still works.
fn grow_pipe(pipe: &impl std::os::fd::AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::pipe::fcntl_setpipe_size(pipe, BUSY_PIPE_BYTES);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = pipe;
}

/// Copies one child pipe to its log file and ring until the pipe closes.
///
/// File writes are plain blocking `write` calls: they land in the page cache and return
/// at memory speed, and a thread hop per chunk would cost more than it saves. A write
/// error (disk full, file gone) is recorded for `velos logs`; reading goes on, so the
/// child never blocks on a full pipe, and the ring keeps its lines.
pub async fn collect(
    mut pipe: impl AsyncRead + std::os::fd::AsFd + Unpin,
    mut file: LogFile,
    ring: Arc<Mutex<LogRing>>,
    stream: Stream,
) {
    let mut chunk = vec![0; FIRST_CHUNK_BYTES];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if n == chunk.len() && chunk.len() < MAX_CHUNK_BYTES {
            // A full read: the writer is ahead of us, so read more at a time.
            chunk.resize(chunk.len() * 4, 0);
            if chunk.len() >= MAX_CHUNK_BYTES {
                grow_pipe(&pipe);
            }
        }
        let mut ring = lock(&ring);
        match file.write(&chunk[..n], &mut ring, stream, now_ms()) {
            Ok(()) => ring.write_error = None,
            Err(error) => ring.write_error = Some(error),
        }
    }
    lock(&ring).finish(stream, now_ms());
}

/// Locks a ring. A poisoned lock still holds valid lines (pushes cannot panic halfway
/// through in a way that matters to a reader), so it is used as is.
pub fn lock(ring: &Mutex<LogRing>) -> std::sync::MutexGuard<'_, LogRing> {
    ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
    let mut file = match File::open(path) {
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

    fn texts(ring: &LogRing, n: usize) -> Vec<String> {
        ring.last(n)
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut ring = LogRing::default();
        ring.push(Stream::Out, b"hel", 1);
        ring.push(Stream::Out, b"lo\nwor", 2);
        ring.push(Stream::Out, b"ld\n\nlast", 3);
        assert_eq!(texts(&ring, 10), ["hello", "world", ""]);
        ring.finish(Stream::Out, 4);
        assert_eq!(texts(&ring, 2), ["", "last"]);
    }

    #[test]
    fn streams_interleave_in_arrival_order() {
        let mut ring = LogRing::default();
        ring.push(Stream::Out, b"o1\n", 1);
        ring.push(Stream::Err, b"e1\n", 2);
        ring.push(Stream::Out, b"o2\n", 3);
        let streams: Vec<_> = ring.last(3).map(|l| l.stream).collect();
        assert_eq!(streams, [Stream::Out, Stream::Err, Stream::Out]);
    }

    #[test]
    fn a_chunk_longer_than_the_ring_keeps_its_last_lines_and_offsets() {
        let mut ring = LogRing::default();
        ring.push(Stream::Out, b"old\npart", 0);
        let mut chunk = Vec::new();
        for i in 0..2500 {
            chunk.extend_from_slice(format!("{i:04}\n").as_bytes());
        }
        chunk.extend_from_slice(b"tail");
        ring.push(Stream::Out, &chunk, 1);
        assert_eq!(ring.len(), RING_LINES);
        assert_eq!(texts(&ring, 1), ["2499"]);
        assert_eq!(ring.last(RING_LINES).next().unwrap().bytes[..], *b"1500");
        // "old\n" is 4 bytes, "part" + "0000\n" ... each line 5 bytes after that.
        let oldest_offset = 4 + 4 + 1500 * 5;
        assert_eq!(ring.file_boundaries()[0].end, oldest_offset);
        ring.finish(Stream::Out, 2);
        assert_eq!(texts(&ring, 1), ["tail"]);
    }

    #[test]
    fn ring_keeps_the_last_thousand_lines() {
        let mut ring = LogRing::default();
        for i in 0..1500 {
            ring.push(Stream::Out, format!("{i}\n").as_bytes(), 0);
        }
        assert_eq!(ring.len(), RING_LINES);
        assert_eq!(texts(&ring, 1), ["1499"]);
        assert_eq!(ring.last(RING_LINES).next().unwrap().bytes[..], *b"500");
    }

    #[test]
    fn long_lines_are_capped_in_memory_and_bytes_are_bounded() {
        let mut ring = LogRing::default();
        let long = vec![b'x'; 3 * MAX_LINE_BYTES];
        for _ in 0..200 {
            ring.push(Stream::Out, &long, 0);
            ring.push(Stream::Out, b"\n", 0);
        }
        assert!(ring.last(1).next().unwrap().bytes.len() == MAX_LINE_BYTES);
        assert!(ring.bytes <= RING_BYTES);
    }

    #[test]
    fn boundaries_point_at_the_oldest_line_in_memory() {
        let mut ring = LogRing::default();
        ring.set_file_len(Stream::Out, 100);
        ring.push(Stream::Out, b"ab\ncd\n", 0);
        ring.push(Stream::Err, b"x", 0);
        let at = |file, end| FileBoundary { file, end };
        assert_eq!(ring.file_boundaries(), [at(0, 100), at(0, 0)]);
        for _ in 0..RING_LINES {
            ring.push(Stream::Out, b"z\n", 0);
        }
        // "ab" and "cd" (100..106) were evicted, so the boundary moved past them.
        assert_eq!(ring.file_boundaries()[0], at(0, 106));
        // After a rotation the oldest line in memory is one file back.
        ring.file_replaced(Stream::Out, 0);
        ring.push(Stream::Out, b"new\n", 0);
        // (The new line pushed the oldest "z" out.)
        assert_eq!(ring.file_boundaries()[0], at(1, 108));
    }

    #[test]
    fn followers_get_new_lines_and_a_gap_when_they_lag() {
        let mut ring = LogRing::new(3, "api");
        let (tx, rx) = async_channel::bounded(2);
        ring.follow(Follower::new(tx));
        ring.push(Stream::Out, b"one\ntwo\nthree\nfour\n", 7);
        let first = rx.try_recv().unwrap();
        assert!(
            matches!(&first, FollowItem::Line(line) if line.line == b"one" && line.name == "api" && line.id == 3)
        );
        assert!(matches!(rx.try_recv().unwrap(), FollowItem::Line(line) if line.line == b"two"));
        ring.push(Stream::Out, b"five\n", 8);
        // "three" and "four" did not fit; the follower hears about them before "five".
        assert!(matches!(rx.try_recv().unwrap(), FollowItem::Gap(2)));
        assert!(matches!(rx.try_recv().unwrap(), FollowItem::Line(line) if line.line == b"five"));
        drop(rx);
        ring.push(Stream::Out, b"six\n", 9);
        assert!(ring.followers.is_empty(), "a gone follower is dropped");
    }

    #[test]
    fn files_rotate_at_a_line_boundary_and_keep_the_newest() {
        let dir = std::env::temp_dir().join(format!("velosd-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let ring = Mutex::new(LogRing::default());
        let rotation = Rotation {
            max_bytes: 10,
            keep: 2,
        };
        let mut file = LogFile::open(path.clone(), Some(rotation), &ring, Stream::Out);
        let mut guard = lock(&ring);
        for chunk in [
            &b"aaaa\nbb"[..],
            b"bb\ncccc\ndd",
            b"dd\n",
            b"eeee\nffff\n",
            b"gg\n",
        ] {
            file.write(chunk, &mut guard, Stream::Out, 0).unwrap();
        }
        let read = |back| std::fs::read_to_string(rotated_path(&path, back)).unwrap_or_default();
        // Each file holds whole lines and stays within 10 bytes.
        assert_eq!(read(0), "gg\n");
        assert_eq!(read(1), "eeee\nffff\n");
        assert_eq!(read(2), "cccc\ndddd\n");
        for back in 0..=2 {
            assert!(read(back).len() <= 10, "{back}: {:?}", read(back));
        }
        assert!(
            !rotated_path(&path, 3).exists(),
            "only two rotated files are kept"
        );
        let lines: Vec<_> = guard.last(10).map(|l| l.bytes.to_vec()).collect();
        assert_eq!(lines.len(), 7, "every line is in memory once");
        drop(guard);
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
