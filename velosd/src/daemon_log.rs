//! The daemon's own log: `velosd.log` for a detached daemon, stderr with `--no-daemon`.
//!
//! [`log`] never panics and never blocks: it formats the line (with the time) and hands it
//! to a thread of its own, which does the writing. If that thread falls behind (a slow or
//! stuck disk), lines beyond [`QUEUE_LINES`] are counted and dropped, and the count is
//! written once it catches up; lines that could not be written (a full disk) are counted
//! the same way and reported by the first line that can be. `eprintln!`, which panics when
//! the write fails, is not used anywhere in the daemon.
//!
//! `velosd.log` is rotated at [`MAX_LOG_BYTES`]: it becomes `velosd.log.1` (replacing the
//! previous one) and a new file begins. [`request_reopen`] (SIGHUP, after a logrotate
//! rename) makes the writer open the path again before its next line, as it makes every
//! process's log file do (`logfile.rs` reads [`reopen_epoch`]). The daemon's stdout and
//! stderr are pointed at the current file, so that anything written to them (a panic
//! message from the runtime, say) lands in it too.
//!
//! Before [`start`], and in the launcher, lines go straight to stderr, errors ignored.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::{Duration, Instant, SystemTime};

/// `velosd.log` is rotated once it would pass this size; one old file is kept.
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;
/// Lines that may wait for the writer thread; more are dropped (and counted).
const QUEUE_LINES: usize = 4096;
/// How long a panic waits for its line to be written before the process goes on dying.
const PANIC_FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// Bumped by [`request_reopen`]; every log file compares it with the value it opened at.
static REOPEN_EPOCH: AtomicU64 = AtomicU64::new(0);
/// Lines dropped because the writer thread was behind.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The writer thread's queue, once started. Unbounded, and bounded by [`QUEUED`] instead:
/// a channel of [`QUEUE_LINES`] slots allocates (and touches) all of them up front, which
/// is 128 KiB resident for the daemon's life; this one takes memory as lines wait.
static QUEUE: OnceLock<Sender<Message>> = OnceLock::new();
/// Lines in [`QUEUE`] not yet taken by the writer thread.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

enum Message {
    Line(String),
    /// Answered once every line queued before it has been written.
    Flush(SyncSender<()>),
}

/// Where the lines go.
pub enum Target {
    /// The daemon's stderr (`--no-daemon`: a terminal, a journal); never rotated.
    Stderr,
    /// A file the daemon owns (`velosd.log`): rotated, and reopened on request.
    File(PathBuf),
}

/// One line in the daemon's log, with the time. Never panics and never blocks.
pub fn log(message: impl Display) {
    let line = format!(
        "{} {message}\n",
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    match QUEUE.get() {
        Some(queue) => {
            if QUEUED.fetch_add(1, Ordering::AcqRel) >= QUEUE_LINES
                || queue.send(Message::Line(line)).is_err()
            {
                QUEUED.fetch_sub(1, Ordering::AcqRel);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Not started (the launcher, or start-up before the thread): nobody else writes.
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Asks every log file (velosd.log and each process's) to be opened again by path before
/// its next write.
pub fn request_reopen() {
    REOPEN_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The current reopen epoch; a file opened at an older one opens its path again.
pub fn reopen_epoch() -> u64 {
    REOPEN_EPOCH.load(Ordering::Acquire)
}

/// Starts the writer thread, and makes panics go through [`log`]. Lines logged before
/// this went straight to stderr.
pub fn start(target: Target) {
    let (queue, lines) = channel();
    let mut writer = match target {
        Target::Stderr => Writer::Stderr,
        Target::File(path) => Writer::File(LogFile::open(path, MAX_LOG_BYTES, true)),
    };
    let spawned = std::thread::Builder::new()
        .name("daemon-log".into())
        .spawn(move || write_lines(&mut writer, &lines));
    // Without the thread, lines keep going straight to stderr.
    if spawned.is_ok() {
        let _ = QUEUE.set(queue);
    }
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = info.to_string().replace('\n', " ");
        log(format_args!(
            "thread '{}' {message}",
            thread.name().unwrap_or("unnamed")
        ));
        flush(PANIC_FLUSH_TIMEOUT);
    }));
}

/// Waits (at most `timeout`) until every line logged so far is written.
pub fn flush(timeout: Duration) {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    let (done, written) = sync_channel(1);
    if queue.send(Message::Flush(done)).is_err() {
        return;
    }
    let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

fn write_lines(writer: &mut Writer, lines: &Receiver<Message>) {
    while let Ok(message) = lines.recv() {
        match message {
            Message::Line(line) => {
                QUEUED.fetch_sub(1, Ordering::AcqRel);
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    writer.write(&format!(
                        "{} {dropped} log lines dropped: the log could not keep up\n",
                        humantime::format_rfc3339_seconds(SystemTime::now())
                    ));
                }
                writer.write(&line);
            }
            Message::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
}

enum Writer {
    Stderr,
    File(LogFile),
}

impl Writer {
    fn write(&mut self, line: &str) {
        match self {
            // Nothing to do about a failed write to stderr but go on.
            Writer::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Writer::File(file) => file.write(line),
        }
    }
}

/// `velosd.log`: rotated at a size, opened again on request or after a failed write.
struct LogFile {
    path: PathBuf,
    file: Option<File>,
    len: u64,
    max_bytes: u64,
    epoch: u64,
    /// Whether stdout and stderr follow the file.
    stdio: bool,
    /// Lines lost to failed writes since the last one that succeeded, and the last error.
    lost: Option<(u64, std::io::Error)>,
}

impl LogFile {
    fn open(path: PathBuf, max_bytes: u64, stdio: bool) -> LogFile {
        let mut log = LogFile {
            path,
            file: None,
            len: 0,
            max_bytes,
            epoch: reopen_epoch(),
            stdio,
            lost: None,
        };
        log.reopen();
        log
    }

    /// Opens the path afresh and points stdout and stderr at it.
    fn reopen(&mut self) {
        self.epoch = reopen_epoch();
        self.file = None;
        match open_append(&self.path) {
            Ok((file, len)) => {
                if self.stdio {
                    // Stray writes to stdout or stderr (the runtime's) follow the log.
                    let _ = rustix::stdio::dup2_stdout(&file);
                    let _ = rustix::stdio::dup2_stderr(&file);
                }
                self.file = Some(file);
                self.len = len;
            }
            Err(error) => self.lose(error),
        }
    }

    fn write(&mut self, line: &str) {
        if self.file.is_none() || self.epoch != reopen_epoch() {
            self.reopen();
        }
        if self.len > 0 && self.len + line.len() as u64 > self.max_bytes {
            self.rotate();
        }
        if let Some((count, error)) = self.lost.take() {
            let note = format!(
                "{} {count} log lines could not be written: {error}\n",
                humantime::format_rfc3339_seconds(SystemTime::now())
            );
            if !self.append(&note) {
                // Still failing: count this line too and keep the first error.
                self.lost = Some((count + 1, error));
                return;
            }
        }
        self.append(line);
    }

    /// Appends `text`; on failure counts it as lost and drops the handle, so that the next
    /// line tries the path afresh.
    fn append(&mut self, text: &str) -> bool {
        let Some(file) = self.file.as_mut() else {
            self.count_lost(None);
            return false;
        };
        match file.write_all(text.as_bytes()) {
            Ok(()) => {
                self.len += text.len() as u64;
                true
            }
            Err(error) => {
                self.file = None;
                self.count_lost(Some(error));
                false
            }
        }
    }

    fn lose(&mut self, error: std::io::Error) {
        if self.lost.is_none() {
            self.lost = Some((0, error));
        }
    }

    fn count_lost(&mut self, error: Option<std::io::Error>) {
        match (&mut self.lost, error) {
            (Some((count, _)), _) => *count += 1,
            (None, Some(error)) => self.lost = Some((1, error)),
            (None, None) => {
                self.lost = Some((1, std::io::Error::other("velosd.log is not open")));
            }
        }
    }

    /// `velosd.log` becomes `velosd.log.1` (replacing the old one), and a new file begins.
    fn rotate(&mut self) {
        let mut old = self.path.as_os_str().to_owned();
        old.push(".1");
        if std::fs::rename(&self.path, &old).is_ok() {
            self.reopen();
        } else if let Some(file) = &self.file {
            // Cannot rename (the directory is read-only, say): start the file over
            // rather than grow without bound.
            if file.set_len(0).is_ok() {
                self.len = 0;
            }
        }
    }
}

/// Opens `path` for appending (0600, never through a symlink, never blocking on a FIFO)
/// with its length. (The launcher checked the file with `paths::open_in_home` already.)
fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    use rustix::fs::OFlags;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32)
        .open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velosd_log_rotates_at_its_size_limit_keeping_one_old_file() {
        let dir = std::env::temp_dir().join(format!("velosd-dlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("velosd.log");
        let mut log = LogFile::open(path.clone(), 100, false);
        for i in 0..30 {
            log.write(&format!("line {i:02} ........\n"));
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(dir.join("velosd.log.1")).unwrap();
        assert!(
            current.len() <= 100 && old.len() <= 100,
            "{current:?} {old:?}"
        );
        assert!(current.ends_with("line 29 ........\n"), "{current:?}");
        assert!(old.ends_with(&format!(
            "line {:02} ........\n",
            29 - current.lines().count()
        )));
        assert!(!dir.join("velosd.log.2").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_lost_to_a_failed_write_are_counted_and_reported_by_the_next_one() {
        let mut log = LogFile::open(PathBuf::from("/dev/full"), u64::MAX, false);
        log.write("one\n");
        log.write("two\n");
        let (count, error) = log.lost.as_ref().expect("lost lines");
        assert_eq!(*count, 2);
        assert_eq!(error.raw_os_error(), Some(28), "ENOSPC: {error}");
    }
}
