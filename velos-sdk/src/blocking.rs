//! [`Client`] for code without async: the async [`crate::Client`] on a blocking socket
//! ([`crate::Client::connect_blocking`]), each call run to completion in place.
//!
//! There is one protocol stack: every method here forwards to the async client, so the
//! two behave the same, timeouts and errors included. Requests need no reactor: no
//! thread is started for them. The streams are iterators here:
//! [`LogFollow`] and [`Events`] block in `next` until the daemon sends something, and
//! end when it closes the connection. Do not call these methods from inside an async
//! task; use [`crate::Client`] there.

use std::path::Path;
use std::time::Duration;

use async_io::block_on;
use futures_lite::StreamExt;
use velos_proto::{
    Call, DeleteParams, LogLines, MetricsState, PingInfo, ProcessEvent, ProcessInfo, RestartParams,
    SaveParams, Saved, ScaleParams, StartParams, Target,
};

use crate::{FollowEvent, Result};

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
        crate::Client::connect_blocking(path).map(|inner| Client { inner })
    }

    /// Connects to the daemon of the default home; see [`crate::Client::connect_default`].
    pub fn connect_default() -> Result<Client> {
        let home = velos_proto::Home::from_env()?;
        Client::connect(home.socket_path())
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
        request(self.inner.ping())
    }

    /// Starts a new process; see [`crate::Client::start`].
    pub fn start(&mut self, params: StartParams) -> Result<ProcessInfo> {
        request(self.inner.start(params))
    }

    /// Stops a process (or all) gracefully; see [`crate::Client::stop`].
    pub fn stop(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        request(self.inner.stop(target))
    }

    /// Stops if running, then starts again; see [`crate::Client::restart`].
    pub fn restart(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        request(self.inner.restart(target))
    }

    /// Restarts with the given params; see [`crate::Client::restart_with`].
    pub fn restart_with(&mut self, params: RestartParams) -> Result<Vec<ProcessInfo>> {
        request(self.inner.restart_with(params))
    }

    /// Reloads with no downtime; see [`crate::Client::reload`].
    pub fn reload(
        &mut self,
        params: velos_proto::ReloadParams,
    ) -> Result<Vec<velos_proto::ReloadOutcome>> {
        request(self.inner.reload(params))
    }

    /// Stops if running, then removes the entry; see [`crate::Client::delete`].
    pub fn delete(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        request(self.inner.delete(target))
    }

    /// Every process the daemon manages.
    pub fn list(&mut self) -> Result<Vec<ProcessInfo>> {
        request(self.inner.list())
    }

    /// The last `lines` lines a process (or all) wrote, oldest first; see
    /// [`crate::Client::logs`].
    pub fn logs(&mut self, target: impl Into<Target>, lines: u32) -> Result<LogLines> {
        request(self.inner.logs(target, lines))
    }

    /// One page of `log.read`; see [`crate::Client::logs_page`].
    pub fn logs_page(&mut self, params: &crate::LogReadParams) -> Result<LogLines> {
        request(self.inner.logs_page(params))
    }

    /// One process in detail; see [`crate::Client::info`].
    pub fn info(&mut self, target: impl Into<Target>) -> Result<ProcessInfo> {
        request(self.inner.info(target))
    }

    /// Empties the log files of a process (or all); see [`crate::Client::flush`].
    pub fn flush(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        request(self.inner.flush(target))
    }

    /// Deletes with the given params (`logs`); see [`crate::Client::delete_with`].
    pub fn delete_with(&mut self, params: DeleteParams) -> Result<Vec<ProcessInfo>> {
        request(self.inner.delete_with(params))
    }

    /// Writes the process list to the dump file; see [`crate::Client::save`].
    pub fn save(&mut self) -> Result<Saved> {
        request(self.inner.save())
    }

    /// Saves with the given params (`force`); see [`crate::Client::save_with`].
    pub fn save_with(&mut self, params: SaveParams) -> Result<Saved> {
        request(self.inner.save_with(params))
    }

    /// Starts the processes of the dump file; see [`crate::Client::resurrect`].
    pub fn resurrect(&mut self) -> Result<Vec<ProcessInfo>> {
        request(self.inner.resurrect())
    }

    /// Follows the log of a process (or all): the last `lines` lines, then every new
    /// one, on a connection of its own; see [`crate::Client::follow_logs`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use velos_sdk::FollowEvent;
    ///
    /// let client = velos_sdk::blocking::Client::connect_default()?;
    /// let follow = client.follow_logs("api", 10)?;
    /// for line in &follow.initial().lines {
    ///     println!("{}", String::from_utf8_lossy(&line.line));
    /// }
    /// for event in follow {
    ///     if let FollowEvent::Line(line) = event? {
    ///         println!("{}", String::from_utf8_lossy(&line.line));
    ///     }
    /// }
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn follow_logs(&self, target: impl Into<Target>, lines: u32) -> Result<LogFollow> {
        block_on(self.inner.follow_logs(target, lines)).map(|inner| LogFollow { inner })
    }

    /// Every process event from now on, on a connection of its own; see
    /// [`crate::Client::events`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let client = velos_sdk::blocking::Client::connect_default()?;
    /// for event in client.events()? {
    ///     let event = event?;
    ///     println!("{} {:?}", event.name, event.kind);
    /// }
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn events(&self) -> Result<Events> {
        block_on(self.inner.events()).map(|inner| Events { inner })
    }

    /// Starts or stops instances of an app until it has as many as asked; see
    /// [`crate::Client::scale`].
    pub fn scale(&mut self, params: ScaleParams) -> Result<Vec<ProcessInfo>> {
        request(self.inner.scale(params))
    }

    /// Sends a signal to the running processes of a target; see [`crate::Client::signal`].
    pub fn signal(&mut self, target: impl Into<Target>, signal: &str) -> Result<Vec<ProcessInfo>> {
        request(self.inner.signal(target, signal))
    }

    /// Serves Prometheus metrics on `listen`; see [`crate::Client::metrics_enable`].
    pub fn metrics_enable(&mut self, listen: Option<String>) -> Result<MetricsState> {
        request(self.inner.metrics_enable(listen))
    }

    /// Stops serving the metrics; see [`crate::Client::metrics_disable`].
    pub fn metrics_disable(&mut self) -> Result<MetricsState> {
        request(self.inner.metrics_disable())
    }

    /// The metrics setting; see [`crate::Client::metrics_status`].
    pub fn metrics_status(&mut self) -> Result<MetricsState> {
        request(self.inner.metrics_status())
    }

    /// The metrics text; see [`crate::Client::metrics`].
    pub fn metrics(&mut self) -> Result<String> {
        request(self.inner.metrics())
    }

    /// Stops every process, then shuts the daemon down; see [`crate::Client::kill`].
    pub fn kill(&mut self) -> Result<()> {
        request(self.inner.kill())
    }

    /// Calls any method, with its params, and returns its typed result; see
    /// [`crate::Client::call`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use velos_sdk::proto::{NoParams, methods};
    ///
    /// let mut client = velos_sdk::blocking::Client::connect_default()?;
    /// let ping = client.call::<methods::Ping>(NoParams {})?;
    /// println!("velosd {}", ping.version);
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn call<M: Call>(&mut self, params: M::Params) -> Result<M::Result> {
        request(self.inner.call::<M>(params))
    }
}

/// Runs a request of the blocking socket's client: its I/O is done in the first poll.
fn request<T>(future: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(future)
}

/// A blocking [`crate::LogFollow`]: the initial lines, then an iterator of new ones that
/// ends when the daemon closes the connection.
#[derive(Debug)]
pub struct LogFollow {
    inner: crate::LogFollow,
}

impl LogFollow {
    /// The lines written before following began; see [`crate::LogFollow::initial`].
    pub fn initial(&self) -> &LogLines {
        self.inner.initial()
    }

    /// Takes the initial lines out; see [`crate::LogFollow::take_initial`].
    pub fn take_initial(&mut self) -> LogLines {
        self.inner.take_initial()
    }
}

impl Iterator for LogFollow {
    type Item = Result<FollowEvent>;

    /// Blocks until the next line (or gap), or the end of the stream.
    fn next(&mut self) -> Option<Self::Item> {
        request(self.inner.next())
    }
}

/// A blocking [`crate::Events`]: an iterator of process events that ends when the daemon
/// closes the connection.
#[derive(Debug)]
pub struct Events {
    inner: crate::Events,
}

impl Iterator for Events {
    type Item = Result<ProcessEvent>;

    /// Blocks until the next event, or the end of the stream.
    fn next(&mut self) -> Option<Self::Item> {
        request(self.inner.next())
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
    fn new_methods_forward_to_the_async_client() {
        let daemon = FakeDaemon::answering();
        let mut client = Client::connect(daemon.socket()).unwrap();
        assert_eq!(client.info("api").unwrap().name, "api");
        assert_eq!(client.flush(Target::All).unwrap().len(), 1);
        assert_eq!(client.save().unwrap().processes, 1);
        assert_eq!(client.resurrect().unwrap()[0].name, "api");
    }

    #[test]
    fn follows_and_events_are_iterators() {
        use crate::fake_daemon::{Answer, log_line, notification};
        use velos_proto::{EventKind, LogLines, ProcessEvent, Request, Response};

        let daemon = FakeDaemon::start(|msgid, request| match request {
            Request::LogFollow(_) => vec![
                fake_daemon::ok(
                    msgid,
                    &Response::LogFollow(LogLines {
                        next: None,
                        lines: vec![log_line("old")],
                        warnings: vec![],
                    }),
                ),
                notification("log.line", &log_line("new")),
                Answer::Close,
            ],
            Request::Subscribe => vec![
                fake_daemon::ok(msgid, &Response::Subscribe),
                notification(
                    "process.event",
                    &ProcessEvent {
                        kind: EventKind::Stopped,
                        id: 0,
                        name: "api".into(),
                        instance: 0,
                        pid: None,
                        exit_code: None,
                        signal: None,
                        restarts: 0,
                        restart_in_ms: None,
                        restart_reason: None,
                        reason: None,
                        time_ms: 1,
                    },
                ),
                Answer::Close,
            ],
            request => vec![fake_daemon::answer_correctly(msgid, request)],
        });
        let client = Client::connect(daemon.socket()).unwrap();
        let follow = client.follow_logs("api", 3).unwrap();
        assert_eq!(follow.initial().lines, [log_line("old")]);
        let events: Vec<FollowEvent> = follow.map(Result::unwrap).collect();
        assert_eq!(events, [FollowEvent::Line(log_line("new"))]);
        let kinds: Vec<EventKind> = client
            .events()
            .unwrap()
            .map(|event| event.unwrap().kind)
            .collect();
        assert_eq!(kinds, [EventKind::Stopped]);
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
