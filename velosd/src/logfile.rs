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
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use velos_proto::Stream;

use crate::logs::{LogRing, lock};

/// Opens a log file for appending (0600) and returns it with its length.
pub fn open_log(path: &Path) -> std::io::Result<(File, u64)> {
    let file = crate::paths::open_in_home(path, OpenOptions::new().create(true).append(true))?;
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
    /// The reopen epoch (SIGHUP) the file was opened at; see `daemon_log`.
    epoch: u64,
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
        let epoch = crate::daemon_log::reopen_epoch();
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
            epoch,
        }
    }

    /// Appends `chunk` and hands it to the ring, rotating the file whenever it would
    /// pass its size limit: at the last line boundary that keeps it within the limit, or
    /// right after a line that alone crosses it. A chunk may fill several files; no line
    /// is ever split across two.
    pub(crate) fn write(
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
            // A line never takes a file past twice its limit: past that, even a line
            // without an end (a stream with no newline) is cut, and goes on in the next file.
            let hard = usize::try_from((rotation.max_bytes.saturating_mul(2)).saturating_sub(len))
                .unwrap_or(usize::MAX);
            let mut mid_line = false;
            let cut = match memchr::memrchr(b'\n', &rest[..room.min(rest.len())]) {
                Some(newline) => newline + 1,
                // Nothing of a line written yet: this file is done.
                None if ring.at_line_start(stream) && len > 0 => 0,
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
            written = written.and(self.append(before, ring, stream));
            ring.push(stream, before, time_ms);
            if mid_line {
                // The rest of the line starts the next file: as far as the files and the
                // lines in memory go, two lines.
                ring.cut_line(stream, time_ms);
            }
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
        // A file deleted under us has no links left; writing on would lose the lines. One
        // renamed by logrotate (which then sends SIGHUP) is left to it.
        let epoch = crate::daemon_log::reopen_epoch();
        let gone = match &self.file {
            Some(file) => file.metadata().map_or(true, |m| m.nlink() == 0),
            None => true,
        };
        if gone || self.epoch != epoch {
            self.epoch = epoch;
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

    #[test]
    fn rotation_moves_only_the_files_there_are_whatever_keep_says() {
        let dir = std::env::temp_dir().join(format!("velosd-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let ring = Mutex::new(LogRing::default());
        // u32::MAX files kept: a rotation that renamed up to `keep` files would never end.
        let rotation = Rotation {
            max_bytes: 4,
            keep: u32::MAX,
        };
        let mut file = LogFile::open(path.clone(), Some(rotation), &ring, Stream::Out);
        let mut guard = lock(&ring);
        let started = std::time::Instant::now();
        for line in [&b"aaa\n"[..], b"bbb\n", b"ccc\n", b"ddd\n"] {
            file.write(line, &mut guard, Stream::Out, 0).unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let read = |back| std::fs::read_to_string(rotated_path(&path, back)).unwrap_or_default();
        // Each line fills a file, so each write rotated.
        assert_eq!(
            [read(4), read(3), read(2), read(1), read(0)],
            ["aaa\n", "bbb\n", "ccc\n", "ddd\n", ""]
        );
        drop(guard);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_without_an_end_is_cut_at_twice_the_limit() {
        let dir = std::env::temp_dir().join(format!("velosd-midline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app-out.log");
        let ring = Mutex::new(LogRing::default());
        let rotation = Rotation {
            max_bytes: 10,
            keep: 5,
        };
        let mut file = LogFile::open(path.clone(), Some(rotation), &ring, Stream::Out);
        let mut guard = lock(&ring);
        file.write(b"ok\n", &mut guard, Stream::Out, 0).unwrap();
        for _ in 0..9 {
            file.write(&[b'x'; 7], &mut guard, Stream::Out, 0).unwrap();
        }
        let read = |back| std::fs::read(rotated_path(&path, back)).unwrap_or_default();
        let files: Vec<Vec<u8>> = (0..=5).rev().map(read).filter(|f| !f.is_empty()).collect();
        assert!(files.iter().all(|f| f.len() <= 20), "{files:?}");
        let all: Vec<u8> = files.concat();
        let mut expected = b"ok\n".to_vec();
        expected.extend_from_slice(&[b'x'; 63]);
        assert_eq!(all, expected, "every byte, in order");
        assert!(files.len() >= 3, "{files:?}");
        drop(guard);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
