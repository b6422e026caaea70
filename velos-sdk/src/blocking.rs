//! [`Client`] for code without async: the async [`crate::Client`] run to completion on
//! each call with `async_io::block_on`.
//!
//! There is one protocol stack: every method here forwards to the async client, so the
//! two behave the same, timeouts and errors included. Do not call these methods from
//! inside an async task; use [`crate::Client`] there.

use std::path::Path;
use std::time::Duration;

use async_io::block_on;
use velos_proto::{
    LogLines, PingInfo, ProcessInfo, Request, Response, RestartParams, StartParams, Target,
};

use crate::Result;

/// A blocking connection to the velos daemon, with the methods of [`crate::Client`].
///
/// # Examples
///
/// ```no_run
/// let mut client = velos_sdk::blocking::Client::connect_default()?;
/// for process in client.list()? {
///     println!("{} {}", process.name, process.status);
/// }
/// # Ok::<(), velos_sdk::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    inner: crate::Client,
}

impl Client {
    /// The timeout of connecting and of quick requests until [`Client::set_timeout`]
    /// changes it.
    pub const DEFAULT_TIMEOUT: Duration = crate::Client::DEFAULT_TIMEOUT;

    /// Connects to the daemon's socket at `path`; see [`crate::Client::connect`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let client = velos_sdk::blocking::Client::connect("/home/me/.velos/velos.sock")?;
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn connect(path: impl AsRef<Path>) -> Result<Client> {
        block_on(crate::Client::connect(path)).map(|inner| Client { inner })
    }

    /// Connects to the daemon of the default home; see [`crate::Client::connect_default`].
    pub fn connect_default() -> Result<Client> {
        block_on(crate::Client::connect_default()).map(|inner| Client { inner })
    }

    /// Sets the timeout of quick requests; see [`crate::Client::set_timeout`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_timeout(timeout);
    }

    /// Sets the timeout of stop, restart, delete and kill; see
    /// [`crate::Client::set_stop_timeout`].
    pub fn set_stop_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_stop_timeout(timeout);
    }

    /// The socket this client talks to.
    pub fn socket_path(&self) -> &Path {
        self.inner.socket_path()
    }

    /// Asks whether the daemon is alive, and which version it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut client = velos_sdk::blocking::Client::connect_default()?;
    /// println!("velosd pid {}", client.ping()?.pid);
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn ping(&mut self) -> Result<PingInfo> {
        block_on(self.inner.ping())
    }

    /// Starts a new process; see [`crate::Client::start`].
    pub fn start(&mut self, params: StartParams) -> Result<ProcessInfo> {
        block_on(self.inner.start(params))
    }

    /// Stops a process (or all) gracefully; see [`crate::Client::stop`].
    pub fn stop(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        block_on(self.inner.stop(target))
    }

    /// Stops if running, then starts again; see [`crate::Client::restart`].
    pub fn restart(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        block_on(self.inner.restart(target))
    }

    /// Restarts with the given params; see [`crate::Client::restart_with`].
    pub fn restart_with(&mut self, params: RestartParams) -> Result<Vec<ProcessInfo>> {
        block_on(self.inner.restart_with(params))
    }

    /// Stops if running, then removes the entry; see [`crate::Client::delete`].
    pub fn delete(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        block_on(self.inner.delete(target))
    }

    /// Every process the daemon manages.
    pub fn list(&mut self) -> Result<Vec<ProcessInfo>> {
        block_on(self.inner.list())
    }

    /// The last `lines` lines a process (or all) wrote, oldest first; see
    /// [`crate::Client::logs`].
    pub fn logs(&mut self, target: impl Into<Target>, lines: u32) -> Result<LogLines> {
        block_on(self.inner.logs(target, lines))
    }

    /// Stops every process, then shuts the daemon down; see [`crate::Client::kill`].
    pub fn kill(&mut self) -> Result<()> {
        block_on(self.inner.kill())
    }

    /// Sends any request and returns the daemon's typed answer; see
    /// [`crate::Client::call`].
    pub fn call(&mut self, request: &Request) -> Result<Response> {
        block_on(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::Error;
    use crate::fake_daemon::{self, FakeDaemon};

    #[test]
    fn ping_works_from_blocking_code() {
        let daemon = FakeDaemon::answering();
        let mut client = Client::connect(daemon.socket()).unwrap();
        assert_eq!(client.socket_path(), daemon.socket());
        assert_eq!(client.ping().unwrap(), fake_daemon::ping_info());
        assert_eq!(client.list().unwrap(), vec![fake_daemon::process("api")]);
        client.kill().unwrap();
    }

    #[test]
    fn errors_are_those_of_the_async_client() {
        let dir = fake_daemon::short_temp_dir();
        let result = Client::connect(dir.path().join("velos.sock"));
        assert!(
            matches!(result, Err(Error::NotRunning { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let daemon = FakeDaemon::start(|_, _| vec![]);
        let mut client = Client::connect(daemon.socket()).unwrap();
        let timeout = Duration::from_millis(100);
        client.set_timeout(Some(timeout));
        let started = Instant::now();
        let result = client.ping();
        assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
        assert!(started.elapsed() < timeout + Duration::from_secs(3));
    }
}
