//! One stream's log file: appending, opening again after a deletion or a failed
//! write, and rotating at a size limit.
//!
//! A file deleted under the daemon is created again at the next write; a write that fails
//! (disk full) drops the handle, so the next chunk tries the path afresh and logging
//! resumes by itself. Rotation happens at line boundaries: a chunk is cut at the last
//! newline that keeps the file within its limit (or right after a line that alone
//! crosses it), the files shift (`.1` to `.2`, ...), and the rest goes to a new file, so
//! no line is lost or split across files. The one exception bounds the disk: a line that
//! would take its file past twice the limit (a stream that never writes a newline) is cut
//! there and goes on in the next file. The shift moves only the rotated files there are,
//! stopping at the first one missing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use velos_proto::Stream;

use crate::ring::LogRing;

/// Opens a log file for appending (0600) and returns it with its length. It is opened
/// for reading too: a collector that moved bytes into it with `splice` reads the last of
/// them back for the ring (from the page cache).
pub fn open_log(path: &Path) -> std::io::Result<(File, u64)> {
    let file = crate::paths::open_in_home(
        path,
        OpenOptions::new().create(true).read(true).append(true),
    )?;
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

/// What the ring must do, in order, after a chunk was written: the file work happens
/// without the ring's lock, and the ring catches up in one short step ([`apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// These bytes of the chunk are in the file (or failed to get there).
    Push(Range<usize>),
    /// The line being written ends here without a newline (rotated in its middle).
    Cut,
    /// The file was replaced by one this long (rotated, or made again after a deletion).
    Replaced(u64),
}

/// Applies `steps` of a write of `chunk` to `stream` in `ring`.
pub fn apply(steps: &[Step], chunk: &[u8], ring: &mut LogRing, stream: Stream, time_ms: u64) {
    for step in steps {
        match step {
            Step::Push(range) => ring.push(stream, &chunk[range.clone()], time_ms),
            Step::Cut => ring.cut_line(stream, time_ms),
            Step::Replaced(len) => ring.file_replaced(stream, *len),
        }
    }
}

/// One stream's log file, opened again when it was deleted or the last write failed,
/// and rotated at a line boundary once it reaches its size limit. It knows the file's
/// length and whether a line is half written on its own, so that writing needs no lock
/// on the ring.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    rotation: Option<Rotation>,
    /// The reopen epoch (SIGHUP) the file was opened at; see `daemon_log`.
    epoch: u64,
    /// The file's size, as far as this stream's writes go.
    len: u64,
    /// The last byte written is not a newline: a line is half written.
    mid_line: bool,
    /// Where the last chunk [`LogFile::splice_in`] moved starts in the file.
    last_start: Option<u64>,
    /// The descriptor is in append mode, as opened. `splice` refuses a file in append
    /// mode, so a splice takes it out, and it stays out while chunks are spliced (no
    /// system call per chunk); a write puts it back first.
    appending: bool,
}

impl LogFile {
    /// The file at `path` for a new run, given what [`open_log`] of it gave (the caller
    /// opens it first, to refuse a start whose file velos would not use). An error (to
    /// report) leaves a file that tries again at the next write.
    pub fn open(
        path: PathBuf,
        rotation: Option<Rotation>,
        opened: std::io::Result<(File, u64)>,
    ) -> (LogFile, Option<String>) {
        let epoch = crate::daemon_log::reopen_epoch();
        let (file, len, error) = match opened {
            Ok((file, len)) => (Some(file), len, None),
            Err(error) => (
                None,
                0,
                Some(format!("cannot open {}: {error}", path.display())),
            ),
        };
        let log = LogFile {
            path,
            file,
            rotation,
            epoch,
            len,
            mid_line: false,
            last_start: None,
            appending: true,
        };
        (log, error)
    }

    /// The file's length, as far as this stream's writes go.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The file was emptied (`velos flush`).
    pub fn flushed(&mut self) {
        self.len = 0;
        self.mid_line = false;
    }

    /// Appends `chunk`, rotating the file whenever it would pass its size limit: at the
    /// last line boundary that keeps it within the limit, or right after a line that
    /// alone crosses it. A chunk may fill several files; no line is ever split across
    /// two. `steps` gets what the ring must do with the chunk (see [`apply`]).
    pub(crate) fn write(&mut self, chunk: &[u8], steps: &mut Vec<Step>) -> Result<(), String> {
        let mut rest = chunk;
        let mut at = 0;
        let mut written = Ok(());
        while let Some(rotation) = self.rotation {
            let len = self.len;
            if len + (rest.len() as u64) < rotation.max_bytes {
                break;
            }
            let room =
                usize::try_from(rotation.max_bytes.saturating_sub(len)).unwrap_or(usize::MAX);
            // A line never takes a file past twice its limit: past that, even a line
            // without an end (a stream with no newline) is cut, and goes on in the next file.
            let hard = usize::try_from((rotation.max_bytes.saturating_mul(2)).saturating_sub(len))
                .unwrap_or(usize::MAX);
            let mut mid_line = false;
            let cut = match memchr::memrchr(b'\n', &rest[..room.min(rest.len())]) {
                Some(newline) => newline + 1,
                // Nothing of a line written yet: this file is done.
                None if !self.mid_line && len > 0 => 0,
                // A line that crosses the limit ends this file.
                None => match memchr::memchr(b'\n', &rest[room.min(rest.len())..]) {
                    Some(newline) if room.min(rest.len()) + newline < hard => {
                        room.min(rest.len()) + newline + 1
                    }
                    // In the middle of a long line: rotate after it ends, or where it
                    // reaches twice the limit (which must leave something to rotate).
                    _ if rest.len() >= hard && (hard > 0 || len > 0) => {
                        mid_line = true;
                        hard
                    }
                    _ => break,
                },
            };
            let (before, after) = rest.split_at(cut);
            written = written.and(self.append(before, steps));
            self.pushed(chunk, at..at + cut, steps);
            if mid_line {
                // The rest of the line starts the next file: as far as the files and the
                // lines in memory go, two lines.
                steps.push(Step::Cut);
                self.mid_line = false;
            }
            self.rotate(rotation.keep);
            self.replaced(0, steps);
            rest = after;
            at += cut;
        }
        written = written.and(self.append(rest, steps));
        self.pushed(chunk, at..chunk.len(), steps);
        written
    }

    /// Notes that `range` of `chunk` went to the file.
    fn pushed(&mut self, chunk: &[u8], range: Range<usize>, steps: &mut Vec<Step>) {
        if range.is_empty() {
            return;
        }
        self.len += range.len() as u64;
        self.mid_line = chunk[range.end - 1] != b'\n';
        steps.push(Step::Push(range));
    }

    /// Notes that the file was replaced by one `len` bytes long.
    fn replaced(&mut self, len: u64, steps: &mut Vec<Step>) {
        self.len = len;
        self.mid_line = false;
        steps.push(Step::Replaced(len));
    }

    /// The file to write to, opened again first if it is gone; with its size now.
    fn ready(&mut self, steps: &mut Vec<Step>) -> Result<(&File, u64), String> {
        // A file deleted under us has no links left; writing on would lose the lines. One
        // renamed by logrotate (which then sends SIGHUP) is left to it.
        let epoch = crate::daemon_log::reopen_epoch();
        let size = match &self.file {
            Some(file) => file
                .metadata()
                .ok()
                .filter(|m| m.nlink() > 0)
                .map(|m| m.len()),
            None => None,
        };
        let size = match size {
            Some(size) if self.epoch == epoch => size,
            _ => {
                self.epoch = epoch;
                let (file, len) = open_log(&self.path)
                    .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
                self.replaced(len, steps);
                self.file = Some(file);
                self.appending = true;
                len
            }
        };
        Ok((self.file.as_ref().expect("opened just above"), size))
    }

    /// Puts the descriptor in append mode (`on`) or takes it out (for `splice`), if it
    /// is not so already. On an error the file is dropped: the next chunk opens it afresh,
    /// in append mode.
    fn set_appending(&mut self, on: bool) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if self.appending == on {
            return Ok(());
        }
        let set = rustix::fs::fcntl_getfl(file).and_then(|flags| {
            let flags = match on {
                true => flags | rustix::fs::OFlags::APPEND,
                false => flags - rustix::fs::OFlags::APPEND,
            };
            rustix::fs::fcntl_setfl(file, flags)
        });
        match set {
            Ok(()) => {
                self.appending = on;
                Ok(())
            }
            Err(error) => {
                // Out of append mode, a write would land at the descriptor's position,
                // not at the end: never write through this descriptor again.
                self.file = None;
                Err(format!("cannot write {}: {error}", self.path.display()))
            }
        }
    }

    /// Appends `bytes`, opening the file again first if it is gone.
    fn append(&mut self, bytes: &[u8], steps: &mut Vec<Step>) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.ready(steps)?;
        self.set_appending(true)?;
        let mut file = self.file.as_ref().expect("opened by ready()");
        file.write_all(bytes).map_err(|e| {
            // Try a fresh open next time: the path may be writable again by then.
            self.file = None;
            format!("cannot write {}: {e}", self.path.display())
        })
    }

    /// Whether [`LogFile::splice_in`] may be used: not when the file rotates (rotation
    /// cuts at line boundaries, which takes the bytes).
    pub fn can_splice(&self) -> bool {
        self.rotation.is_none()
    }

    /// Moves the `n` bytes waiting in the pipe `from` to the end of the file without
    /// bringing them into memory (`splice`), after the same checks as a write (a deleted
    /// file is made again, see [`Step::Replaced`]). Then reads the last `tail` of them
    /// back from the page cache into `buf` and returns how many: the ring
    /// needs only the last lines of a large chunk, and asks for the rest through
    /// [`LogFile::read_back`] when it needs more.
    ///
    /// On an error (disk full) the pipe is drained all the same, `buf` gets every byte
    /// (`buf` must hold `n`), and the error says what went wrong: the lines stay in
    /// memory, as with a failed write.
    pub(crate) fn splice_in(
        &mut self,
        from: BorrowedFd<'_>,
        n: usize,
        tail: usize,
        buf: &mut [u8],
        steps: &mut Vec<Step>,
    ) -> Result<usize, String> {
        let mut moved = 0;
        let mut start = self.len;
        let result = self.splice_from(from, n, &mut start, &mut moved, steps);
        self.len += n as u64;
        self.last_start = None;
        if result.is_ok() {
            let tail = n.min(tail);
            if self.read_at(start + (n - tail) as u64, &mut buf[..tail]) {
                self.last_start = Some(start);
                self.mid_line = buf[tail - 1] != b'\n';
                return Ok(tail);
            }
        }
        // The whole chunk, then: what reached the file read back from it, the rest
        // drained from the pipe (so that a full disk never leaves the pipe full). A part
        // that cannot be read back (a filesystem that does not keep what it was given)
        // is blanks in memory, in its place.
        if !self.read_at(start, &mut buf[..moved]) {
            buf[..moved].fill(b' ');
        }
        let mut filled = moved;
        while filled < n {
            match rustix::io::read(from, &mut buf[filled..n]) {
                Ok(0) | Err(_) => break,
                Ok(read) => filled += read,
            }
        }
        buf[filled..n].fill(b' ');
        self.mid_line = buf[n - 1] != b'\n';
        result.map(|()| n).inspect_err(|_| {
            // Try a fresh open next time: the path may be writable again by then.
            self.file = None;
        })
    }

    /// Reads `buf.len()` bytes at `offset` of the file; whether it could.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> bool {
        buf.is_empty()
            || self
                .file
                .as_ref()
                .is_some_and(|file| file.read_exact_at(buf, offset).is_ok())
    }

    /// The splice of [`LogFile::splice_in`]: `start` gets where the bytes go in the file,
    /// `moved` how many got there.
    fn splice_from(
        &mut self,
        from: BorrowedFd<'_>,
        n: usize,
        start: &mut u64,
        moved: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Result<(), String> {
        let (_, size) = self.ready(steps)?;
        *start = size;
        // `splice` refuses a file in append mode: out of it (until the next write),
        // writing at the end by offset.
        self.set_appending(false)?;
        let file = self.file.as_ref().expect("opened by ready()");
        let cannot = |error: &dyn std::fmt::Display| {
            format!("cannot write {}: {error}", self.path.display())
        };
        let mut offset = size;
        while *moved < n {
            match crate::platform::splice_to_file(from, file.as_fd(), &mut offset, n - *moved) {
                Ok(0) => return Err(cannot(&"no progress")),
                Ok(k) => *moved += k,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(cannot(&error)),
            }
        }
        Ok(())
    }

    /// Reads back the whole of the last chunk [`LogFile::splice_in`] moved (`n` bytes)
    /// into `buf`.
    pub(crate) fn read_back(&self, buf: &mut [u8]) -> bool {
        self.last_start
            .is_some_and(|start| self.read_at(start, buf))
    }

    /// Shifts `.1` to `.2` and so on (dropping the oldest past `keep`), moves the current
    /// file to `.1`, and lets the next append create a new one. Only the rotated files
    /// there are move: the shift stops at the first one missing, so a rotation costs what
    /// exists, whatever `keep` says.
    fn rotate(&mut self, keep: u32) {
        self.file = None;
        let keep = u64::from(keep);
        let mut existing = 0;
        while existing < keep
            && std::fs::symlink_metadata(rotated_path(&self.path, existing + 1)).is_ok()
        {
            existing += 1;
        }
        // Rename failures leave a file where it was; logging goes on either way.
        if existing == keep {
            let _ = std::fs::remove_file(rotated_path(&self.path, keep.max(1)));
        }
        for back in (1..existing.min(keep.saturating_sub(1)) + 1).rev() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `chunk` and applies it to `ring`, as the collector does.
    fn write(file: &mut LogFile, chunk: &[u8], ring: &mut LogRing) {
        let mut steps = Vec::new();
        file.write(chunk, &mut steps).unwrap();
        apply(&steps, chunk, ring, Stream::Out, 0);
        assert_eq!(
            file.len(),
            ring.file_len(Stream::Out),
            "both agree on the length"
        );
    }

    #[test]
    fn files_rotate_at_a_line_boundary_and_keep_the_newest() {
        let dir = std::env::temp_dir().join(format!("velosd-rotate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let mut ring = LogRing::default();
        let rotation = Rotation {
            max_bytes: 10,
            keep: 2,
        };
        let (mut file, error) = LogFile::open(path.clone(), Some(rotation), open_log(&path));
        assert_eq!(error, None);
        for chunk in [
            &b"aaaa\nbb"[..],
            b"bb\ncccc\ndd",
            b"dd\n",
            b"eeee\nffff\n",
            b"gg\n",
        ] {
            write(&mut file, chunk, &mut ring);
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
        let lines: Vec<_> = ring.last(10).map(|l| l.bytes.to_vec()).collect();
        assert_eq!(lines.len(), 7, "every line is in memory once");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_moves_only_the_files_there_are_whatever_keep_says() {
        let dir = std::env::temp_dir().join(format!("velosd-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let mut ring = LogRing::default();
        // u32::MAX files kept: a rotation that renamed up to `keep` files would never end.
        let rotation = Rotation {
            max_bytes: 4,
            keep: u32::MAX,
        };
        let (mut file, error) = LogFile::open(path.clone(), Some(rotation), open_log(&path));
        assert_eq!(error, None);
        let started = std::time::Instant::now();
        for line in [&b"aaa\n"[..], b"bbb\n", b"ccc\n", b"ddd\n"] {
            write(&mut file, line, &mut ring);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let read = |back| std::fs::read_to_string(rotated_path(&path, back)).unwrap_or_default();
        // Each line fills a file, so each write rotated.
        assert_eq!(
            [read(4), read(3), read(2), read(1), read(0)],
            ["aaa\n", "bbb\n", "ccc\n", "ddd\n", ""]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Splices `bytes` into `file` through a pipe, as the collector does; the tail it
    /// read back.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn splice(file: &mut LogFile, bytes: &[u8]) -> Vec<u8> {
        let (read, write) = crate::platform::private_pipe(1 << 16).unwrap();
        assert_eq!(rustix::io::write(&write, bytes).unwrap(), bytes.len());
        let mut buf = vec![0; bytes.len()];
        let mut steps = Vec::new();
        let tail = file
            .splice_in(read.as_fd(), bytes.len(), 4, &mut buf, &mut steps)
            .unwrap();
        buf[..tail].to_vec()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn appending(file: &LogFile) -> bool {
        let flags = rustix::fs::fcntl_getfl(file.file.as_ref().unwrap()).unwrap();
        flags.contains(rustix::fs::OFlags::APPEND)
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn spliced_chunks_stay_out_of_append_mode_and_writes_still_land_at_the_end() {
        let dir = std::env::temp_dir().join(format!("velosd-splice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let (mut file, error) = LogFile::open(path.clone(), None, open_log(&path));
        assert_eq!(error, None);
        assert_eq!(splice(&mut file, b"one\ntwo\n"), b"two\n");
        // A second chunk needs no switch: the descriptor stays as splice wants it.
        assert_eq!(splice(&mut file, b"three\n"), b"ree\n");
        assert!(!appending(&file), "still out of append mode between chunks");
        // A write (a line of velos's own, a slow stream) goes back to appending first...
        file.write(b"four\n", &mut Vec::new()).unwrap();
        assert!(appending(&file));
        // ...so that it lands at the end even when the file shrank meanwhile (`velos flush`).
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4)
            .unwrap();
        file.flushed();
        file.write(b"five\n", &mut Vec::new()).unwrap();
        splice(&mut file, b"six\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nfive\nsix\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_without_an_end_is_cut_at_twice_the_limit() {
        let dir = std::env::temp_dir().join(format!("velosd-midline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let mut ring = LogRing::default();
        let rotation = Rotation {
            max_bytes: 10,
            keep: 5,
        };
        let (mut file, error) = LogFile::open(path.clone(), Some(rotation), open_log(&path));
        assert_eq!(error, None);
        write(&mut file, b"ok\n", &mut ring);
        for _ in 0..9 {
            write(&mut file, &[b'x'; 7], &mut ring);
        }
        let read = |back| std::fs::read(rotated_path(&path, back)).unwrap_or_default();
        let files: Vec<Vec<u8>> = (0..=5).rev().map(read).filter(|f| !f.is_empty()).collect();
        assert!(files.iter().all(|f| f.len() <= 20), "{files:?}");
        let all: Vec<u8> = files.concat();
        let mut expected = b"ok\n".to_vec();
        expected.extend_from_slice(&[b'x'; 63]);
        assert_eq!(all, expected, "every byte, in order");
        assert!(files.len() >= 3, "{files:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
