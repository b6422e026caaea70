//! Finding the daemon, or starting one: [`connect`].
//!
//! The order follows the contract's "Auto-start":
//!
//! 1. Connect to `velos.sock`. A daemon answering is the common case and costs nothing more.
//! 2. No socket, or a socket nobody accepts on: look for a live daemon by trying to take
//!    the `flock` on `velos.pid` (without waiting). A live daemon, even one still starting,
//!    holds it, and then nothing is touched. Getting it proves the files are stale: remove
//!    them, then let go of the lock.
//! 3. Run the launcher (`velosd` with no arguments), which detaches the real daemon and
//!    exits once its socket answers, or once another CLI's daemon answers. Many CLIs may
//!    do this at once: the daemon's own `flock` lets exactly one of them win.
//! 4. Connect again with backoff (10 ms doubling up to 200 ms) until 5 s after step 3
//!    began; then give up with the launcher's reason and a pointer to `velosd.log`.
//!
//! The CLI is synchronous around the async SDK: each call runs under `block_on`, and the
//! waits here are plain sleeps, because nothing else runs meanwhile.

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

/// A client connected to the daemon of `home`, started first if none runs.
pub fn connect(home: &Home) -> Result<Client> {
    if let Some(client) = try_connect(home)? {
        return Ok(client);
    }
    remove_stale_files(home)?;

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

/// A client if the daemon answers, `None` if none is there (no socket, refused, or gone
/// mid-handshake); other failures (a socket we may not use, ...) are errors.
fn try_connect(home: &Home) -> Result<Option<Client>> {
    match block_on(Client::connect(home.socket_path())) {
        Ok(client) => Ok(Some(client)),
        Err(
            SdkError::NotRunning { .. }
            | SdkError::Refused { .. }
            | SdkError::Disconnected
            | SdkError::Timeout { .. },
        ) => Ok(None),
        Err(err) => Err(explain(err)),
    }
}

/// Removes `velos.sock` and `velos.pid` if no daemon holds the pid file's lock; leaves
/// everything alone if one does (it may be starting: it takes the lock before it binds).
pub fn remove_stale_files(home: &Home) -> Result<()> {
    let pid_path = home.pid_path();
    // Read-only and never created: a pid file that is not there has nothing to tell.
    let pid_file = match File::open(&pid_path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(err).with_context(|| format!("opening {}", pid_path.display()));
        }
    };
    match flock(&pid_file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        // Held: a daemon is alive.
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(()),
        Err(err) => {
            return Err(io::Error::from(err))
                .with_context(|| format!("locking {}", pid_path.display()));
        }
    }
    // The socket first: a daemon binds it only after taking the lock we now hold.
    for path in [home.socket_path(), pid_path] {
        remove_if_present(&path)?;
    }
    // Dropping the file lets go of the lock.
    drop(pid_file);
    Ok(())
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
    anyhow::anyhow!(
        "could not start the velos daemon: {reason}; see {}",
        log.display()
    )
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
        remove_stale_files(&home).unwrap();
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
