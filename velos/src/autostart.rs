//! Finding the daemon, or starting one: [`connect`].
//!
//! The order follows the contract's "Auto-start":
//!
//! 1. Connect to `velos.sock` and ping. A daemon answering is the common case and costs one
//!    round trip more. The ping is what tells a live daemon from a dying one: a daemon
//!    killed a moment ago may still accept connections for a few milliseconds (its other
//!    threads hold the socket), and then closes them unanswered. The SDK refuses a peer of
//!    another uid before anything is sent. Requests that change nothing skip the ping
//!    ([`connect_unpinged`]): the request itself is the probe, and is sent again through
//!    [`connect`] when it gets no answer.
//! 2. No answer: look for a live daemon by trying to take the `flock` on `velos.pid`
//!    (without waiting), after checking the file is a regular file of ours (never a link
//!    or a FIFO, which would block). A daemon that holds it is starting (it binds after
//!    locking) or dying (it lets go when its last thread is gone): wait, bounded by
//!    [`LOCK_WAIT`], for it to answer or let go. Getting the lock proves the files are
//!    stale only if the path still names the file we locked and nothing accepts on the
//!    socket; then remove them, and let go of the lock. A pid file that still held a pid
//!    means the last daemon did not shut down cleanly (a clean one removes it): say so
//!    once, on stderr, with the way to get its list back.
//! 3. Run the launcher (`velosd` with no arguments), which detaches the real daemon and
//!    exits once its socket answers, or once another CLI's daemon answers. Many CLIs may
//!    do this at once: the daemon's own `flock` lets exactly one of them win.
//! 4. Connect again with backoff (10 ms doubling up to 200 ms) until 5 s after step 3
//!    began; then give up with the launcher's reason and a pointer to `velosd.log`.
//!
//! The CLI is synchronous around the async SDK: its clients have blocking sockets
//! (`Client::connect_blocking`: no reactor, no thread for it), each call runs under
//! `block_on`, and the waits here are plain sleeps, because nothing else runs meanwhile.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use rustix::fs::{FlockOperation, flock};
use velos_proto::Home;
use velos_sdk::{Client, Error as SdkError};

use crate::commands::explain;

/// The environment variable naming the daemon binary.
pub const DAEMON_ENV: &str = "VELOS_DAEMON";

/// The longest a command waits for a daemon it started, launcher included.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The first pause between connection attempts; it doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(10);

/// The longest pause between connection attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_millis(200);

/// How often to look whether the launcher has exited.
const LAUNCHER_POLL: Duration = Duration::from_millis(10);

/// The longest a command waits for a daemon holding the lock to answer or let go.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);

/// How often to look again while a daemon holds the lock without answering.
const LOCK_POLL: Duration = Duration::from_millis(5);

/// A client connected to the daemon of `home`, started first if none runs.
pub fn connect(home: &Home) -> Result<Client> {
    if let Some(client) = try_connect(home)? {
        return Ok(client);
    }
    let lock_deadline = Instant::now() + LOCK_WAIT;
    loop {
        match remove_stale_files(home)? {
            Stale::Removed { previous } => {
                if let Some(pid) = previous {
                    eprintln!("{}", crash_note(pid));
                }
                break;
            }
            Stale::Nothing => break,
            Stale::Live => {
                if let Some(client) = try_connect(home)? {
                    return Ok(client);
                }
                // A daemon that keeps the lock without ever answering: let the launcher
                // have its go and report.
                if Instant::now() >= lock_deadline {
                    break;
                }
                std::thread::sleep(LOCK_POLL);
            }
        }
    }

    let deadline = Instant::now() + START_TIMEOUT;
    let launcher = launch(deadline)?;
    if launcher.failed() {
        // The launcher said why; one more attempt covers a daemon that another CLI
        // started meanwhile.
        return try_connect(home)?.ok_or_else(|| start_failed(home, &launcher));
    }

    let mut delay = FIRST_RETRY_DELAY;
    loop {
        if let Some(client) = try_connect(home)? {
            return Ok(client);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(start_failed(home, &launcher));
        }
        std::thread::sleep(delay.min(deadline - now));
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// A client of the daemon of `home` if something accepts on its socket, without the ping
/// of [`connect`]; `None` when there is no socket or nothing accepts on it. Only for
/// requests that change nothing: one that gets no answer (a dying daemon closes the
/// connection unanswered) is sent again on a client of [`connect`], which starts a daemon
/// when needed.
pub fn connect_unpinged(home: &Home) -> Result<Option<Client>> {
    match Client::connect_blocking(home.socket_path()) {
        Ok(client) => Ok(Some(client)),
        Err(SdkError::NotRunning { .. } | SdkError::Refused { .. }) => Ok(None),
        Err(err) => Err(explain(err)),
    }
}

/// The line printed once after a crash.
pub fn crash_note(pid: u32) -> String {
    format!(
        "velos: the previous daemon (pid {pid}) did not shut down cleanly; 'velos resurrect' \
         (or 'velosd --resurrect') brings back its process list"
    )
}

/// A client if the daemon answers a ping, `None` if none is there (no socket, refused, or
/// gone mid-handshake); other failures (a socket we may not use, ...) are errors.
fn try_connect(home: &Home) -> Result<Option<Client>> {
    let answered = Client::connect_blocking(home.socket_path()).and_then(|mut client| {
        let info = block_on(client.ping())?;
        Ok((client, info))
    });
    match answered {
        Ok((client, info)) => {
            crate::build_skew::warn(&info);
            Ok(Some(client))
        }
        Err(
            SdkError::NotRunning { .. }
            | SdkError::Refused { .. }
            | SdkError::Disconnected
            | SdkError::Timeout { .. },
        ) => Ok(None),
        Err(err) => Err(explain(err)),
    }
}

/// What [`remove_stale_files`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stale {
    /// No pid file: nothing to clean.
    Nothing,
    /// A daemon holds the lock (starting, running or dying), or something accepts on the
    /// socket: nothing was touched.
    Live,
    /// The files were stale and are gone; `previous` is the pid the pid file held, the
    /// mark of a daemon that did not shut down cleanly.
    Removed {
        /// The dead daemon's pid.
        previous: Option<u32>,
    },
}

/// Removes `velos.sock` and `velos.pid` if no daemon holds the pid file's lock and
/// nothing accepts on the socket; leaves everything alone otherwise (a daemon may be
/// starting: it takes the lock before it binds).
pub fn remove_stale_files(home: &Home) -> Result<Stale> {
    let pid_path = home.pid_path();
    // Read-only and never created: a pid file that is not there has nothing to tell.
    let Some(mut pid_file) = open_pid_file(&pid_path)? else {
        return Ok(Stale::Nothing);
    };
    match flock(&pid_file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        // Held: a daemon is alive.
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(Stale::Live),
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("locking {}", pid_path.display()));
        }
    }
    // Removed or replaced between open and lock (a daemon exiting, or starting afresh):
    // what we locked says nothing about the file there now. Look again.
    if !names_file(&pid_path, &pid_file) {
        return Ok(Stale::Live);
    }
    // A daemon whose pid file was removed by hand still answers on its socket: its
    // socket is not stale, and neither is the home.
    let socket = home.socket_path();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Ok(Stale::Live);
    }
    let mut text = String::new();
    let _ = pid_file.read_to_string(&mut text);
    let previous = text.trim().parse().ok();
    // The socket first: a daemon binds it only after taking the lock we now hold.
    for path in [socket, pid_path] {
        remove_if_present(&path)?;
    }
    // Dropping the file lets go of the lock.
    drop(pid_file);
    Ok(Stale::Removed { previous })
}

/// Opens the pid file for reading without following a link or blocking on a FIFO, and
/// checks it is a regular file of ours; `None` if there is none.
pub fn open_pid_file(path: &Path) -> Result<Option<File>> {
    use rustix::fs::{FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => anyhow::bail!(
            "{} is a symbolic link, not the daemon's pid file: remove it",
            path.display()
        ),
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("opening {}", path.display()));
        }
    };
    let stat = rustix::fs::fstat(&fd).with_context(|| format!("opening {}", path.display()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        anyhow::bail!(
            "{} is not a regular file (a FIFO?), so it is not the daemon's pid file: remove it",
            path.display()
        );
    }
    let ours = rustix::process::geteuid().as_raw();
    if stat.st_uid != ours {
        anyhow::bail!(
            "{} belongs to uid {}, not to your uid {ours}: this home is not yours; use a home of your own (set VELOS_HOME)",
            path.display(),
            stat.st_uid
        );
    }
    Ok(Some(File::from(fd)))
}

/// Whether `path` still names the open `file` (same device and inode).
pub fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(now), Ok(open)) => now.dev() == open.dev() && now.ino() == open.ino(),
        _ => false,
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing stale {}", path.display())),
    }
}

/// The daemon binary: `$VELOS_DAEMON`, else `velosd` beside this executable, else
/// `velosd` on `PATH`.
pub fn daemon_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(DAEMON_ENV).filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("velosd")))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from("velosd"))
}

/// How the launcher ended.
struct Launched {
    /// Its exit status; `None` if it had not exited by the deadline.
    status: Option<ExitStatus>,
    /// The last line it wrote on stderr, if any.
    reason: Option<String>,
}

impl Launched {
    fn failed(&self) -> bool {
        self.status.is_some_and(|status| !status.success())
    }
}

/// Runs the launcher and waits for it to exit, at most until `deadline`.
fn launch(deadline: Instant) -> Result<Launched> {
    let binary = daemon_binary();
    let mut child = Command::new(&binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "could not start the velos daemon: cannot run '{}' (set {DAEMON_ENV} to the velosd binary)",
                binary.display()
            )
        })?;
    let stderr = read_stderr_in_background(&mut child);
    let status = wait_until(&mut child, deadline)
        .with_context(|| format!("waiting for '{}'", binary.display()))?;
    // Once the launcher has exited its stderr ends soon; should a stray process keep the
    // pipe open, the reason is not worth waiting for.
    let reason = status.and_then(|_| {
        stderr
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .flatten()
    });
    Ok(Launched { status, reason })
}

/// Reads the child's stderr to the end in a thread (so a chatty launcher never blocks on
/// a full pipe) and sends its last non-empty line.
fn read_stderr_in_background(child: &mut Child) -> mpsc::Receiver<Option<String>> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            // A read error leaves what was read so far, which is all we can say anyway.
            let _ = stderr.read_to_end(&mut bytes);
            let _ = sender.send(last_line(&bytes));
        });
    }
    receiver
}

/// The last non-empty line of `bytes`, trimmed.
fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_owned)
}

/// The child's exit status, or `None` if it is still running at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(LAUNCHER_POLL.min(deadline - now));
    }
}

/// The error when no daemon answered in time.
fn start_failed(home: &Home, launcher: &Launched) -> anyhow::Error {
    let log = home.daemon_log_path();
    let reason = match (&launcher.reason, launcher.status) {
        (Some(reason), _) => reason.clone(),
        (None, None) => format!(
            "it did not answer within {}",
            humantime::format_duration(START_TIMEOUT)
        ),
        (None, Some(status)) if !status.success() => format!("the launcher failed ({status})"),
        (None, Some(_)) => "it did not answer".to_owned(),
    };
    // A daemon refused before it opened its log (another user's home, say) wrote none.
    if std::fs::symlink_metadata(&log).is_ok() {
        anyhow::anyhow!(
            "could not start the velos daemon: {reason}; see {}",
            log.display()
        )
    } else {
        anyhow::anyhow!("could not start the velos daemon: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    fn temp_home() -> (PathBuf, Home) {
        let dir = std::env::temp_dir().join(format!(
            "velos-cli-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (dir.clone(), Home::at(dir))
    }

    #[test]
    fn stale_files_are_removed_when_nobody_holds_the_lock() {
        let (dir, home) = temp_home();
        std::fs::write(home.pid_path(), "999999\n").unwrap();
        drop(UnixListener::bind(home.socket_path()).unwrap());
        assert_eq!(
            remove_stale_files(&home).unwrap(),
            Stale::Removed {
                previous: Some(999999)
            }
        );
        assert!(!home.pid_path().exists());
        assert!(!home.socket_path().exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_live_daemons_files_are_left_alone() {
        let (dir, home) = temp_home();
        std::fs::write(home.pid_path(), "1\n").unwrap();
        let _listener = UnixListener::bind(home.socket_path()).unwrap();
        // Another open file description holding the lock, as a daemon would.
        let daemon = File::open(home.pid_path()).unwrap();
        flock(&daemon, FlockOperation::LockExclusive).unwrap();
        remove_stale_files(&home).unwrap();
        assert!(home.pid_path().exists());
        assert!(home.socket_path().exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_socket_that_accepts_is_left_alone_even_when_the_lock_is_free() {
        let (dir, home) = temp_home();
        // A live daemon whose pid file was removed and written again by hand.
        std::fs::write(home.pid_path(), "1\n").unwrap();
        let _listener = UnixListener::bind(home.socket_path()).unwrap();
        assert_eq!(remove_stale_files(&home).unwrap(), Stale::Live);
        assert!(home.pid_path().exists());
        assert!(home.socket_path().exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_pid_file_that_is_a_fifo_or_a_link_is_refused_without_blocking() {
        let (dir, home) = temp_home();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            home.pid_path(),
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let error = remove_stale_files(&home).unwrap_err().to_string();
        assert!(error.contains("FIFO"), "{error}");
        std::fs::remove_file(home.pid_path()).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", home.pid_path()).unwrap();
        let error = remove_stale_files(&home).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_pid_file_means_nothing_to_clean() {
        let (dir, home) = temp_home();
        remove_stale_files(&home).unwrap();
        remove_stale_files(&Home::at(dir.join("missing"))).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_launchers_last_line_is_its_reason() {
        assert_eq!(
            last_line(b"starting\nvelosd: cannot create /x: permission denied\n\n").as_deref(),
            Some("velosd: cannot create /x: permission denied")
        );
        assert_eq!(last_line(b""), None);
    }
}
