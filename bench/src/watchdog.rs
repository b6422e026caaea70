//! A bound on how long the benchmark waits for a child it ran (a CLI command).
//!
//! Timed runs wait with a plain blocking `wait()`, so the measurement is not blurred by
//! polling. A single watchdog thread, started on first use, checks the armed deadlines every
//! 50 ms and SIGKILLs a child that overstays; its `wait()` then returns and the caller
//! reports a timeout. Arming and disarming take a lock and never wake the thread, so they
//! cost a few hundred nanoseconds inside a measurement.
//!
//! A child is disarmed only after `wait()` returned, so while armed its pid cannot have been
//! reused: an unreaped child stays a zombie and keeps its pid. The one window left (reaped,
//! not yet disarmed, deadline passing in those microseconds, pid reused at once) is
//! ignored.

use std::process::{Child, ExitStatus};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rustix::process::{Pid, Signal};

/// How often the watchdog looks at its deadlines.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Armed {
    pid: u32,
    deadline: Instant,
    fired: bool,
}

static ARMED: OnceLock<Mutex<Vec<Armed>>> = OnceLock::new();

fn armed() -> &'static Mutex<Vec<Armed>> {
    ARMED.get_or_init(|| {
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(watch)
            .expect("spawning the watchdog thread");
        Mutex::new(Vec::new())
    })
}

fn watch() {
    loop {
        std::thread::sleep(CHECK_INTERVAL);
        let now = Instant::now();
        let mut armed = armed().lock().unwrap_or_else(|e| e.into_inner());
        for entry in armed.iter_mut().filter(|e| !e.fired && e.deadline <= now) {
            entry.fired = true;
            if let Some(pid) = i32::try_from(entry.pid).ok().and_then(Pid::from_raw) {
                // ESRCH: it exited on its own just now; wait() will say so.
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }
}

/// Waits for `child`, killing it after `timeout`. A child killed this way is an error.
pub fn wait(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let pid = child.id();
    armed()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Armed {
            pid,
            deadline: Instant::now() + timeout,
            fired: false,
        });
    let status = child.wait();
    let fired = {
        let mut armed = armed().lock().unwrap_or_else(|e| e.into_inner());
        let at = armed.iter().position(|e| e.pid == pid);
        at.is_some_and(|at| armed.swap_remove(at).fired)
    };
    let status = status?;
    if fired {
        bail!("gave up after {timeout:?} and killed it");
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn a_quick_child_is_waited_for() {
        let mut child = Command::new("true").spawn().unwrap();
        assert!(wait(&mut child, Duration::from_secs(10)).unwrap().success());
    }

    #[test]
    fn a_child_that_overstays_is_killed() {
        let started = Instant::now();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let error = wait(&mut child, Duration::from_millis(100)).unwrap_err();
        assert!(error.to_string().contains("gave up"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
