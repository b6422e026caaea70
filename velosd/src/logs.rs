//! Log collection: a task per child pipe appends to the log file (see `logfile`) and
//! hands the bytes to the process's ring (see `ring`), which `log.read` answers from and
//! followers are fed from.
//!
//! Ordering: each chunk read from a pipe is written to the file first, then given to the
//! ring, so the file always holds at least what the ring shows.
//!
//! A slow disk holds up the logs only: the collectors run on a thread of their own (never
//! the supervisor's or the connections'), and a write holds only its stream's file lock,
//! never the ring's; the ring catches up afterwards in one short step. `list` (which reads
//! the ring's `write_error`), `log.read` and `log.follow` take only the ring's lock;
//! `log.flush` waits for a write under way.
//!
//! A write that fails (disk full) is recorded for `velos logs` and `velos list --json`
//! (`log_error`); the lines stay in memory.
//!
//! The collector reads a fixed-size chunk at a time, so a child writing faster than the
//! disk is slowed by its full pipe, never buffered without limit.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncRead, AsyncReadExt, FutureExt};
use velos_proto::Stream;

use crate::logfile::{LogFile, Rotation, Step, apply};
use crate::ring::{LogRing, PARTIAL_QUIET};

/// Bytes a collector reads at a time at first: most programs write little, and an
/// idle process should cost next to nothing.
const FIRST_CHUNK_BYTES: usize = 1024;
/// Bytes a collector reads at a time at most, once its writer keeps filling the buffer.
const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// A pipe's capacity unless asked for more (Linux).
const DEFAULT_PIPE_BYTES: usize = 64 * 1024;
/// Bytes at the end of a spliced chunk read back for the ring (see [`Splicer`]): with
/// 100-byte lines, 1,310 lines, more than the ring keeps.
const TAIL_BYTES: usize = 128 * 1024;
/// Fewer bytes than this waiting in a busy stream's pipe are read and written, not
/// spliced (see [`Splicer::step`]).
const SPLICE_MIN_BYTES: u64 = 32 * 1024;
/// Pipe capacity asked for once a writer fills the default pipe at every read: fewer,
/// larger reads, and a writer that blocks less often. Only busy writers get it: every
/// pipe of a user counts against `/proc/sys/fs/pipe-user-pages-soft` (64 MiB), past
/// which Linux gives that user's new pipes a single page.
const BUSY_PIPE_BYTES: usize = 1024 * 1024;

/// Set by `velosd --no-log-files` (what `velos runtime` runs): no process gets log files;
/// its lines stay in its ring and go to followers.
static NO_FILES: AtomicBool = AtomicBool::new(false);

/// From now on, runs get no log files (`--no-log-files`).
pub fn without_files() {
    NO_FILES.store(true, Ordering::Relaxed);
}

/// Whether runs write their log files (not `--no-log-files`).
pub fn writes_files() -> bool {
    !NO_FILES.load(Ordering::Relaxed)
}

/// A process's logs: its ring, and its two files while a run writes them.
#[derive(Debug)]
pub struct Logs {
    ring: Mutex<LogRing>,
    /// Each stream's file; held across a write (and a flush), never with the ring's
    /// lock held first.
    files: [Mutex<Option<LogFile>>; 2],
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Out => 0,
        Stream::Err => 1,
    }
}

impl Logs {
    /// The logs of the process `id` called `name`: nothing yet.
    pub fn new(id: u32, name: &str) -> Logs {
        Logs {
            ring: Mutex::new(LogRing::new(id, name)),
            files: [Mutex::new(None), Mutex::new(None)],
        }
    }

    /// The ring, locked.
    pub fn ring(&self) -> MutexGuard<'_, LogRing> {
        relock(&self.ring)
    }

    /// Gives `stream` its file at `path` for a new run, noting its length in the ring;
    /// `opened` is what `logfile::open_log(&path)` gave (see [`LogFile::open`]).
    pub fn open(
        &self,
        stream: Stream,
        path: PathBuf,
        rotation: Option<Rotation>,
        opened: std::io::Result<(std::fs::File, u64)>,
    ) {
        let (file, error) = LogFile::open(path, rotation, opened);
        let mut slot = relock(&self.files[slot(stream)]);
        let mut ring = self.ring();
        ring.set_file_len(stream, file.len());
        if error.is_some() {
            ring.write_error = error;
        }
        *slot = Some(file);
    }

    /// `velos flush`: `empty` empties the files while no write is under way; then the
    /// ring forgets its lines.
    pub fn flush(&self, empty: impl FnOnce()) {
        let mut files = self.files.each_ref().map(relock);
        empty();
        for file in files.iter_mut().filter_map(|file| file.as_mut()) {
            file.flushed();
        }
        self.ring().flushed();
    }
}

/// Locks a process's ring; see [`Logs::ring`].
pub fn lock(logs: &Logs) -> MutexGuard<'_, LogRing> {
    logs.ring()
}

/// Writes a line of velos's own (`[velos] watch: files changed: ...`) into a process's
/// `stream`, file and ring, as if the process had written it: so `velos logs` shows it
/// among the lines it explains. The file's lock first, then the ring's, as a collector
/// takes them; a write that fails is recorded as a collector's would be.
pub fn note(logs: &Logs, stream: Stream, line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let time_ms = now_ms();
    let mut file = relock(&logs.files[slot(stream)]);
    let mut steps = Vec::new();
    let written = match file.as_mut() {
        Some(file) => file.write(&bytes, &mut steps),
        // No run opened the file yet: memory only.
        None => {
            steps.push(Step::Push(0..bytes.len()));
            Ok(())
        }
    };
    let mut ring = logs.ring();
    apply(&steps, &bytes, &mut ring, stream, time_ms);
    if let Err(error) = written {
        ring.write_error = Some(error);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Asks for a larger pipe; where that is not allowed, the default pipe still works.
fn grow_pipe(pipe: &impl std::os::fd::AsFd) {
    crate::platform::grow_pipe(pipe, BUSY_PIPE_BYTES);
}

/// The executor the collectors run on, on a thread of its own; `None` where that thread
/// could not be started (then they share the daemon's).
fn collectors() -> Option<&'static smol::Executor<'static>> {
    static EXECUTOR: smol::Executor<'static> = smol::Executor::new();
    static STARTED: OnceLock<bool> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("velosd-logs".to_owned())
            .spawn(|| smol::block_on(EXECUTOR.run(futures_lite::future::pending::<()>())))
            .is_ok()
    });
    started.then_some(&EXECUTOR)
}

/// Starts collecting one child pipe into `logs` (see [`collect`]); `stamped` writes each
/// line to the file after its time (`--time`).
pub fn spawn_collector(
    pipe: impl AsyncRead + std::os::fd::AsFd + Unpin + Send + 'static,
    logs: Arc<Logs>,
    stream: Stream,
    stamped: bool,
) -> smol::Task<()> {
    let collect = collect(pipe, logs, stream, stamped);
    match collectors() {
        Some(executor) => executor.spawn(collect),
        None => smol::spawn(collect),
    }
}

/// Copies one child pipe to its log file and ring until the pipe closes.
///
/// File writes are plain blocking `write` calls, on the collectors' own thread: they
/// land in the page cache and return at memory speed, and a thread hop per chunk would
/// cost more than it saves. A write error (disk full, file gone) is recorded for
/// `velos logs`; reading goes on, so the child never blocks on a full pipe, and the ring
/// keeps its lines.
///
/// With `stamped` (`--time`), every line goes to the file after its stamp (see `stamp`):
/// the chunk is copied once with the stamps in, and that copy is what the file and the
/// ring get (the ring leaves the stamps out of its lines). Such a stream never splices:
/// its bytes must pass through memory to be stamped. Without it, nothing changes.
pub async fn collect(
    mut pipe: impl AsyncRead + std::os::fd::AsFd + Unpin,
    logs: Arc<Logs>,
    stream: Stream,
    stamped: bool,
) {
    let mut chunk = vec![0; FIRST_CHUNK_BYTES];
    let mut grown = false;
    let mut steps = Vec::new();
    // Armed only while followers have not seen the end of an unfinished line: an idle
    // stream costs no timer.
    let mut unshown = false;
    // Once the stream is busy (where the system has `splice`).
    let mut splicer: Option<Splicer> = None;
    // With `--time`: whether the next byte starts a line, and the stamped copy of a chunk.
    let mut stamper = stamped.then(|| (true, Vec::new()));
    loop {
        if let Some(splicer) = &splicer {
            match splicer.step(&logs, stream, &mut chunk, &mut steps).await {
                Spliced::Moved => continue,
                Spliced::Ended => break,
                // Someone needs every byte: this round reads.
                Spliced::Read => {}
            }
        }
        let read = if unshown {
            async { Some(pipe.read(&mut chunk).await) }
                .or(async {
                    async_io::Timer::after(PARTIAL_QUIET).await;
                    None
                })
                .await
        } else {
            Some(pipe.read(&mut chunk).await)
        };
        let Some(read) = read else {
            // Quiet for a moment in the middle of a line: likely a prompt. Show it.
            logs.ring().show_partial(stream);
            unshown = false;
            continue;
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let time_ms = now_ms();
        let data: &[u8] = match &mut stamper {
            Some((at_line_start, stamped)) => {
                crate::stamp::stamp_lines(&chunk[..n], time_ms, at_line_start, stamped);
                stamped
            }
            None => &chunk[..n],
        };
        let mut file = relock(&logs.files[slot(stream)]);
        steps.clear();
        let written = match file.as_mut() {
            Some(file) => file.write(data, &mut steps),
            // Not opened for this run (`--no-log-files`): memory only.
            None => {
                steps.push(Step::Push(0..data.len()));
                Ok(())
            }
        };
        let mut ring = logs.ring();
        apply(&steps, data, &mut ring, stream, time_ms);
        // The stamps are not the process's output (`velos_log_bytes_total`).
        ring.uncount_stamps(stream, (data.len() - n) as u64);
        ring.write_error = written.err();
        unshown = ring.unshown(stream);
        drop(ring);
        drop(file);
        if n > chunk.len() / 2 && chunk.len() < MAX_CHUNK_BYTES {
            // A read that filled most of the buffer (a full pipe of 100-byte lines holds
            // 65,500 bytes, not 65,536): the writer is ahead of us, so read more at a time.
            // Past the default pipe's size, reading more needs a larger pipe. A fresh
            // buffer, not a grown one, now that what it held is written: a large fresh
            // allocation is zero pages the system maps only where bytes land (a spliced
            // chunk touches only its tail), not a megabyte filled in.
            chunk = vec![0; chunk.len() * 4];
            if chunk.len() > DEFAULT_PIPE_BYTES && !grown {
                grow_pipe(&pipe);
                grown = true;
            }
            if chunk.len() >= MAX_CHUNK_BYTES && stamper.is_none() {
                splicer = Splicer::new(&pipe);
            }
        }
    }
    logs.ring().finish(stream, now_ms());
}

/// A busy stream's way to its file without its bytes passing through memory: the
/// child's pipe → `splice` → a pipe of the daemon's own → `splice` → the file, and only
/// the last [`TAIL_BYTES`] read back (from the page cache) for the ring (see `platform`;
/// where there is no `splice`, [`Splicer::new`] gives none and the collector reads and
/// writes). Splicing straight from the child's pipe into the file would keep the child's
/// pipe locked while the bytes are copied into the page cache, and the child would wait
/// on it; from a pipe of our own, only page references move under the child's pipe's
/// lock.
///
/// Rotation cuts at line boundaries and followers see every line: with either, the
/// collector reads as before (see [`Splicer::step`]).
struct Splicer {
    /// A second descriptor of the child's pipe, to wait on.
    child: async_io::Async<std::fs::File>,
    /// The daemon's own pipe: read end, write end.
    private: (OwnedFd, OwnedFd),
}

/// What one [`Splicer::step`] did.
enum Spliced {
    /// A chunk went to the file and the ring.
    Moved,
    /// The child's pipe is closed.
    Ended,
    /// Nothing moved: the bytes are needed (followers, rotation), or few are waiting, so
    /// read them.
    Read,
}

impl Splicer {
    fn new(pipe: &impl AsFd) -> Option<Splicer> {
        let private = crate::platform::private_pipe(BUSY_PIPE_BYTES).ok()?;
        let child = pipe.as_fd().try_clone_to_owned().ok()?;
        let child = async_io::Async::new(std::fs::File::from(child)).ok()?;
        Some(Splicer { child, private })
    }

    /// Moves one chunk (as much as the child's pipe holds, at most `chunk`'s size) to
    /// the file and its end to the ring, waiting for the child to write if need be.
    async fn step(
        &self,
        logs: &Logs,
        stream: Stream,
        chunk: &mut [u8],
        steps: &mut Vec<Step>,
    ) -> Spliced {
        loop {
            let file_allows = relock(&logs.files[slot(stream)])
                .as_ref()
                .is_some_and(LogFile::can_splice);
            if !file_allows || logs.ring().has_followers() {
                return Spliced::Read;
            }
            // A little at a time (a writer of single lines): a read and a write cost
            // fewer system calls than the two splices and what goes with them.
            match rustix::io::ioctl_fionread(self.child.as_fd()) {
                Ok(waiting) if waiting > 0 && waiting < SPLICE_MIN_BYTES => return Spliced::Read,
                _ => {}
            }
            let into = self.private.1.as_fd();
            match crate::platform::splice_pipe(self.child.as_fd(), into, chunk.len()) {
                Ok(0) => return Spliced::Ended,
                Ok(n) => {
                    self.deliver(logs, stream, n, chunk, steps);
                    return Spliced::Moved;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.child.readable().await.is_err() {
                        return Spliced::Read;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Spliced::Read,
            }
        }
    }

    /// The `n` bytes in the private pipe: to the file, and their end to the ring.
    fn deliver(
        &self,
        logs: &Logs,
        stream: Stream,
        n: usize,
        chunk: &mut [u8],
        steps: &mut Vec<Step>,
    ) {
        let time_ms = now_ms();
        let mut file = relock(&logs.files[slot(stream)]);
        let Some(log) = file.as_mut() else {
            // No file for this run (`step` saw one a moment ago): the bytes stay in
            // memory, and the private pipe is left empty for the next chunk.
            let mut filled = 0;
            while filled < n {
                match rustix::io::read(self.private.0.as_fd(), &mut chunk[filled..n]) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => filled += read,
                }
            }
            logs.ring().push(stream, &chunk[..filled], time_ms);
            return;
        };
        steps.clear();
        let from = self.private.0.as_fd();
        let written = log.splice_in(from, n, TAIL_BYTES, chunk, steps);
        let mut ring = logs.ring();
        // Only a reopened file's step here: the bytes come below.
        apply(steps, &[], &mut ring, stream, time_ms);
        match written {
            Ok(tail) => {
                if !ring.push_tail(stream, (n - tail) as u64, &chunk[..tail], time_ms) {
                    // Long lines (or a new follower): the ring needs the whole chunk.
                    drop(ring);
                    if !log.read_back(&mut chunk[..n]) {
                        chunk[..n].fill(b' ');
                    }
                    ring = logs.ring();
                    ring.push(stream, &chunk[..n], time_ms);
                }
                ring.write_error = None;
            }
            Err(error) => {
                ring.push(stream, &chunk[..n], time_ms);
                ring.write_error = Some(error);
            }
        }
    }
}

/// Locks `mutex`. A poisoned lock still holds valid data (pushes cannot panic halfway
/// through in a way that matters to a reader), so it is used as is.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
