//! Detaching: `velosd` with no flags starts the real daemon in the background.
//!
//! The launcher (the process the user or the CLI ran) re-executes its own binary with
//! [`DETACHED_ENV`] set, stdin from /dev/null and stdout/stderr appended to
//! `velosd.log`, then waits until the socket answers and exits 0, or reports why the
//! daemon did not start and exits 1. The detached process calls `setsid` (it is not a
//! group leader, so this cannot fail), leaving the caller's terminal and session, and
//! moves to `/` so it keeps no directory busy. Re-executing needs no `fork` and so no
//! `unsafe`; the runtime starts only in the detached process.
//!
//! Many launchers at once each start a daemon; all but one lose the pid file lock and
//! exit with [`ALREADY_RUNNING`], and their launchers wait for the winner's socket. The
//! lock may also belong to a daemon that is dying (killed a moment ago, its threads
//! still letting go): when the lock comes free without a socket answering, the launcher
//! starts a daemon again.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use velos_proto::Home;
use velos_proto::home::HOME_ENV;

/// Set in the environment of the detached daemon.
pub const DETACHED_ENV: &str = "VELOSD_DETACHED";
/// Exit code of a daemon that found another one holding the lock.
pub const ALREADY_RUNNING: u8 = 3;
/// How long the launcher waits for the daemon to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Test-only (debug builds): `VELOSD_TEST_PANIC=<name>` makes the start of a process named
/// `<name>` panic inside the supervisor, so that a test can see a dead supervisor end the
/// daemon (`tests/e2e/daemon_life.rs`). Release builds ignore it.
pub const TEST_PANIC_ENV: &str = "VELOSD_TEST_PANIC";

/// Set by `velos runtime` to its own pid in the environment of the `velosd --no-daemon` it
/// starts: the daemon then stops (as on SIGTERM: every app stopped gracefully) when that
/// parent dies, even by SIGKILL, where the system can tell it (Linux: `PR_SET_PDEATHSIG`).
pub const PARENT_ENV: &str = "VELOSD_PARENT_PID";

/// Whether this process is the detached daemon.
pub fn is_detached() -> bool {
    std::env::var_os(DETACHED_ENV).is_some()
}

/// What the daemon's internal variables said.
pub struct Internal {
    /// [`TEST_PANIC_ENV`], in debug builds.
    pub test_panic: Option<String>,
    /// [`PARENT_ENV`]: the parent to stop with.
    pub parent: Option<u32>,
}

/// Reads the daemon's internal variables and removes them (and the server's timeout knobs,
/// read before this) from its environment, so that no child inherits them (a start without
/// `env` gives the child the daemon's own).
///
/// Must run before the daemon starts any thread: changing the environment while another
/// thread may read it is undefined behaviour.
#[allow(unsafe_code)]
pub fn take_internal_env() -> Internal {
    let test_panic = std::env::var(TEST_PANIC_ENV).ok();
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok());
    for key in [
        DETACHED_ENV,
        TEST_PANIC_ENV,
        PARENT_ENV,
        crate::server::FRAME_TIMEOUT_ENV,
        crate::server::WRITE_TIMEOUT_ENV,
    ] {
        // SAFETY: called first thing in `main` of the daemon, before any thread exists
        // (the log writer, the runtime and the state writer all start later), so nothing
        // reads the environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
    Internal {
        test_panic: test_panic.filter(|_| cfg!(debug_assertions)),
        parent,
    }
}

/// Leaves the caller's session and working directory, and lets go of every file the
/// caller left open to us.
pub fn detach() {
    close_inherited_fds();
    // EPERM only if we already lead a group, which a freshly spawned child does not.
    let _ = rustix::process::setsid();
    let _ = std::env::set_current_dir("/");
}

/// Closes every descriptor above stderr that the launcher's caller let us inherit.
///
/// A test runner's or CI's pipe inherited this way would stay open as long as the daemon
/// runs, and whoever waits for that pipe to close would wait for ever; children would
/// inherit it too. This runs first thing in the detached daemon, before it opens
/// anything of its own.
#[allow(unsafe_code)]
fn close_inherited_fds() {
    let Ok(entries) = std::fs::read_dir(crate::platform::FD_DIR) else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: nothing in this process owns these descriptors: they were inherited
        // across exec and no Rust object refers to them. The one read_dir used is closed
        // by now and fails the F_GETFD check, so no number is closed twice.
        unsafe {
            let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
            if rustix::io::fcntl_getfd(borrowed).is_ok() {
                rustix::io::close(fd);
            }
        }
    }
}

/// Starts the detached daemon with `args` and waits until it answers.
pub fn launch(home: &Home, args: &[String]) -> ExitCode {
    match try_launch(home, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The launcher's stderr is the caller's terminal; a failed write has nowhere to go.
            let _ = writeln!(std::io::stderr(), "velosd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_launch(home: &Home, args: &[String]) -> anyhow::Result<()> {
    crate::paths::create_home(home)?;
    let log_path = home.daemon_log_path();
    let log = crate::paths::open_in_home(&log_path, OpenOptions::new().create(true).append(true))
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    // A live daemon (even one whose velos.pid was removed) is not joined by a second.
    if crate::server::answers(&home.socket_path()) {
        let _ = writeln!(std::io::stderr(), "velosd: already running");
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the velosd executable")?;
    let spawn = || -> anyhow::Result<std::process::Child> {
        Command::new(&exe)
            .args(args)
            .env(DETACHED_ENV, "1")
            .env(HOME_ENV, home.root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .spawn()
            .context("cannot start the detached daemon")
    };
    let mut child = spawn()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut lost_the_race = false;
    loop {
        // Polling here is the launcher's, bounded, and over before the user gets a prompt;
        // the daemon itself never polls.
        // An answer, not a connection: a daemon killed a moment ago may still accept.
        if crate::server::answers(&home.socket_path()) {
            if lost_the_race {
                let _ = writeln!(std::io::stderr(), "velosd: already running");
            }
            return Ok(());
        }
        if lost_the_race {
            if lock_is_free(home) {
                // The holder died without ever answering: try again.
                child = spawn()?;
                lost_the_race = false;
            }
        } else if let Some(status) = child.try_wait()? {
            if status.code() == Some(i32::from(ALREADY_RUNNING)) {
                lost_the_race = true;
            } else {
                bail!(
                    "the daemon exited during start-up ({status}); see {}",
                    log_path.display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon did not answer within {} s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether no process holds the pid file lock (taken and released at once).
fn lock_is_free(home: &Home) -> bool {
    let Ok(file) = crate::paths::open_in_home(&home.pid_path(), OpenOptions::new().read(true))
    else {
        // No pid file: whoever held it has removed it on the way out.
        return true;
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}
