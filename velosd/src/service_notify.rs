//! The daemon's own readiness, told to its service manager: systemd's `sd_notify`
//! protocol (`Type=notify` units, which `velos startup` writes) and its watchdog.
//!
//! When `NOTIFY_SOCKET` names a datagram socket (a path, or `@name` in Linux's abstract
//! namespace), the daemon sends `READY=1` there once its own socket answers a ping — not
//! merely once it is bound — so `systemctl start velos` returns when `velos list` works.
//! With `WATCHDOG_USEC` (and `WATCHDOG_PID` unset or this process's pid: the watchdog is
//! for the service's main process only) it then sends `WATCHDOG=1` every half of that
//! interval, from a task on the executor the supervisor runs on, so a daemon whose
//! executor is stuck stops sending and systemd restarts it.
//!
//! The three variables are read and removed from the environment first thing
//! ([`take_from_env`], before any thread exists), so no app the daemon starts inherits
//! them: an app with `--ready notify` gets its own `NOTIFY_SOCKET` (see `notify`), one
//! without gets none. Sending is best effort: a service manager that went away costs one
//! line in velosd.log, never the daemon.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::log;

/// The service manager's socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// The watchdog interval in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// The pid the watchdog is meant for.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";
/// How long the daemon tries to see its own socket answer before it gives up on `READY=1`
/// (the server runs by then; this bounds a daemon that cannot reach its own socket).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause between two looks at whether the socket answers.
const READY_POLL: Duration = Duration::from_millis(10);
/// The shortest watchdog interval honoured (a typo of `WATCHDOG_USEC=10` must not make
/// the daemon spin).
const MIN_WATCHDOG: Duration = Duration::from_millis(10);

/// Where and how often to tell the service manager about the daemon.
#[derive(Debug)]
pub struct ServiceNotify {
    address: SocketAddr,
    /// `WATCHDOG=1` every this long.
    watchdog: Option<Duration>,
}

/// Reads and removes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`: `None` without
/// `NOTIFY_SOCKET`, an error (for velosd.log, once it is open) for one the daemon cannot
/// use.
///
/// Must run before the daemon starts any thread (see `daemonize::take_internal_env`).
#[allow(unsafe_code)]
pub fn take_from_env() -> Result<Option<ServiceNotify>, String> {
    let socket = std::env::var_os(NOTIFY_SOCKET_ENV);
    let usec = std::env::var(WATCHDOG_USEC_ENV).ok();
    let pid = std::env::var(WATCHDOG_PID_ENV).ok();
    for key in [NOTIFY_SOCKET_ENV, WATCHDOG_USEC_ENV, WATCHDOG_PID_ENV] {
        // SAFETY: called first thing in `main` of the daemon, before any thread exists,
        // so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
    let Some(socket) = socket else {
        return Ok(None);
    };
    let address = crate::platform::notify_address(&socket).map_err(|error| {
        format!(
            "{NOTIFY_SOCKET_ENV}={} is not a socket address velosd can use ({error}); the \
             service manager is not told when the daemon is ready",
            socket.to_string_lossy()
        )
    })?;
    let watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
    Ok(Some(ServiceNotify { address, watchdog }))
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when it is set and meant for
/// the process `own_pid`.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&usec| usec > 0)?;
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    Some((Duration::from_micros(usec) / 2).max(MIN_WATCHDOG))
}

impl ServiceNotify {
    /// Sends one datagram; a failure is logged.
    fn send(&self, message: &str) -> bool {
        let sent = UnixDatagram::unbound()
            .and_then(|socket| socket.send_to_addr(message.as_bytes(), &self.address));
        if let Err(error) = &sent {
            log(format_args!(
                "cannot tell the service manager {}: {error}",
                message.trim_end()
            ));
        }
        sent.is_ok()
    }

    /// Sends `READY=1` once the daemon's socket at `socket` answers, then `WATCHDOG=1`
    /// every interval while the daemon runs. Runs until the daemon exits.
    pub async fn run(self, socket: PathBuf) {
        let answered = smol::unblock(move || {
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if crate::server::answers(&socket) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(READY_POLL);
            }
        })
        .await;
        if !answered {
            log(format_args!(
                "the daemon's socket did not answer within {} s: READY=1 not sent",
                READY_TIMEOUT.as_secs()
            ));
            return;
        }
        self.send(&format!("READY=1\nMAINPID={}\n", std::process::id()));
        let Some(interval) = self.watchdog else {
            return;
        };
        loop {
            async_io::Timer::after(interval).await;
            self.send("WATCHDOG=1\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_half_the_interval_and_only_for_our_own_pid() {
        let half = Some(Duration::from_millis(500));
        assert_eq!(watchdog_interval(Some("1000000"), None, 42), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("42"), 42), half);
        assert_eq!(watchdog_interval(Some("1000000"), Some("41"), 42), None);
        assert_eq!(watchdog_interval(None, Some("42"), 42), None);
        assert_eq!(watchdog_interval(Some("0"), None, 42), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 42), None);
        assert_eq!(
            watchdog_interval(Some("2"), None, 42),
            Some(MIN_WATCHDOG),
            "a tiny interval does not make the daemon spin"
        );
    }
}
