//! The last lines of a process in memory: what `log.read` answers from (see `logread` for
//! the older lines, read back from the files) and what followers are fed from. Pure: bytes
//! in (already written to the files by the collector, see `logs`), lines out; no I/O.
//!
//! Every ring line remembers where it starts in its file; reading older lines back from a
//! file stops at the oldest line the ring still holds, so nothing is shown twice even while
//! the child keeps writing.
//!
//! A process started with `--time` has a stamp in front of each line in its files (see
//! `stamp`): the ring's lines leave it out (followers and `log.read` never see it), while
//! their positions in the file count it (`RingLine::head`).
//!
//! Memory is bounded: at most [`RING_LINES`] lines and [`RING_BYTES`] bytes a process,
//! a line keeps at most [`MAX_LINE_BYTES`] in memory (the file gets all of it), and a busy
//! stream keeps at most [`MAX_UNSPLIT_BYTES`] not yet split into lines.

use std::collections::VecDeque;

use velos_proto::rpc::notification;
use velos_proto::{LogEnd, LogLine, LogPosition, Stream};

use crate::follow::{self, Follower};
use crate::stamp::STAMP_BYTES;

/// Lines kept in memory per process.
pub const RING_LINES: usize = 1000;
/// Bytes of line content kept in memory per process.
pub const RING_BYTES: usize = 1024 * 1024;
/// The most bytes of a long line sent to followers in one piece (well under a
/// follower's queue, so a piece never pushes everything else out).
const PIECE_BYTES: usize = 64 * 1024;
/// Bytes of one line kept in memory; the rest of a longer line is only in the file.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Reads at least this large mark a busy stream, split into lines lazily (a program
/// logging as it goes writes a line at a time).
const LAZY_CHUNK_BYTES: usize = 4 * 1024;
/// The most bytes a busy stream keeps unsplit.
const MAX_UNSPLIT_BYTES: usize = 1024 * 1024;

/// How long a stream must be quiet before its line not ended yet is shown (a prompt
/// such as `Password: `).
pub const PARTIAL_QUIET: std::time::Duration = std::time::Duration::from_millis(200);

/// A line not ended yet, as [`LogRing::partial_line`] gives it.
#[derive(Debug)]
pub(crate) struct PartialLine<'a> {
    pub bytes: &'a [u8],
    pub time_ms: u64,
    pub start: LogPosition,
    pub len: u64,
    /// Bytes of its stamp at its start in the file (not in `bytes`).
    pub head: u64,
}

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
    pub(crate) generation: u64,
    /// Where it starts in that file.
    pub(crate) offset: u64,
    /// Its whole length in the file, without the newline (more than `bytes` holds when
    /// it was cut, or stamped).
    pub(crate) len: u64,
    /// Bytes of its stamp (`--time`) at its start in the file, which `bytes` leaves out.
    pub(crate) head: u64,
}

impl RingLine {
    /// Where it starts in its stream's files.
    pub(crate) fn start(&self) -> LogPosition {
        LogPosition {
            generation: self.generation,
            offset: self.offset,
        }
    }

    /// Just after it (and its newline) in its stream's files.
    pub(crate) fn end(&self) -> LogPosition {
        LogPosition {
            generation: self.generation,
            offset: self.offset + self.len + u64::from(!self.partial),
        }
    }
}

/// The partial last line of one stream, and where the stream's file ends.
#[derive(Debug, Default)]
struct Pending {
    /// Bytes of a busy stream not split into lines yet (see [`LogRing::push`]).
    unsplit: Vec<u8>,
    /// When the last of `unsplit` arrived.
    unsplit_time: u64,
    bytes: Vec<u8>,
    /// File offset where `bytes` starts.
    start: u64,
    /// File offset just after the last byte written: the file's size.
    end: u64,
    /// Rotations (and flushes) of this stream's file so far.
    generation: u64,
    /// Bytes of `bytes` (the line not ended yet) already sent to followers as a partial
    /// line: its end goes to them as a `continued` line.
    shown: usize,
    /// When bytes of this stream last arrived.
    touched_ms: u64,
    /// The line being written has no stamp, though the stream is stamped: it is the rest
    /// of a line cut at a rotation.
    unstamped: bool,
}

/// Where reading a stream's older lines back from its files starts: `file` files back
/// from the current one (0 is the current file, 1 is `.1`, ...), before byte `end`.
#[cfg(test)]
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
    /// Bytes received from each stream since the process was added (the
    /// `velos_log_bytes_total` metric).
    received: [u64; 2],
    /// The lines come with a stamp in front (`--time`), left out of the lines.
    stamped: bool,
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

    /// Whether the next run's lines come stamped (`--time`, see `stamp`).
    pub fn set_stamped(&mut self, stamped: bool) {
        self.settle();
        self.stamped = stamped;
    }

    /// Adds a follower: it gets every line completed from now on.
    pub fn follow(&mut self, follower: Follower) {
        // What came before is history, not news: into the ring with it first.
        self.settle();
        self.followers.push(follower);
    }

    /// The process is deleted: each follower is told so, and let go (a follow that
    /// named only this process then ends).
    pub fn deleted(&mut self) {
        let end = LogEnd {
            id: self.id,
            name: self.name.clone(),
            reason: "deleted".to_owned(),
        };
        if let Some(frame) = follow::encode(notification::LOG_END, &end) {
            for follower in &self.followers {
                follower.notify(&frame);
            }
        }
        self.followers.clear();
    }

    /// Splits whatever busy streams left unsplit into lines. Everything that reads the
    /// ring, or moves its file offsets, does this first.
    pub fn settle(&mut self) {
        for stream in [Stream::Out, Stream::Err] {
            self.settle_stream(stream);
        }
    }

    fn settle_stream(&mut self, stream: Stream) {
        let pending = &mut self.pending[slot(stream)];
        if pending.unsplit.is_empty() {
            return;
        }
        let unsplit = std::mem::take(&mut pending.unsplit);
        let time_ms = pending.unsplit_time;
        self.split(stream, &unsplit, time_ms);
        // Keep the buffer for the next burst.
        let mut unsplit = unsplit;
        unsplit.clear();
        self.pending[slot(stream)].unsplit = unsplit;
    }

    /// Notes that `stream`'s file is `len` bytes long before a new run appends to it.
    pub fn set_file_len(&mut self, stream: Stream, len: u64) {
        self.settle_stream(stream);
        let pending = &mut self.pending[slot(stream)];
        pending.bytes.clear();
        pending.shown = 0;
        pending.start = len;
        pending.end = len;
        pending.unstamped = false;
    }

    /// The size of `stream`'s current file, as far as the ring knows.
    #[cfg(test)]
    pub(crate) fn file_len(&self, stream: Stream) -> u64 {
        let pending = &self.pending[slot(stream)];
        pending.end + pending.unsplit.len() as u64
    }

    /// Whether `stream` is between lines (nothing of a line written yet).
    pub(crate) fn at_line_start(&self, stream: Stream) -> bool {
        let pending = &self.pending[slot(stream)];
        match pending.unsplit.last() {
            Some(&last) => last == b'\n',
            None => pending.start == pending.end,
        }
    }

    /// Notes that `stream`'s file was replaced by one `len` bytes long (deleted and made
    /// again, or rotated): the lines in memory are not in the new file.
    pub(crate) fn file_replaced(&mut self, stream: Stream, len: u64) {
        self.settle_stream(stream);
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
            pending.unsplit.clear();
            pending.bytes.clear();
            pending.shown = 0;
            pending.generation += 1;
            pending.start = 0;
            pending.end = 0;
            pending.unstamped = false;
        }
    }

    /// Adds bytes read from `stream` (already written to its file).
    ///
    /// A busy stream (reads of [`LAZY_CHUNK_BYTES`] or more) is kept as bytes and split
    /// into lines only when the ring is read, or once [`MAX_UNSPLIT_BYTES`] have piled up:
    /// of a fast writer's lines only the last [`RING_LINES`] matter, and splitting every one
    /// of them on arrival took half the daemon's time. Small writes (a program logging as
    /// it goes) are split at once, and bytes of the other stream still unsplit are split
    /// before anything of this one, so stdout and stderr keep their interleaving. Followers
    /// get every line as it arrives, so with followers nothing waits.
    pub fn push(&mut self, stream: Stream, chunk: &[u8], time_ms: u64) {
        self.count(stream, chunk.len() as u64);
        let other = match stream {
            Stream::Out => Stream::Err,
            Stream::Err => Stream::Out,
        };
        self.settle_stream(other);
        let pending = &mut self.pending[slot(stream)];
        pending.touched_ms = time_ms;
        if self.followers.is_empty()
            && (chunk.len() >= LAZY_CHUNK_BYTES || !pending.unsplit.is_empty())
        {
            pending.unsplit.extend_from_slice(chunk);
            pending.unsplit_time = time_ms;
            if pending.unsplit.len() >= MAX_UNSPLIT_BYTES {
                self.settle_stream(stream);
            }
            return;
        }
        self.settle_stream(stream);
        self.split(stream, chunk, time_ms);
    }

    /// Bytes received from `stream` since the process was added, every byte its runs
    /// wrote (whether kept in memory or not; `velos flush` does not reset it).
    pub fn received(&self, stream: Stream) -> u64 {
        self.received[slot(stream)]
    }

    /// Takes back `bytes` counted by a push that were stamps (`--time`), not output.
    pub fn uncount_stamps(&mut self, stream: Stream, bytes: u64) {
        let received = &mut self.received[slot(stream)];
        *received = received.saturating_sub(bytes);
    }

    fn count(&mut self, stream: Stream, bytes: u64) {
        let received = &mut self.received[slot(stream)];
        *received = received.saturating_add(bytes);
    }

    /// Whether anyone follows: followers must see every line, so the collector hands
    /// over every byte (see [`LogRing::push_tail`]).
    pub fn has_followers(&self) -> bool {
        !self.followers.is_empty()
    }

    /// Adds a chunk of `stream` (already in its file) of which only the last bytes,
    /// `tail`, are at hand: `skipped` bytes came before them. The same as pushing the
    /// whole chunk when the tail alone holds more lines than the ring keeps, since every
    /// line before those would be dropped anyway; then `true`. Otherwise (fewer lines, or
    /// followers, who see every line) nothing changes and `false` says the whole chunk is
    /// needed.
    pub fn push_tail(&mut self, stream: Stream, skipped: u64, tail: &[u8], time_ms: u64) -> bool {
        if skipped == 0 {
            self.push(stream, tail, time_ms);
            return true;
        }
        if !self.followers.is_empty() {
            return false;
        }
        let Some(cut) = memchr::memrchr_iter(b'\n', tail).nth(RING_LINES) else {
            return false;
        };
        // As `split` does with a chunk longer than the ring: everything up to the cut
        // (lines in memory, this stream's unsplit bytes and line being written, the
        // skipped bytes) would be dropped, so it is, and the stream's file offsets move
        // past it.
        let other = match stream {
            Stream::Out => Stream::Err,
            Stream::Err => Stream::Out,
        };
        self.settle_stream(other);
        self.lines.clear();
        self.bytes = 0;
        // What is pushed below counts itself.
        self.count(stream, skipped + cut as u64 + 1);
        let pending = &mut self.pending[slot(stream)];
        pending.end += pending.unsplit.len() as u64 + skipped + cut as u64 + 1;
        pending.start = pending.end;
        pending.unsplit.clear();
        pending.bytes.clear();
        pending.shown = 0;
        self.push(stream, &tail[cut + 1..], time_ms);
        true
    }

    /// Splits `chunk` into lines: the partial line goes on, complete lines enter the ring.
    fn split(&mut self, stream: Stream, mut chunk: &[u8], time_ms: u64) {
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
            pending.unstamped = false;
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

    /// Ends `stream`'s line here without a newline (its file was rotated in the middle of
    /// it): what follows is a new line.
    pub(crate) fn cut_line(&mut self, stream: Stream, time_ms: u64) {
        self.settle_stream(stream);
        if !self.at_line_start(stream) {
            self.end_line(stream, time_ms, true);
            // The rest goes on in the next file without a stamp of its own.
            self.pending[slot(stream)].unstamped = self.stamped;
        }
    }

    /// Ends `stream`: a last line without a newline becomes a line.
    pub fn finish(&mut self, stream: Stream, time_ms: u64) {
        self.settle_stream(stream);
        if !self.at_line_start(stream) {
            self.end_line(stream, time_ms, true);
        }
    }

    fn extend_pending(&mut self, stream: Stream, bytes: &[u8]) {
        let head = self.head(stream);
        let pending = &mut self.pending[slot(stream)];
        // The stamp at the start of a line (`--time`) counts in the file, not in the line.
        let skip = head
            .saturating_sub(pending.end - pending.start)
            .min(bytes.len() as u64);
        pending.end += skip;
        let bytes = &bytes[skip as usize..];
        let room = MAX_LINE_BYTES.saturating_sub(pending.bytes.len());
        let (kept, beyond) = bytes.split_at(bytes.len().min(room));
        pending.bytes.extend_from_slice(kept);
        pending.end += bytes.len() as u64;
        if beyond.is_empty() || self.followers.is_empty() {
            return;
        }
        // Memory keeps the first MAX_LINE_BYTES of a line; followers get all of it, in
        // pieces: what they have not seen of the part kept, then the rest as it comes.
        let (from, time_ms) = (pending.shown, pending.touched_ms);
        pending.shown = pending.bytes.len();
        if from < pending.bytes.len() {
            let seen = self.pending[slot(stream)].bytes[from..].to_vec();
            self.offer(stream, &seen, true, from > 0, time_ms);
        }
        for piece in beyond.chunks(PIECE_BYTES) {
            self.offer(stream, piece, true, true, time_ms);
        }
    }

    /// Bytes of stamp at the start of `stream`'s line being written: [`STAMP_BYTES`]
    /// for a stamped stream (unless it is the rest of a cut line), else 0.
    fn head(&self, stream: Stream) -> u64 {
        let stamped = self.stamped && !self.pending[slot(stream)].unstamped;
        if stamped { STAMP_BYTES as u64 } else { 0 }
    }

    fn end_line(&mut self, stream: Stream, time_ms: u64, partial: bool) {
        let len_in_file = {
            let pending = &self.pending[slot(stream)];
            pending.end - pending.start
        };
        let head = self.head(stream).min(len_in_file);
        let pending = &mut self.pending[slot(stream)];
        pending.unstamped = false;
        let line = RingLine {
            stream,
            bytes: std::mem::take(&mut pending.bytes).into_boxed_slice(),
            time_ms,
            partial,
            generation: pending.generation,
            offset: pending.start,
            len: (pending.end - pending.start).saturating_sub(u64::from(!partial)),
            head,
        };
        pending.start = pending.end;
        // What followers saw of it already (a prompt shown while the stream was quiet)
        // is not sent again: they get the rest, as its continuation.
        let shown = std::mem::take(&mut pending.shown).min(line.bytes.len());
        self.offer(stream, &line.bytes[shown..], partial, shown > 0, time_ms);
        self.bytes += line.bytes.len();
        self.lines.push_back(line);
        while self.lines.len() > RING_LINES || self.bytes > RING_BYTES {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.bytes.len();
        }
    }

    /// Sends bytes of a line to every follower (encoded once, whatever their number).
    fn offer(
        &mut self,
        stream: Stream,
        bytes: &[u8],
        partial: bool,
        continued: bool,
        time_ms: u64,
    ) {
        if self.followers.is_empty() {
            return;
        }
        let shared = LogLine {
            id: self.id,
            name: self.name.clone(),
            stream,
            line: bytes.to_vec(),
            partial,
            continued,
            time_ms: Some(time_ms),
        };
        if let Some(frame) = follow::encode(notification::LOG_LINE, &shared) {
            self.followers.retain(|follower| follower.offer(&frame));
        }
    }

    /// Whether `stream`'s line not ended yet has bytes followers have not seen: then the
    /// collector shows them once the stream has been quiet for [`PARTIAL_QUIET`].
    pub fn unshown(&self, stream: Stream) -> bool {
        let pending = &self.pending[slot(stream)];
        !self.followers.is_empty() && pending.bytes.len() > pending.shown
    }

    /// Sends followers what they have not seen of `stream`'s line not ended yet (a
    /// prompt), as a partial line; its end follows as a `continued` one.
    pub fn show_partial(&mut self, stream: Stream) {
        self.settle_stream(stream);
        let pending = &mut self.pending[slot(stream)];
        if pending.bytes.len() <= pending.shown {
            return;
        }
        let (from, time_ms) = (pending.shown, pending.touched_ms);
        let continued = from > 0;
        pending.shown = pending.bytes.len();
        let bytes = self.pending[slot(stream)].bytes[from..].to_vec();
        self.offer(stream, &bytes, true, continued, time_ms);
    }

    /// `stream`'s line not ended yet, if it is one to show: followers saw part of it, or
    /// the stream has been quiet for [`PARTIAL_QUIET`] (it is likely a prompt, not a line
    /// being written). Its bytes (at most [`MAX_LINE_BYTES`]), when they last grew, and
    /// where it starts and ends in the files.
    pub(crate) fn partial_line(&self, stream: Stream, now_ms: u64) -> Option<PartialLine<'_>> {
        let head = self.head(stream);
        let pending = &self.pending[slot(stream)];
        let quiet = now_ms.saturating_sub(pending.touched_ms) >= PARTIAL_QUIET.as_millis() as u64;
        (pending.end > pending.start && (quiet || pending.shown > 0)).then_some(PartialLine {
            bytes: &pending.bytes,
            time_ms: pending.touched_ms,
            start: LogPosition {
                generation: pending.generation,
                offset: pending.start,
            },
            len: pending.end - pending.start,
            head: head.min(pending.end - pending.start),
        })
    }

    /// The last `n` lines in memory, oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &RingLine> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n))
    }

    /// Every line in memory, oldest first.
    pub(crate) fn lines(&self) -> impl Iterator<Item = &RingLine> {
        self.lines.iter()
    }

    /// Where `stream`'s line being written starts: every complete line of it ends there.
    pub(crate) fn line_start(&self, stream: Stream) -> LogPosition {
        let pending = &self.pending[slot(stream)];
        LogPosition {
            generation: pending.generation,
            offset: pending.start,
        }
    }

    /// How many lines are in memory.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// For each stream, where its lines that are not in memory end in its files.
    #[cfg(test)]
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

#[cfg(test)]
mod tests {
    use futures_lite::FutureExt;

    use super::*;

    fn texts(ring: &LogRing, n: usize) -> Vec<String> {
        ring.last(n)
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn stamped_lines_leave_their_stamp_out_but_count_it_in_the_file() {
        let mut ring = LogRing::default();
        ring.set_stamped(true);
        let mut at_start = true;
        let mut stamped = Vec::new();
        crate::stamp::stamp_lines(b"one\ntw", 0, &mut at_start, &mut stamped);
        // In two pieces, the second one in the middle of the second stamp.
        let (first, second) = stamped.split_at(STAMP_BYTES + 4 + 10);
        ring.push(Stream::Out, first, 1);
        ring.push(Stream::Out, second, 1);
        let mut more = Vec::new();
        crate::stamp::stamp_lines(b"o\n", 0, &mut at_start, &mut more);
        ring.push(Stream::Out, &more, 2);
        assert_eq!(texts(&ring, 10), ["one", "two"]);
        let lines: Vec<&RingLine> = ring.last(2).collect();
        assert_eq!((lines[0].offset, lines[0].len, lines[0].head), (0, 28, 25));
        assert_eq!(
            lines[1].offset, 29,
            "the second line starts after the first's newline"
        );
        assert_eq!((lines[1].len, lines[1].head), (28, 25));
        assert_eq!(ring.file_len(Stream::Out), 58);
        // The rest of a line cut at a rotation has no stamp of its own.
        ring.push(Stream::Out, b"1970-01-01T00:00:00.000Z long", 3);
        ring.cut_line(Stream::Out, 3);
        ring.push(Stream::Out, b"rest\n", 3);
        assert_eq!(texts(&ring, 2), ["long", "rest"]);
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
        ring.settle();
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
    fn busy_streams_split_lazily_with_the_same_result() {
        let mut text = Vec::new();
        for i in 0..30_000 {
            text.extend_from_slice(format!("line {i:05}\n").as_bytes());
        }
        text.extend_from_slice(b"partial");
        let (mut eager, mut lazy) = (LogRing::default(), LogRing::default());
        for piece in text.chunks(1000) {
            eager.push(Stream::Out, piece, 1);
        }
        for piece in text.chunks(LAZY_CHUNK_BYTES) {
            lazy.push(Stream::Out, piece, 1);
        }
        eager.finish(Stream::Out, 2);
        lazy.finish(Stream::Out, 2);
        let lines = |ring: &LogRing| -> Vec<Vec<u8>> {
            ring.last(RING_LINES).map(|l| l.bytes.to_vec()).collect()
        };
        assert_eq!(lines(&lazy), lines(&eager));
        assert_eq!(lazy.file_boundaries(), eager.file_boundaries());
        assert_eq!(lines(&lazy).last().unwrap(), b"partial");
    }

    #[test]
    fn a_tail_with_more_lines_than_the_ring_is_the_whole_chunk() {
        let mut chunk = Vec::new();
        for i in 0..5000 {
            chunk.extend_from_slice(format!("line {i:05}\n").as_bytes());
        }
        chunk.extend_from_slice(b"partial");
        for cut_at in [0, 11, 12 * 3000 + 5] {
            let (mut whole, mut tail) = (LogRing::default(), LogRing::default());
            for ring in [&mut whole, &mut tail] {
                ring.set_file_len(Stream::Out, 7);
                ring.push(Stream::Out, b"before\nhalf", 0);
                ring.push(Stream::Err, b"err\n", 0);
                ring.push(Stream::Out, &[b'u'; LAZY_CHUNK_BYTES], 0);
            }
            whole.push(Stream::Out, &chunk, 1);
            assert!(tail.push_tail(Stream::Out, cut_at as u64, &chunk[cut_at..], 1));
            for ring in [&mut whole, &mut tail] {
                ring.finish(Stream::Out, 2);
            }
            let lines = |ring: &LogRing| -> Vec<(Vec<u8>, LogPosition, LogPosition)> {
                ring.lines()
                    .map(|l| (l.bytes.to_vec(), l.start(), l.end()))
                    .collect()
            };
            assert_eq!(lines(&tail), lines(&whole), "cut at {cut_at}");
            assert_eq!(tail.file_boundaries(), whole.file_boundaries());
            assert_eq!(tail.file_len(Stream::Out), whole.file_len(Stream::Out));
            // Every byte counted once, whichever way it came.
            let out = (11 + LAZY_CHUNK_BYTES + chunk.len()) as u64;
            assert_eq!(tail.received(Stream::Out), out, "cut at {cut_at}");
            assert_eq!(whole.received(Stream::Out), out);
            assert_eq!(tail.received(Stream::Err), 4);
        }
    }

    #[test]
    fn a_tail_with_few_lines_or_followers_asks_for_the_whole_chunk() {
        let mut ring = LogRing::default();
        let few = b"a\nb\n".repeat(10);
        assert!(!ring.push_tail(Stream::Out, 100, &few, 1));
        assert_eq!(ring.len(), 0, "nothing changed");
        assert_eq!(ring.received(Stream::Out), 0, "counted when pushed whole");
        let (follower, _stream) = follow::channel();
        ring.follow(follower);
        let many = b"x\n".repeat(RING_LINES + 5);
        assert!(!ring.push_tail(Stream::Out, 100, &many, 1));
        assert!(ring.push_tail(Stream::Out, 0, &many, 1), "nothing skipped");
    }

    #[test]
    fn a_busy_stream_does_not_reorder_the_other() {
        let mut ring = LogRing::default();
        let mut burst = vec![b'x'; LAZY_CHUNK_BYTES];
        burst.extend_from_slice(b"\nout 1\n");
        ring.push(Stream::Out, &burst, 0);
        ring.push(Stream::Err, b"err 1\n", 0);
        ring.push(Stream::Out, &burst, 0);
        ring.settle();
        let order: Vec<_> = ring
            .last(5)
            .map(|l| {
                (
                    l.stream,
                    String::from_utf8_lossy(&l.bytes[..l.bytes.len().min(5)]).into_owned(),
                )
            })
            .collect();
        let expected = [
            (Stream::Out, "xxxxx"),
            (Stream::Out, "out 1"),
            (Stream::Err, "err 1"),
            (Stream::Out, "xxxxx"),
            (Stream::Out, "out 1"),
        ];
        assert_eq!(order, expected.map(|(s, t)| (s, t.to_owned())));
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
        ring.settle();
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
    fn a_prompt_is_shown_to_followers_then_only_its_end() {
        let mut ring = LogRing::new(3, "api");
        let (follower, mut stream) = follow::channel();
        ring.follow(follower);
        ring.push(Stream::Out, b"Password: ", 1);
        assert!(ring.unshown(Stream::Out));
        assert!(
            ring.partial_line(Stream::Out, 100).is_none(),
            "not quiet yet"
        );
        ring.show_partial(Stream::Out);
        assert!(!ring.unshown(Stream::Out));
        assert!(
            ring.partial_line(Stream::Out, 100).is_some(),
            "shown to followers"
        );
        ring.push(Stream::Out, b"ok\n", 2);
        let mut out = Vec::new();
        let texts = futures_lite::future::block_on(stream.next_batch(&mut out));
        assert!(texts);
        let decoded = String::from_utf8_lossy(&out).into_owned();
        let prompt = decoded.find("Password: ").expect("the prompt");
        let end = decoded.rfind("ok").expect("the end");
        assert!(prompt < end);
        assert_eq!(
            decoded.matches("Password").count(),
            1,
            "the prompt is not sent again"
        );
        assert_eq!(texts_of(&ring), ["Password: ok"]);
        assert!(ring.partial_line(Stream::Out, 10_000).is_none());
    }

    #[test]
    fn followers_get_a_long_line_whole_in_pieces() {
        let mut ring = LogRing::new(3, "api");
        let (follower, mut stream) = follow::channel();
        ring.follow(follower);
        let long = vec![b'x'; 3 * MAX_LINE_BYTES + 5];
        for piece in long.chunks(10_000) {
            ring.push(Stream::Out, piece, 1);
        }
        ring.push(Stream::Out, b"\n", 2);
        let mut out = Vec::new();
        let mut all = Vec::new();
        while all.len() < long.len() + 200 {
            out.clear();
            if !futures_lite::future::block_on(stream.next_batch(&mut out).or(async { false })) {
                break;
            }
            all.extend_from_slice(&out);
        }
        let xs = all.iter().filter(|&&b| b == b'x').count();
        assert_eq!(
            xs,
            long.len(),
            "every byte of the line reached the follower"
        );
        assert_eq!(ring.last(1).next().unwrap().bytes.len(), MAX_LINE_BYTES);
    }

    fn texts_of(ring: &LogRing) -> Vec<String> {
        texts(ring, 10)
    }

    #[test]
    fn followers_get_each_line_once_and_gone_ones_are_dropped() {
        let mut ring = LogRing::new(3, "api");
        let (follower, stream) = follow::channel();
        ring.follow(follower);
        ring.push(Stream::Out, b"one\ntwo\n", 7);
        let mut out = Vec::new();
        assert!(futures_lite::future::block_on({
            let mut stream = stream;
            async move { stream.next_batch(&mut out).await }
        }));
        ring.push(Stream::Out, b"three\n", 9);
        assert!(ring.followers.is_empty(), "a gone follower is dropped");
    }
}
