//! Answering `log.read`: the last lines of each process, from memory and read back from
//! the files, one page of at most [`MAX_REPLY_BYTES`] at a time.
//!
//! Order: process by process (as the target lists them), each with its older lines read
//! back from the files (stdout's before stderr's, since the files do not record how the
//! two interleaved), then the lines in memory in arrival order. `lines` counts per
//! process.
//!
//! Every line is sent whole. One longer than what is left of a page is sent in pieces:
//! each piece but the last is `partial`, each but the first `continued`. A line cut in
//! memory (over 16 KiB) is read whole from its file.
//!
//! Paging: the supervisor takes a [`Snapshot`] of each process under its ring's lock
//! (the lines in memory that are still to be sent, and where each stream's complete
//! lines end); [`read_page`] then reads the files off the supervisor's thread. A page
//! that is full says where to go on with a [`LogCursor`]: for each process still to read,
//! a [`LogPosition`] per stream (file and offset), so the next page starts exactly after
//! the last byte sent, whatever the process wrote in between, and lines the ring has
//! dropped since are read from the files instead. The first page of a process finds
//! where its last `lines` lines start by counting newlines backwards through the files,
//! which allocates nothing; reading forward keeps only the bytes it sends. So a read's
//! memory is its page, whatever the files hold.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use velos_proto::{LogCursor, LogLine, LogPosition, ProcessCursor, Stream};

use crate::logfile::rotated_path;
use crate::ring::LogRing;
use crate::state::Entry;

/// The most bytes of log lines one answer carries: well under the frame limit, and small
/// enough that a page (read, encoded and framed, about three copies) costs the daemon
/// little memory.
pub const MAX_REPLY_BYTES: usize = 2 * 1024 * 1024;
/// What a line costs besides its bytes and its process's name: in the answer (about 50
/// bytes of MessagePack) and, more, in memory while the page is built (the line's
/// struct and its two allocations), which is what the page budget bounds.
const LINE_OVERHEAD: usize = 128;
/// Bytes read at a time.
const CHUNK_BYTES: usize = 64 * 1024;

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Out => 0,
        Stream::Err => 1,
    }
}

const STREAMS: [Stream; 2] = [Stream::Out, Stream::Err];

/// One stream's files, as a read sees them.
#[derive(Debug, Clone)]
struct Files {
    path: PathBuf,
    /// The current file's generation.
    generation: u64,
    /// Rotated files kept.
    rotated: u64,
    /// Whether the daemon writes log files at all (not `--no-log-files`): without, a
    /// file of that name is another daemon's, and nothing is read from it.
    written: bool,
}

impl Files {
    /// The path of the file of `generation`, if it is still kept.
    fn path_of(&self, generation: u64) -> Option<PathBuf> {
        if !self.written {
            return None;
        }
        let back = self.generation.checked_sub(generation)?;
        (back <= self.rotated).then(|| rotated_path(&self.path, back))
    }

    fn oldest(&self) -> u64 {
        self.generation.saturating_sub(self.rotated)
    }
}

/// A line in memory, copied for a read.
#[derive(Debug)]
struct MemoryLine {
    stream: Stream,
    bytes: Vec<u8>,
    time_ms: u64,
    partial: bool,
    start: LogPosition,
    end: LogPosition,
    /// Its length in the file (more than `bytes` when it was cut in memory).
    len: u64,
    /// Bytes of its stamp (`--time`) at its start in the file, not in `bytes`.
    head: u64,
}

impl MemoryLine {
    /// The line as sent, for the process `id` called `name`.
    fn into_log_line(self, id: u32, name: &str) -> LogLine {
        LogLine {
            id,
            name: name.to_owned(),
            stream: self.stream,
            line: self.bytes,
            partial: self.partial,
            continued: false,
            time_ms: Some(self.time_ms),
        }
    }
}

/// One process's state for a read, taken under its ring's lock.
#[derive(Debug)]
pub struct Snapshot {
    id: u32,
    name: String,
    /// The lines in memory still to be sent, in arrival order.
    lines: Vec<MemoryLine>,
    /// Where each stream's complete lines end.
    ends: [LogPosition; 2],
    files: [Files; 2],
    /// Where reading goes on, as the cursor said.
    cursor: ProcessCursor,
    /// Lines asked for.
    wanted: usize,
    /// Its files' lines start with a stamp (`--time`): read back without it, with its time.
    stamped: bool,
}

impl Snapshot {
    /// What is left to read of `entry`, from its locked `ring`: the lines in memory after
    /// the cursor, or the last `wanted` of them when reading it has not begun.
    pub fn take(
        entry: &Entry,
        ring: &mut LogRing,
        cursor: ProcessCursor,
        wanted: usize,
    ) -> Snapshot {
        ring.settle();
        let copy = |line: &crate::ring::RingLine| MemoryLine {
            stream: line.stream,
            bytes: line.bytes.to_vec(),
            time_ms: line.time_ms,
            partial: line.partial,
            start: line.start(),
            end: line.end(),
            len: line.len,
            head: line.head,
        };
        let mut lines: Vec<MemoryLine> = match cursor.at {
            Some(at) => ring
                .lines()
                .filter(|line| line.end() > at[slot(line.stream)])
                .map(copy)
                .collect(),
            None => ring.last(wanted).map(copy).collect(),
        };
        // A line not ended yet (a prompt) comes last, once it is one to show.
        let now = crate::logs::now_ms();
        let mut partials: Vec<MemoryLine> = STREAMS
            .into_iter()
            .filter_map(|stream| {
                let partial = ring.partial_line(stream, now)?;
                let end = LogPosition {
                    generation: partial.start.generation,
                    offset: partial.start.offset + partial.len,
                };
                cursor
                    .at
                    .is_none_or(|at| end > at[slot(stream)])
                    .then(|| MemoryLine {
                        stream,
                        bytes: partial.bytes.to_vec(),
                        time_ms: partial.time_ms,
                        partial: true,
                        start: partial.start,
                        end,
                        len: partial.len,
                        head: partial.head,
                    })
            })
            .collect();
        partials.sort_by_key(|line| line.time_ms);
        lines.extend(partials);
        if cursor.at.is_none() {
            lines.drain(..lines.len().saturating_sub(wanted));
        }
        let rotated = entry
            .spec
            .max_log_bytes
            .map_or(0, |_| u64::from(entry.spec.log_files));
        let ends = STREAMS.map(|stream| ring.line_start(stream));
        let files = [&entry.spec.out_log, &entry.spec.err_log]
            .map(|path| path.clone())
            .into_iter()
            .zip(ends)
            .map(|(path, end)| Files {
                path,
                generation: end.generation,
                rotated,
                written: crate::logs::writes_files(),
            });
        let mut files = files.collect::<Vec<_>>();
        let err = files.pop().expect("two streams");
        let out = files.pop().expect("two streams");
        Snapshot {
            id: entry.id,
            name: entry.log_name.clone(),
            lines,
            ends,
            files: [out, err],
            cursor,
            wanted,
            stamped: entry.spec.time,
        }
    }

    /// About how many bytes this process adds to a page (to decide how many processes
    /// one page needs).
    pub fn estimate(&self) -> usize {
        let memory: usize = self
            .lines
            .iter()
            .map(|line| line.len as usize + LINE_OVERHEAD)
            .sum();
        let files = match self.cursor.at {
            Some(at) => STREAMS
                .iter()
                .map(|&s| {
                    let (from, to) = (at[slot(s)], self.ends[slot(s)]);
                    if from.generation == to.generation {
                        to.offset.saturating_sub(from.offset) as usize
                    } else {
                        MAX_REPLY_BYTES
                    }
                })
                .sum(),
            None => self.wanted.saturating_sub(self.lines.len()) * 128,
        };
        memory.saturating_add(files)
    }

    /// The lines in memory, as they are (for `log.follow`'s first lines).
    pub fn into_lines(self) -> Vec<LogLine> {
        let (id, name) = (self.id, self.name);
        self.lines
            .into_iter()
            .map(|line| line.into_log_line(id, &name))
            .collect()
    }

    /// Where each stream's lines to send start, when reading this process begins: before
    /// the lines in memory, as many lines back in the files as are missing (stderr's
    /// first, then stdout's).
    fn plan(&self) -> [LogPosition; 2] {
        let mut at = self.boundaries(None);
        let mut missing = self.wanted.saturating_sub(self.lines.len());
        for stream in [Stream::Err, Stream::Out] {
            if missing == 0 {
                break;
            }
            let (start, found) = count_back(&self.files[slot(stream)], at[slot(stream)], missing)
                .unwrap_or((at[slot(stream)], 0));
            at[slot(stream)] = start;
            missing -= found;
        }
        at
    }

    /// Where each stream's lines in the files end: at its first line in memory, or
    /// where its complete lines end when none is. `at` skips lines already sent.
    fn boundaries(&self, at: Option<&[LogPosition; 2]>) -> [LogPosition; 2] {
        STREAMS.map(|stream| {
            self.lines
                .iter()
                .find(|line| line.stream == stream)
                .map_or(self.ends[slot(stream)], |line| line.start)
                .max(at.map_or(LogPosition::default(), |at| at[slot(stream)]))
        })
    }

    /// Adds what fits of this process to `page`; the cursor to go on with when it is
    /// full.
    fn read_into(mut self, page: &mut Page) -> Option<ProcessCursor> {
        let mut at = match self.cursor.at {
            Some(at) => at,
            None => self.plan(),
        };
        let mut continued = self.cursor.continued;
        let mut reader = Reader {
            id: self.id,
            name: &self.name,
            page,
            continued: &mut continued,
            stamped: self.stamped,
        };
        let boundaries = self.boundaries(Some(&at));
        for stream in STREAMS {
            let i = slot(stream);
            if !reader.read(&self.files[i], stream, &mut at[i], boundaries[i]) {
                return Some(self.stopped(at, continued));
            }
        }
        for line in std::mem::take(&mut self.lines) {
            let i = slot(line.stream);
            let whole = line.bytes.len() as u64 + line.head == line.len;
            if whole && at[i] <= line.start {
                let cost = line.bytes.len() + LINE_OVERHEAD + self.name.len();
                if cost > reader.page.left {
                    return Some(self.stopped(at, continued));
                }
                reader.page.left -= cost;
                at[i] = line.end;
                reader
                    .page
                    .lines
                    .push(line.into_log_line(self.id, &self.name));
                continue;
            }
            // Cut in memory: whole from the file, from where the last page stopped.
            let fresh = at[i] <= line.start;
            at[i] = at[i].max(line.start);
            let before = reader.page.lines.len();
            let complete = reader.read(&self.files[i], line.stream, &mut at[i], line.end);
            if complete && fresh && reader.page.lines.len() == before {
                // The file no longer has it: the copy in memory is all there is.
                reader.page.left = reader
                    .page
                    .left
                    .saturating_sub(line.bytes.len() + LINE_OVERHEAD + self.name.len());
                at[i] = line.end;
                reader
                    .page
                    .lines
                    .push(line.into_log_line(self.id, &self.name));
                continue;
            }
            if let Some(last) = reader.page.lines.last_mut()
                && last.id == self.id
                && last.stream == line.stream
                && last.time_ms.is_none()
            {
                last.time_ms = Some(line.time_ms);
            }
            if !complete {
                return Some(self.stopped(at, continued));
            }
            at[i] = at[i].max(line.end);
        }
        None
    }

    fn stopped(self, at: [LogPosition; 2], continued: bool) -> ProcessCursor {
        ProcessCursor {
            id: self.id,
            at: Some(at),
            continued,
        }
    }
}

/// The lines of one answer, and the bytes left for more.
#[derive(Debug)]
pub struct Page {
    /// The lines so far.
    pub lines: Vec<LogLine>,
    left: usize,
}

impl Page {
    /// An empty page of `bytes`.
    pub fn new(bytes: usize) -> Page {
        Page {
            lines: Vec::new(),
            left: bytes,
        }
    }
}

/// Reads one page: the processes of `snapshots` in order, then those of `rest` are left
/// for the next pages. Returns the lines and where to go on, if anywhere.
pub fn read_page(
    snapshots: Vec<Snapshot>,
    mut rest: Vec<ProcessCursor>,
    bytes: usize,
) -> (Vec<LogLine>, Option<LogCursor>) {
    let mut page = Page::new(bytes);
    let mut snapshots = snapshots.into_iter();
    while let Some(snapshot) = snapshots.next() {
        if let Some(stopped) = snapshot.read_into(&mut page) {
            let mut processes = vec![stopped];
            processes.extend(snapshots.map(|snapshot| snapshot.cursor));
            processes.append(&mut rest);
            return (page.lines, Some(LogCursor { processes }));
        }
    }
    let next = (!rest.is_empty()).then_some(LogCursor { processes: rest });
    (page.lines, next)
}

/// Reads lines forward from the files into a page.
struct Reader<'a> {
    id: u32,
    name: &'a str,
    page: &'a mut Page,
    /// The next bytes continue a line begun on an earlier page.
    continued: &'a mut bool,
    /// Lines start with a stamp (`--time`): taken off, as the line's time.
    stamped: bool,
}

impl Reader<'_> {
    /// Adds the lines of `stream` from `at` up to `to` to the page, moving `at` along;
    /// false when the page filled up first. A file that is gone is skipped.
    fn read(
        &mut self,
        files: &Files,
        stream: Stream,
        at: &mut LogPosition,
        to: LogPosition,
    ) -> bool {
        let mut current = Vec::new();
        while *at < to {
            let file = files
                .path_of(at.generation)
                .and_then(|path| open(&path).ok());
            let Some(mut file) = file else {
                // Rotated away or deleted: on to the next file.
                *at = next_file(*at, to);
                continue;
            };
            let len = file.metadata().map_or(0, |m| m.len());
            let end = if at.generation == to.generation {
                to.offset.min(len)
            } else {
                len
            };
            match self.read_file(&mut file, stream, at, end, &mut current) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(_) => current.clear(),
            }
            if !current.is_empty() {
                // The file ended inside a line (it was cut there, or the process exited
                // mid-line): that is a line too.
                if !self.push(stream, std::mem::take(&mut current), true) {
                    return false;
                }
            }
            if *at < to {
                *at = next_file(*at, to);
            }
        }
        true
    }

    /// Reads `file` from `at` to `end`; false when the page filled up (a piece of the line
    /// in progress goes with it, and `at` points at the rest).
    fn read_file(
        &mut self,
        file: &mut File,
        stream: Stream,
        at: &mut LogPosition,
        end: u64,
        current: &mut Vec<u8>,
    ) -> std::io::Result<bool> {
        let mut chunk = vec![0; CHUNK_BYTES];
        file.seek(SeekFrom::Start(at.offset))?;
        while at.offset < end {
            let want = usize::try_from(end - at.offset).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
            let n = file.read(&mut chunk[..want])?;
            if n == 0 {
                // Shorter than it was: what is missing is gone.
                at.offset = end;
                break;
            }
            let mut rest = &chunk[..n];
            while !rest.is_empty() {
                let newline = memchr::memchr(b'\n', rest);
                let take = newline.unwrap_or(rest.len());
                let room = self
                    .page
                    .left
                    .saturating_sub(LINE_OVERHEAD + self.name.len() + current.len());
                if take > room {
                    // No room for the rest of this line: what fits goes as a piece.
                    current.extend_from_slice(&rest[..room]);
                    at.offset += room as u64;
                    if !current.is_empty() {
                        self.push(stream, std::mem::take(current), true);
                        *self.continued = true;
                    }
                    return Ok(false);
                }
                if newline.is_none() && current.is_empty() {
                    // A long line may fill the page: room for all of it at once, rather
                    // than doubling past it.
                    current.reserve_exact(room);
                }
                current.extend_from_slice(&rest[..take]);
                at.offset += take as u64;
                rest = &rest[take..];
                if newline.is_some() {
                    at.offset += 1;
                    rest = &rest[1..];
                    self.push(stream, std::mem::take(current), false);
                }
            }
        }
        Ok(true)
    }

    /// Adds a line (or a piece of one) to the page; false when it did not fit.
    fn push(&mut self, stream: Stream, line: Vec<u8>, partial: bool) -> bool {
        let cost = line.len() + LINE_OVERHEAD + self.name.len();
        if cost > self.page.left && !line.is_empty() {
            return false;
        }
        self.page.left = self.page.left.saturating_sub(cost);
        let continued = std::mem::take(self.continued);
        // A line's first piece carries its stamp, if it has one.
        let (line, time_ms) = match self.stamped && !continued {
            true => crate::stamp::strip(line),
            false => (line, None),
        };
        self.page.lines.push(LogLine {
            id: self.id,
            name: self.name.to_owned(),
            stream,
            line,
            partial,
            continued,
            time_ms,
        });
        true
    }
}

/// Opens a log file to read, as every file in the home is opened (see `paths`).
fn open(path: &std::path::Path) -> std::io::Result<File> {
    crate::paths::open_in_home(path, std::fs::OpenOptions::new().read(true))
}

/// The start of the file after `at`'s, or `to` when `at` is in `to`'s file.
fn next_file(at: LogPosition, to: LogPosition) -> LogPosition {
    if at.generation < to.generation {
        LogPosition {
            generation: at.generation + 1,
            offset: 0,
        }
    } else {
        to
    }
}

/// Where the last `count` lines before `from` start, counting newlines backwards through
/// `files` (the current one, then `.1`, `.2`, ...), and how many lines there are (fewer
/// when the files hold fewer). Reads in chunks and allocates nothing else.
fn count_back(
    files: &Files,
    from: LogPosition,
    count: usize,
) -> std::io::Result<(LogPosition, usize)> {
    let mut found = 0;
    let mut start = from;
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut generation = from.generation;
    loop {
        let file = files.path_of(generation).map(|path| open(&path));
        let mut file = match file {
            Some(Ok(file)) => file,
            _ => return Ok((start, found)),
        };
        let len = file.metadata()?.len();
        let mut pos = if generation == from.generation {
            from.offset.min(len)
        } else {
            len
        };
        if pos == 0 {
            // Nothing in this file before `from`.
        } else {
            // The byte before `pos` ends the last line wanted; a line starts after each
            // newline before that, and at the start of the file.
            let mut skip_newline = true;
            while pos > 0 {
                let step = pos.min(CHUNK_BYTES as u64) as usize;
                pos -= step as u64;
                file.seek(SeekFrom::Start(pos))?;
                file.read_exact(&mut chunk[..step])?;
                let mut bytes = &chunk[..step];
                if skip_newline {
                    skip_newline = false;
                    if bytes.last() == Some(&b'\n') {
                        bytes = &bytes[..step - 1];
                    }
                }
                for newline in memchr::memrchr_iter(b'\n', bytes) {
                    found += 1;
                    start = LogPosition {
                        generation,
                        offset: pos + newline as u64 + 1,
                    };
                    if found == count {
                        return Ok((start, found));
                    }
                }
            }
            found += 1;
            start = LogPosition {
                generation,
                offset: 0,
            };
            if found == count {
                return Ok((start, found));
            }
        }
        if generation == 0 || generation <= files.oldest() {
            return Ok((start, found));
        }
        generation -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, generation: u64, rotated: u64) -> Files {
        Files {
            path: dir.join("out.log"),
            generation,
            rotated,
            written: true,
        }
    }

    fn at(generation: u64, offset: u64) -> LogPosition {
        LogPosition { generation, offset }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("velosd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Reads `[from, to)` in pages of `bytes`, joining pieces; returns the lines and pages.
    fn read_all(
        files: &Files,
        from: LogPosition,
        to: LogPosition,
        bytes: usize,
    ) -> (Vec<String>, usize) {
        let mut at = from;
        let mut continued = false;
        let mut lines: Vec<String> = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let mut page = Page::new(bytes);
            let mut reader = Reader {
                id: 0,
                name: "x",
                page: &mut page,
                continued: &mut continued,
                stamped: false,
            };
            let done = reader.read(files, Stream::Out, &mut at, to);
            for line in page.lines {
                let text = String::from_utf8(line.line).unwrap();
                match lines.last_mut() {
                    Some(last) if line.continued => last.push_str(&text),
                    _ => lines.push(text),
                }
            }
            if done {
                return (lines, pages);
            }
            assert!(pages < 10_000, "no progress");
        }
    }

    #[test]
    fn counting_back_finds_where_the_last_lines_start() {
        let dir = temp_dir("count");
        let files = files(&dir, 0, 0);
        std::fs::write(&files.path, b"one\n\ntwo\nthree\nfour\n").unwrap();
        let back = |end, count| count_back(&files, at(0, end), count).unwrap();
        assert_eq!(back(20, 2), (at(0, 9), 2));
        assert_eq!(back(9, 10), (at(0, 0), 3));
        assert_eq!(back(0, 5), (at(0, 0), 0));
        std::fs::write(&files.path, b"\nabc\n").unwrap();
        assert_eq!(back(5, 5), (at(0, 0), 2));
        std::fs::write(&files.path, b"no newline").unwrap();
        assert_eq!(back(10, 3), (at(0, 0), 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counting_back_and_reading_go_across_rotated_files() {
        let dir = temp_dir("rotated");
        // Generation 2 is current; .1 is generation 1 and .2 generation 0.
        let files = files(&dir, 2, 2);
        std::fs::write(rotated_path(&files.path, 2), b"a\nb\n").unwrap();
        std::fs::write(rotated_path(&files.path, 1), b"c\nd\n").unwrap();
        std::fs::write(&files.path, b"e\nf\n").unwrap();
        assert_eq!(count_back(&files, at(2, 4), 3).unwrap(), (at(1, 2), 3));
        assert_eq!(count_back(&files, at(2, 4), 9).unwrap(), (at(0, 0), 6));
        let (lines, _) = read_all(&files, at(0, 2), at(2, 2), 1 << 20);
        assert_eq!(lines, ["b", "c", "d", "e"]);
        // .2 no longer kept: reading starts at the oldest file there is.
        let (lines, _) = read_all(&self::files(&dir, 2, 1), at(0, 0), at(2, 4), 1 << 20);
        assert_eq!(lines, ["c", "d", "e", "f"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_long_line_is_read_in_pieces_of_a_page_each() {
        let dir = temp_dir("long");
        let files = files(&dir, 0, 0);
        let long = "x".repeat(100_000);
        std::fs::write(&files.path, format!("short\n{long}\nafter\nend")).unwrap();
        let len = std::fs::metadata(&files.path).unwrap().len();
        let (lines, pages) = read_all(&files, at(0, 0), at(0, len), 10_000);
        assert_eq!(
            lines,
            ["short".to_owned(), long, "after".into(), "end".into()]
        );
        assert!(pages >= 10, "{pages} pages");
    }

    #[test]
    fn pages_never_exceed_their_bytes() {
        let dir = temp_dir("pages");
        let files = files(&dir, 0, 0);
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&files.path, &text).unwrap();
        let mut at = at(0, 0);
        let mut continued = false;
        let mut page = Page::new(50_000);
        let mut reader = Reader {
            id: 0,
            name: "x",
            page: &mut page,
            continued: &mut continued,
            stamped: false,
        };
        assert!(!reader.read(&files, Stream::Out, &mut at, self::at(0, text.len() as u64)));
        let used: usize = page
            .lines
            .iter()
            .map(|l| l.line.len() + LINE_OVERHEAD + 1)
            .sum();
        assert!(used <= 50_000, "{used}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
