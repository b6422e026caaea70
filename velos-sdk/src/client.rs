//! The async [`Client`]: [`Client::call`] for any method, a named method for each, and
//! timeouts.
//!
//! Requests go one at a time (every method takes `&mut self`) over a
//! [`Connection`], which owns the socket, the msgids and keeping in step with the
//! daemon. This module picks each request's timeout. [`Client::call`] is generic over the
//! protocol's method definitions ([`velos_proto::Call`]), so its params and result types
//! come from the one definition of each method, and the named methods are one-liners
//! over it.
//!
//! Streams ([`Client::follow_logs`], [`Client::events`]) take `&self`: each opens a
//! connection of its own, because the daemon turns a streaming connection into
//! notifications only, and the client must stay usable meanwhile.
//!
//! Only `async-io`/`async-net` types and `futures-lite` are used, never a runtime's own:
//! async-io drives its reactor and timers from its own thread when nobody else does, so
//! the client runs under tokio, smol, or [`crate::blocking`] alike.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_io::Timer;
use futures_lite::FutureExt;
use velos_proto::{
    Call, DeleteParams, Home, LogLines, LogReadParams, MetricsEnableParams, MetricsState, NoParams,
    PingInfo, ProcessInfo, ReloadOutcome, ReloadParams, RestartParams, SaveParams, Saved,
    ScaleParams, SignalParams, StartParams, Target, TargetParams, methods, rpc,
};

use crate::connection::Connection;
use crate::subscription::Subscription;
use crate::{Error, Events, LogFollow, Result};

/// A connection to the velos daemon.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> velos_sdk::Result<()> {
/// let mut client = velos_sdk::Client::connect_default().await?;
/// let info = client.ping().await?;
/// println!("velosd {} (pid {})", info.version, info.pid);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Client {
    connection: Connection,
    timeout: Option<Duration>,
    stop_timeout: Option<Duration>,
}

impl Client {
    /// The timeout of connecting and of quick requests until [`Client::set_timeout`]
    /// changes it.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the daemon's socket at `path`.
    ///
    /// Fails with [`Error::NotRunning`] when there is no socket file, [`Error::Refused`]
    /// when nothing accepts on it (a stale socket), [`Error::ForeignDaemon`] when the
    /// process listening on it runs as another uid (nothing is sent to it, then or
    /// later: every reconnection checks again), [`Error::SocketPathTooLong`], and
    /// [`Error::Timeout`] when connecting takes longer than [`Client::DEFAULT_TIMEOUT`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> velos_sdk::Result<()> {
    /// let mut client = velos_sdk::Client::connect("/home/me/.velos/velos.sock").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> Result<Client> {
        let socket = path.as_ref().to_path_buf();
        let connection = within(Some(Client::DEFAULT_TIMEOUT), Connection::open(socket)).await?;
        Ok(Client {
            connection,
            timeout: Some(Client::DEFAULT_TIMEOUT),
            stop_timeout: None,
        })
    }

    /// [`Client::connect`] with a blocking socket, for a program that sends one request at
    /// a time and waits for each (a command line): every request's future does all its
    /// I/O in its first poll, blocking the thread until the answer (or the timeout), so
    /// any `block_on` runs it (`futures_lite::future::block_on`), and async-io's reactor,
    /// with the thread it starts, is never needed. [`Client::follow_logs`] and
    /// [`Client::events`] still open async connections of their own. Do not use it from a
    /// task that shares its thread with others: it would hold them up.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use futures_lite::future::block_on;
    ///
    /// let mut client = velos_sdk::Client::connect_blocking("/home/me/.velos/velos.sock")?;
    /// let info = block_on(client.ping())?;
    /// # Ok::<(), velos_sdk::Error>(())
    /// ```
    pub fn connect_blocking(path: impl AsRef<Path>) -> Result<Client> {
        let socket = path.as_ref().to_path_buf();
        let timeout = Some(Client::DEFAULT_TIMEOUT);
        let connection = Connection::open_blocking(socket, timeout)
            .map_err(|error| timed_out(error, Client::DEFAULT_TIMEOUT))?;
        Ok(Client {
            connection,
            timeout,
            stop_timeout: None,
        })
    }

    /// Connects to the daemon of the default home: `$VELOS_HOME/velos.sock`, or
    /// `~/.velos/velos.sock` when `VELOS_HOME` is not set.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> velos_sdk::Result<()> {
    /// let mut client = velos_sdk::Client::connect_default().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_default() -> Result<Client> {
        let home = Home::from_env()?;
        Client::connect(home.socket_path()).await
    }

    /// Sets the timeout of quick requests (ping, start, list, logs), from sending to the
    /// answer, connecting again included when needed. `None` waits forever. The default
    /// is [`Client::DEFAULT_TIMEOUT`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Sets the timeout of stop, restart, delete and kill. The daemon bounds these by
    /// each process's kill timeout, so the default is `None`: wait as long as it takes.
    pub fn set_stop_timeout(&mut self, timeout: Option<Duration>) {
        self.stop_timeout = timeout;
    }

    /// The socket this client talks to.
    pub fn socket_path(&self) -> &Path {
        self.connection.socket()
    }

    /// Asks whether the daemon is alive, and which version it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// let info = client.ping().await?;
    /// println!("velosd {} speaks protocol {}", info.version, info.protocol);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ping(&mut self) -> Result<PingInfo> {
        self.call::<methods::Ping>(NoParams {}).await
    }

    /// Starts a new process and returns it as the daemon sees it. With
    /// `params.instances`, starts that many instances of it and returns instance 0
    /// ([`Client::list`] shows them all, [`Client::info`] with `"name:K"` one).
    ///
    /// [`StartParams::new`] makes the request `velos start` would: the script resolved
    /// against this process's working directory and checked, and this process's
    /// environment and working directory. The daemon itself reads `params.script` as
    /// given (an absolute path), and a request without `env` or `cwd` gets the daemon's.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use velos_sdk::StartParams;
    ///
    /// let mut params = StartParams::new("server.js")?;
    /// params.name = Some("api".into());
    /// let process = client.start(params).await?;
    /// println!("started '{}' as id {}", process.name, process.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(&mut self, params: StartParams) -> Result<ProcessInfo> {
        self.call::<methods::Start>(params).await
    }

    /// Stops a process (or all, with [`Target::All`]) gracefully: SIGTERM, then SIGKILL
    /// after its kill timeout. The entry stays. Returns the processes it stopped.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// client.stop("api").await?;
    /// client.stop(velos_sdk::Target::All).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        let target = target.into();
        self.call::<methods::Stop>(TargetParams { target }).await
    }

    /// Stops a process (or all) if it runs, then starts it again with the same settings.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// let restarted = client.restart(0).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn restart(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        self.restart_with(RestartParams {
            target: target.into(),
            env: None,
            settings: None,
        })
        .await
    }

    /// Restarts with the given params, such as a new environment (what
    /// `velos restart --update-env` sends).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::{RestartParams, Target};
    ///
    /// let env = std::env::vars().collect();
    /// let params = RestartParams {
    ///     target: Target::parse("api"),
    ///     env: Some(env),
    ///     settings: None,
    /// };
    /// client.restart_with(params).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn restart_with(&mut self, params: RestartParams) -> Result<Vec<ProcessInfo>> {
        self.call::<methods::Restart>(params).await
    }

    /// Reloads a process (or all) with no downtime: each gets a replacement run, one at a
    /// time (`params.parallel` at a time), and its old run stops only once the replacement
    /// is ready. A replacement that exits or is not ready in time is stopped, the old run
    /// keeps running, and the reload stops there. Returns the outcome per process, in
    /// order; a reload of the same app under way is an [`Error::Daemon`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::{ReloadParams, ReloadResult, Target};
    ///
    /// let params =
    ///     ReloadParams { target: Target::parse("web"), parallel: None, env: None, settings: None };
    /// for outcome in client.reload(params).await? {
    ///     if outcome.result == ReloadResult::Failed {
    ///         eprintln!("{}: {}", outcome.name, outcome.reason.unwrap_or_default());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reload(&mut self, params: ReloadParams) -> Result<Vec<ReloadOutcome>> {
        self.call::<methods::Reload>(params).await
    }

    /// Stops a process (or all) if it runs, then removes its entry. Returns the
    /// processes as they were last seen.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// client.delete("api").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        self.delete_with(DeleteParams {
            target: target.into(),
            logs: false,
        })
        .await
    }

    /// Deletes with the given params: `logs` removes the log files too (what
    /// `velos delete --logs` sends).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::{DeleteParams, Target};
    ///
    /// client
    ///     .delete_with(DeleteParams { target: Target::parse("api"), logs: true })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_with(&mut self, params: DeleteParams) -> Result<Vec<ProcessInfo>> {
        self.call::<methods::Delete>(params).await
    }

    /// Every process the daemon manages.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// for process in client.list().await? {
    ///     println!("{} {} {}", process.id, process.name, process.status);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list(&mut self) -> Result<Vec<ProcessInfo>> {
        self.call::<methods::List>(NoParams {}).await
    }

    /// The last `lines` lines each process the target names (every process, with
    /// [`Target::All`]) wrote on stdout and stderr, process by process, oldest first,
    /// with the daemon's warnings about its log files. Every line is whole: when they do
    /// not fit in one answer, this reads every page (see [`Client::logs_page`] to take
    /// them a page at a time instead).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// for line in client.logs("api", 50).await?.lines {
    ///     println!("{}", String::from_utf8_lossy(&line.line));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn logs(&mut self, target: impl Into<Target>, lines: u32) -> Result<LogLines> {
        let mut params = LogReadParams {
            target: target.into(),
            lines,
            cursor: None,
        };
        let mut all = LogLines::default();
        loop {
            let page = self.logs_page(&params).await?;
            all.warnings.extend(page.warnings);
            for line in page.lines {
                match all.lines.last_mut() {
                    // The rest of a line sent in pieces: joined back.
                    Some(last) if line.continued && last.partial => {
                        last.line.extend_from_slice(&line.line);
                        last.partial = line.partial;
                        last.time_ms = line.time_ms.or(last.time_ms);
                    }
                    _ => all.lines.push(line),
                }
            }
            match page.next {
                Some(next) => params.cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of `log.read`: at most about 2 MiB of lines, and in `next` where the
    /// following page starts (pass it as `params.cursor`), absent on the last page. A line
    /// longer than what is left of a page comes in pieces: `partial` ones, then
    /// `continued` ones. See `docs/protocol.md`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::{LogReadParams, Target};
    ///
    /// let mut params = LogReadParams { target: Target::All, lines: 1_000_000, cursor: None };
    /// loop {
    ///     let page = client.logs_page(&params).await?;
    ///     println!("{} lines", page.lines.len());
    ///     match page.next {
    ///         Some(next) => params.cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn logs_page(&mut self, params: &LogReadParams) -> Result<LogLines> {
        self.call::<methods::LogRead>(params.clone()).await
    }

    /// One process in detail: settings, state, CPU and memory. Takes one process, not
    /// [`Target::All`] (the daemon answers that with an invalid-params error).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// let api = client.info("api").await?;
    /// println!("{} uses {:?} bytes", api.name, api.memory_bytes);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn info(&mut self, target: impl Into<Target>) -> Result<ProcessInfo> {
        let target = target.into();
        self.call::<methods::Info>(TargetParams { target }).await
    }

    /// Empties the log files of a process (or all), rotated files included. Returns the
    /// processes whose logs were emptied.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// client.flush(velos_sdk::Target::All).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&mut self, target: impl Into<Target>) -> Result<Vec<ProcessInfo>> {
        let target = target.into();
        self.call::<methods::LogFlush>(TargetParams { target })
            .await
    }

    /// Writes the process list to the daemon's dump file, for [`Client::resurrect`]
    /// (what `velos save` does). An empty list is not written over a dump that holds
    /// processes: the daemon answers with an invalid-params error (see
    /// [`Client::save_with`] to force it).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// let saved = client.save().await?;
    /// println!("saved {} processes to {}", saved.processes, saved.path);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn save(&mut self) -> Result<Saved> {
        self.save_with(SaveParams::default()).await
    }

    /// Saves with the given params: `force` writes an empty list even over a dump that
    /// holds processes (what `velos save --force` sends).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::SaveParams;
    ///
    /// client.save_with(SaveParams { force: true }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn save_with(&mut self, params: SaveParams) -> Result<Saved> {
        self.call::<methods::Save>(params).await
    }

    /// Starts the processes that were running when [`Client::save`] last wrote the dump
    /// file, skipping names already in use. Returns the processes brought back. With
    /// nothing saved, the daemon answers with a not-found error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// for process in client.resurrect().await? {
    ///     println!("back: {}", process.name);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resurrect(&mut self) -> Result<Vec<ProcessInfo>> {
        self.call::<methods::Resurrect>(NoParams {}).await
    }

    /// Starts or stops instances of the app `params.name` until it has as many as
    /// `params` says: a count (`to`) or a change (`by`; [`ScaleParams::parse`] reads
    /// `4`, `+2` or `-1`). New instances take the lowest free numbers; the
    /// highest-numbered ones go first, stopped gracefully and removed. Returns the app's
    /// instances, by instance number, once the new ones are spawned or the removed ones
    /// have ended (waiting up to the stop timeout).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::ScaleParams;
    ///
    /// let web = client.scale(ScaleParams { name: "web".into(), to: Some(4), by: None }).await?;
    /// for process in web {
    ///     println!("web:{} is id {}", process.instance, process.id);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn scale(&mut self, params: ScaleParams) -> Result<Vec<ProcessInfo>> {
        self.call::<methods::Scale>(params).await
    }

    /// Sends `signal` (`"SIGUSR2"`, `"USR2"` or its number as text) to the process group
    /// of each running process `target` names (PM2's `sendSignal`). Returns every process
    /// the target names; those not `running` or `starting` got nothing. A target none of
    /// whose processes runs, or a signal that names none, is an error and nothing is sent.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// client.signal("nginx", "SIGHUP").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn signal(
        &mut self,
        target: impl Into<Target>,
        signal: &str,
    ) -> Result<Vec<ProcessInfo>> {
        let (target, signal) = (target.into(), signal.to_owned());
        self.call::<methods::Signal>(SignalParams { target, signal })
            .await
    }

    /// Serves Prometheus metrics over HTTP on `listen` (`127.0.0.1:9615` when `None`;
    /// port 0 takes a free port, which the answer's `address` names). The daemon keeps
    /// the setting across restarts. An address in use is refused and nothing changes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// let state = client.metrics_enable(Some("127.0.0.1:0".into())).await?;
    /// println!("scrape http://{}/metrics", state.address.unwrap_or_default());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn metrics_enable(&mut self, listen: Option<String>) -> Result<MetricsState> {
        self.call::<methods::MetricsEnable>(MetricsEnableParams { listen })
            .await
    }

    /// Stops serving the metrics and forgets the setting.
    pub async fn metrics_disable(&mut self) -> Result<MetricsState> {
        self.call::<methods::MetricsDisable>(NoParams {}).await
    }

    /// The metrics setting and the address they are served on.
    pub async fn metrics_status(&mut self) -> Result<MetricsState> {
        self.call::<methods::MetricsStatus>(NoParams {}).await
    }

    /// The metrics `GET /metrics` serves (Prometheus text format 0.0.4), over the socket:
    /// whether or not they are enabled.
    pub async fn metrics(&mut self) -> Result<String> {
        Ok(self.call::<methods::Metrics>(NoParams {}).await?.text)
    }

    /// Follows the log of a process (or all, with [`Target::All`], including processes
    /// started later): the last `lines` lines, then every new line as it is written.
    ///
    /// Opens a connection of its own, so this client stays usable. Opening is bounded by
    /// the quick timeout; the stream itself waits as long as it takes, and ends when the
    /// daemon closes the connection (it shuts down). See [`LogFollow`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use futures_lite::StreamExt;
    ///
    /// let mut follow = client.follow_logs("api", 0).await?;
    /// while let Some(event) = follow.next().await {
    ///     println!("{:?}", event?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn follow_logs(&self, target: impl Into<Target>, lines: u32) -> Result<LogFollow> {
        let params = LogReadParams {
            target: target.into(),
            lines,
            cursor: None,
        };
        let (initial, subscription) =
            Subscription::open::<methods::LogFollow>(self.socket_path(), &params, self.timeout)
                .await?;
        Ok(LogFollow::new(initial, subscription))
    }

    /// Every process event from now on: started, exited, restarting, errored, stopped,
    /// deleted, for every process.
    ///
    /// Opens a connection of its own, so this client stays usable. Opening is bounded by
    /// the quick timeout; the stream itself waits as long as it takes, and ends when the
    /// daemon closes the connection (it shuts down). See [`Events`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use futures_lite::StreamExt;
    ///
    /// let mut events = client.events().await?;
    /// while let Some(event) = events.next().await {
    ///     let event = event?;
    ///     println!("{} {:?}", event.name, event.kind);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn events(&self) -> Result<Events> {
        let ((), subscription) = Subscription::open::<methods::Subscribe>(
            self.socket_path(),
            &NoParams {},
            self.timeout,
        )
        .await?;
        Ok(Events::new(subscription))
    }

    /// Stops every process gracefully, then shuts the daemon down.
    ///
    /// Returns once the daemon answered, or closed the connection after the request was
    /// sent (it may go before its answer does).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// client.kill().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn kill(&mut self) -> Result<()> {
        self.call::<methods::Kill>(NoParams {}).await
    }

    /// Calls any method, with its params, and returns its typed result: the one way every
    /// named method above sends its request. The params and result types come from the
    /// method's definition in [`velos_proto::methods`], so a mismatch does not compile; a
    /// daemon that answers with something else is an [`Error::Protocol`].
    ///
    /// Methods that wait for processes to stop (stop, restart, delete, kill: see
    /// [`velos_proto::Method::waits_for_stops`]) wait up to the stop timeout, everything
    /// else up to the quick timeout. A daemon error response is [`Error::Daemon`]. After a
    /// failure that may have left the connection out of step (a timeout, an unreadable
    /// reply), the next request connects again. A kill whose connection the daemon closes
    /// before answering counts as answered. `log.follow` and `events.subscribe` turn a
    /// connection into a stream: use [`Client::follow_logs`] and [`Client::events`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::proto::{NoParams, methods};
    ///
    /// let list = client.call::<methods::List>(NoParams {}).await?;
    /// println!("{} processes", list.len());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Params of another method do not compile:
    ///
    /// ```compile_fail
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::proto::{TargetParams, methods};
    ///
    /// let list = client.call::<methods::List>(TargetParams { target: "api".into() }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<M: Call>(&mut self, params: M::Params) -> Result<M::Result> {
        let timeout = if M::METHOD.waits_for_stops() {
            self.stop_timeout
        } else {
            self.timeout
        };
        if self.connection.is_blocking() {
            self.connection.set_deadline(timeout);
            let result = self.connection.exchange::<M>(&params).await;
            return match timeout {
                Some(after) => result.map_err(|error| timed_out(error, after)),
                None => result,
            };
        }
        within(timeout, self.connection.exchange::<M>(&params)).await
    }

    /// [`Client::call`] with a [`Client::ping`] written before it in the same write: one
    /// round trip for both, and the ping's answer proves that a live daemon read the
    /// request. `Err` means the ping got no answer (the daemon was gone or dying and closed
    /// the connection, say): the daemon never read the request, which may be sent again,
    /// to a daemon started in its place. Otherwise the ping's answer and the request's
    /// result; the request's timeout covers both. `params` is borrowed, for the caller
    /// that sends it again.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use velos_sdk::proto::{StartParams, methods};
    ///
    /// let params = StartParams::new("app.js")?;
    /// let (ping, started) = client.call_after_ping::<methods::Start>(&params).await?;
    /// println!("velosd {}: started pid {:?}", ping.version, started?.pid);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_after_ping<M: Call>(
        &mut self,
        params: &M::Params,
    ) -> Result<(PingInfo, Result<M::Result>)> {
        let timeout = if M::METHOD.waits_for_stops() {
            self.stop_timeout
        } else {
            self.timeout
        };
        let pinged = std::cell::RefCell::new(None);
        let result = if self.connection.is_blocking() {
            self.connection.set_deadline(timeout);
            let result = self
                .connection
                .exchange_after_ping::<M>(params, &pinged)
                .await;
            match timeout {
                Some(after) => result.map_err(|error| timed_out(error, after)),
                None => result,
            }
        } else {
            let work = self.connection.exchange_after_ping::<M>(params, &pinged);
            within(timeout, work).await
        };
        match (pinged.into_inner(), result) {
            (Some(ping), result) => Ok((ping, result)),
            (None, Err(error)) => Err(error),
            (None, Ok(_)) => Err(Error::Protocol(velos_proto::Error::Malformed(
                "an answer without the ping's".to_owned(),
            ))),
        }
    }

    /// [`Client::call`], returning the result as the daemon encoded it: its MessagePack
    /// bytes, undecoded and unchecked, for a caller that reads them its own way (`velos
    /// list --json` turns a list into JSON without building its `ProcessInfo`s). A daemon
    /// error is [`Error::Daemon`] as ever.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(client: &mut velos_sdk::Client) -> velos_sdk::Result<()> {
    /// use velos_sdk::proto::{NoParams, methods};
    ///
    /// let bytes = client.call_raw::<methods::List>(NoParams {}).await?;
    /// let list: Vec<velos_sdk::ProcessInfo> = velos_sdk::proto::rpc::decode_value(&bytes)
    ///     .map_err(velos_sdk::Error::Protocol)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_raw<M: Call>(&mut self, params: M::Params) -> Result<Vec<u8>> {
        let timeout = if M::METHOD.waits_for_stops() {
            self.stop_timeout
        } else {
            self.timeout
        };
        // The result is what follows the envelope in the frame's own buffer, taken out of
        // the reader without a copy.
        let decode = |frames: &mut velos_proto::frame::FrameReader| {
            let payload = frames.payload();
            let decoded = rpc::decode_response_raw(payload)?.map(|(msgid, result)| {
                let start = result.map(|bytes| bytes.as_ptr() as usize - payload.as_ptr() as usize);
                (msgid, start)
            });
            Some(
                decoded.map(|(msgid, start)| {
                    (msgid, start.map(|start| frames.take_payload_from(start)))
                }),
            )
        };
        let nil = || Ok(vec![0xc0]);
        if self.connection.is_blocking() {
            self.connection.set_deadline(timeout);
            let result = self
                .connection
                .exchange_as::<M, _>(&params, decode, nil)
                .await;
            return match timeout {
                Some(after) => result.map_err(|error| timed_out(error, after)),
                None => result,
            };
        }
        within(
            timeout,
            self.connection.exchange_as::<M, _>(&params, decode, nil),
        )
        .await
    }
}

/// A blocking socket's timeout (an I/O error of kind `TimedOut`) as [`Error::Timeout`].
fn timed_out(error: Error, after: Duration) -> Error {
    match error {
        Error::Io(error) if error.kind() == std::io::ErrorKind::TimedOut => {
            Error::Timeout { after }
        }
        other => other,
    }
}

/// Runs `work`, giving up with [`Error::Timeout`] after `timeout` (never when `None`).
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match timeout {
        None => work.await,
        Some(after) => {
            work.or(async move {
                Timer::after(after).await;
                Err(Error::Timeout { after })
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use futures_lite::future::block_on;
    use velos_proto::{LogReadParams, Request, RestartParams, StartParams};

    use super::*;
    use crate::fake_daemon::{self, Answer, FakeDaemon};

    /// An upper bound on anything that should be quick, generous for a loaded machine.
    const QUICK: Duration = Duration::from_secs(3);

    fn connect(daemon: &FakeDaemon) -> Client {
        block_on(Client::connect(daemon.socket())).expect("connect to the fake daemon")
    }

    /// A client with an async socket (`blocking` false) or a blocking one.
    fn connect_as(daemon: &FakeDaemon, blocking: bool) -> Client {
        if blocking {
            Client::connect_blocking(daemon.socket()).expect("connect to the fake daemon")
        } else {
            connect(daemon)
        }
    }

    /// Either kind of client's connect.
    fn connect_path(socket: &Path, blocking: bool) -> Result<Client> {
        if blocking {
            Client::connect_blocking(socket)
        } else {
            block_on(Client::connect(socket))
        }
    }

    #[track_caller]
    fn assert_quick(started: Instant) {
        let elapsed = started.elapsed();
        assert!(
            elapsed < QUICK,
            "took {elapsed:?}, expected under {QUICK:?}"
        );
    }

    #[test]
    fn a_missing_socket_is_not_running_at_once() {
        let dir = fake_daemon::short_temp_dir();
        let socket = dir.path().join("velos.sock");
        for blocking in [false, true] {
            let started = Instant::now();
            let result = connect_path(&socket, blocking);
            assert_quick(started);
            match result {
                Err(Error::NotRunning { socket: got }) => assert_eq!(got, socket),
                other => panic!("expected NotRunning, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_socket_nobody_listens_on_is_refused() {
        let dir = fake_daemon::short_temp_dir();
        let socket = dir.path().join("velos.sock");
        // Binding then dropping the listener leaves the file, as a crashed daemon does.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        for blocking in [false, true] {
            let started = Instant::now();
            let result = connect_path(&socket, blocking);
            assert_quick(started);
            match result {
                Err(Error::Refused { socket: got }) => assert_eq!(got, socket),
                other => panic!("expected Refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_daemon_that_never_answers_times_out_within_the_timeout() {
        for blocking in [false, true] {
            let daemon = FakeDaemon::start(|_, _| vec![]);
            let mut client = connect_as(&daemon, blocking);
            let timeout = Duration::from_millis(200);
            client.set_timeout(Some(timeout));
            let started = Instant::now();
            let result = block_on(client.ping());
            let elapsed = started.elapsed();
            assert!(
                matches!(result, Err(Error::Timeout { after }) if after == timeout),
                "{result:?}"
            );
            assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
            assert!(elapsed < timeout + QUICK, "took {elapsed:?}");
        }
    }

    #[test]
    fn a_blocking_client_waits_for_a_slow_answer_within_its_timeout() {
        let daemon = FakeDaemon::start(|msgid, request| {
            std::thread::sleep(Duration::from_millis(100));
            vec![fake_daemon::answer_correctly(msgid, request)]
        });
        let mut client = connect_as(&daemon, true);
        client.set_timeout(Some(QUICK));
        assert_eq!(block_on(client.ping()).unwrap(), fake_daemon::ping_info());
        client.set_timeout(None);
        assert_eq!(block_on(client.ping()).unwrap(), fake_daemon::ping_info());
    }

    #[test]
    fn stop_requests_wait_for_the_stop_timeout_not_the_quick_one() {
        for blocking in [false, true] {
            let daemon = FakeDaemon::start(|_, _| vec![]);
            let mut client = connect_as(&daemon, blocking);
            client.set_timeout(Some(Duration::from_millis(20)));
            client.set_stop_timeout(Some(Duration::from_millis(150)));
            let result = block_on(client.stop("api"));
            assert!(
                matches!(result, Err(Error::Timeout { after }) if after == Duration::from_millis(150)),
                "{result:?}"
            );
        }
    }

    #[test]
    fn kill_is_done_when_the_daemon_answers_then_closes() {
        let daemon = FakeDaemon::start(|msgid, request| {
            vec![fake_daemon::answer_correctly(msgid, request), Answer::Close]
        });
        let mut client = connect(&daemon);
        block_on(client.kill()).unwrap();
        assert_eq!(daemon.next_request().1, Request::Kill);
    }

    #[test]
    fn the_client_connects_again_after_a_timeout() {
        for blocking in [false, true] {
            let requests = AtomicUsize::new(0);
            let daemon = FakeDaemon::start(move |msgid, request| {
                if requests.fetch_add(1, Ordering::Relaxed) == 0 {
                    vec![]
                } else {
                    vec![fake_daemon::answer_correctly(msgid, request)]
                }
            });
            let mut client = connect_as(&daemon, blocking);
            client.set_timeout(Some(Duration::from_millis(100)));
            assert!(matches!(
                block_on(client.ping()),
                Err(Error::Timeout { .. })
            ));
            // The late answer to the first request cannot be mistaken for the second's.
            client.set_timeout(Some(QUICK));
            assert_eq!(block_on(client.ping()).unwrap(), fake_daemon::ping_info());
        }
    }

    #[test]
    fn each_method_sends_its_request_and_types_the_result() {
        for blocking in [false, true] {
            let daemon = FakeDaemon::answering();
            let mut client = connect_as(&daemon, blocking);
            block_on(async {
                let params = StartParams {
                    script: "/srv/app.js".into(),
                    name: Some("web".into()),
                    ..StartParams::default()
                };
                assert_eq!(client.start(params.clone()).await.unwrap().name, "web");
                assert_eq!(daemon.next_request().1, Request::Start(params));

                assert_eq!(client.stop(3).await.unwrap()[0].name, "api");
                assert_eq!(
                    daemon.next_request().1,
                    Request::Stop(TargetParams {
                        target: Target::Id(3)
                    })
                );

                client.restart("api").await.unwrap();
                assert_eq!(
                    daemon.next_request().1,
                    Request::Restart(RestartParams {
                        target: Target::Name("api".into()),
                        env: None,
                        settings: None,
                    })
                );

                let env = [("PORT".to_owned(), "8080".to_owned())].into();
                let params = RestartParams {
                    target: Target::All,
                    env: Some(env),
                    settings: None,
                };
                client.restart_with(params.clone()).await.unwrap();
                assert_eq!(daemon.next_request().1, Request::Restart(params));

                client.delete(Target::All).await.unwrap();
                assert_eq!(
                    daemon.next_request().1,
                    Request::Delete(DeleteParams {
                        target: Target::All,
                        logs: false
                    })
                );

                assert_eq!(
                    client.list().await.unwrap(),
                    vec![fake_daemon::process("api")]
                );
                assert_eq!(daemon.next_request().1, Request::List);

                let logs = client.logs("api", 50).await.unwrap();
                assert_eq!(logs.lines[0].line, b"listening on 3000");
                assert_eq!(
                    daemon.next_request().1,
                    Request::LogRead(LogReadParams {
                        cursor: None,
                        target: Target::Name("api".into()),
                        lines: 50
                    })
                );

                assert_eq!(client.info(0).await.unwrap().name, "api");
                assert_eq!(
                    daemon.next_request().1,
                    Request::Info(TargetParams {
                        target: Target::Id(0)
                    })
                );

                client.flush(Target::All).await.unwrap();
                assert_eq!(
                    daemon.next_request().1,
                    Request::LogFlush(TargetParams {
                        target: Target::All
                    })
                );

                assert_eq!(client.save().await.unwrap().path, "/h/dump.msgpack");
                assert_eq!(
                    daemon.next_request().1,
                    Request::Save(SaveParams { force: false })
                );

                assert_eq!(client.resurrect().await.unwrap().len(), 1);
                assert_eq!(daemon.next_request().1, Request::Resurrect);

                let scale = ScaleParams::parse("web", "-1").unwrap();
                assert_eq!(client.scale(scale.clone()).await.unwrap()[0].name, "web");
                assert_eq!(daemon.next_request().1, Request::Scale(scale));

                let state = client.metrics_enable(None).await.unwrap();
                assert!(state.enabled);
                assert_eq!(
                    daemon.next_request().1,
                    Request::MetricsEnable(MetricsEnableParams { listen: None })
                );
                assert!(!client.metrics_disable().await.unwrap().enabled);
                assert_eq!(daemon.next_request().1, Request::MetricsDisable);
                client.metrics_status().await.unwrap();
                assert_eq!(daemon.next_request().1, Request::MetricsStatus);
                assert!(client.metrics().await.unwrap().starts_with("# HELP"));
                assert_eq!(daemon.next_request().1, Request::Metrics);

                assert_eq!(client.signal("web:1", "USR2").await.unwrap().len(), 1);
                assert_eq!(
                    daemon.next_request().1,
                    Request::Signal(SignalParams {
                        target: Target::parse("web:1"),
                        signal: "USR2".into()
                    })
                );

                assert_eq!(
                    client.call::<methods::Ping>(NoParams {}).await.unwrap(),
                    fake_daemon::ping_info()
                );
                assert_eq!(daemon.next_request().1, Request::Ping);
            });
        }
    }

    #[test]
    fn a_raw_result_is_the_results_messagepack_and_errors_stay_typed() {
        for blocking in [false, true] {
            let daemon = FakeDaemon::start(|msgid, request| match request {
                Request::Info(_) => vec![fake_daemon::error(
                    msgid,
                    velos_proto::ErrorCode::NotFound,
                    "no process named 'x' (see 'velos list')",
                )],
                request => vec![fake_daemon::answer_correctly(msgid, request)],
            });
            let mut client = connect_as(&daemon, blocking);
            let bytes = block_on(client.call_raw::<methods::List>(NoParams {})).unwrap();
            let list: Vec<ProcessInfo> = rpc::decode_value(&bytes).unwrap();
            assert_eq!(list, vec![fake_daemon::process("api")]);
            let error = block_on(client.call_raw::<methods::Info>(TargetParams {
                target: Target::Name("x".into()),
            }));
            assert!(
                matches!(&error, Err(Error::Daemon { message, .. }) if message.contains("'x'")),
                "{error:?}"
            );
            // The connection is still in step.
            let bytes = block_on(client.call_raw::<methods::Ping>(NoParams {})).unwrap();
            let ping: PingInfo = rpc::decode_value(&bytes).unwrap();
            assert_eq!(ping, fake_daemon::ping_info());
        }
    }

    #[tokio::test]
    async fn ping_works_from_a_tokio_current_thread_runtime() {
        let daemon = FakeDaemon::answering();
        let mut client = Client::connect(daemon.socket()).await.unwrap();
        client.set_timeout(Some(QUICK));
        assert_eq!(client.ping().await.unwrap(), fake_daemon::ping_info());
    }

    #[tokio::test]
    async fn timeouts_fire_under_tokio() {
        let daemon = FakeDaemon::start(|_, _| vec![]);
        let mut client = Client::connect(daemon.socket()).await.unwrap();
        client.set_timeout(Some(Duration::from_millis(100)));
        let result = client.ping().await;
        assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    }

    #[test]
    fn the_client_and_its_requests_can_move_between_threads() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_sync<T: Sync>() {}
        assert_sync::<Client>();
        let daemon = FakeDaemon::answering();
        let mut client = connect(&daemon);
        assert_send(&client);
        assert_send(&client.ping());
        assert_send(&client.stop("api"));
        assert_send(&client.logs(Target::All, 1));
        assert_send(&client.kill());
        assert_send(&client.follow_logs("api", 1));
        assert_send(&client.events());
    }
}
