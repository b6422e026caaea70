//! Prometheus metrics, served by the daemon itself: `velos metrics enable|disable|status`
//! and `GET /metrics`, `/healthz`, `/readyz`.
//!
//! Owns the setting, the HTTP listener and its connections, and the four `metrics.*`
//! methods, which the connection that receives one answers here ([`Service::answer`])
//! rather than the supervisor: the setting and the listener live on the connections'
//! thread (see `server.rs`), beside the clients, and never on the supervisor's.
//!
//! - The setting is the file `metrics.listen` in the home: the address, as the user gave
//!   it; no file means off. It is written (a fresh file renamed into place) before the
//!   answer to `enable`, removed before the answer to `disable`, and read at start, so it
//!   holds across daemon restarts. An address that cannot be bound at start is logged and
//!   shown by `status`; the daemon starts anyway.
//! - `enable` binds the new address first: an address in use (or not one) is refused with
//!   one line naming it, and nothing changes. A new address replaces the old one only once
//!   bound.
//! - The figures are not kept here: each scrape sends the supervisor
//!   `Command::Metrics` and renders the [`Snapshot`] it answers (`render.rs`), so the
//!   supervisor only copies a few numbers per process and never waits on a client.
//!   `velos metrics` (`metrics.scrape`) gets the same text over the socket.

mod http;
mod render;

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use async_channel::Sender;
use async_io::{Async, Timer};
use futures_lite::FutureExt;
use velos_proto::{
    DEFAULT_METRICS_LISTEN, ErrorCode, Home, MetricsState, MetricsText, ProcessStatus, Request,
    Response, RestartReason, RpcError,
};

use crate::state::ReloadCounts;
use crate::supervisor::Command;

use render::render;

/// The restart reasons, in the order of [`ProcessSample::restarts`] (the `reason` label
/// of `velos_process_restarts_total`).
pub const REASONS: [RestartReason; 5] = [
    RestartReason::Crash,
    RestartReason::Watch,
    RestartReason::Memory,
    RestartReason::Cron,
    RestartReason::Manual,
];

/// How long a scrape waits for the supervisor's figures before it answers 503.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// The figures of every process, as the supervisor saw them at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// By id.
    pub processes: Vec<ProcessSample>,
}

/// One process's figures: nothing else of it (no environment, argument or path) is in a
/// snapshot, so nothing else can reach the metrics.
#[derive(Debug, Clone)]
pub struct ProcessSample {
    /// Its id.
    pub id: u32,
    /// The app's name.
    pub name: String,
    /// Its instance number.
    pub instance: u32,
    /// Its status.
    pub status: ProcessStatus,
    /// Its pid, while a run is alive.
    pub pid: Option<u32>,
    /// Whether it has a ready mode (`--ready`): only those count for `/readyz`.
    pub ready_mode: bool,
    /// CPU seconds of the current run's tree, while alive (Linux).
    pub cpu_seconds: Option<f64>,
    /// Resident bytes of the current run's tree, while alive (Linux).
    pub memory_bytes: Option<u64>,
    /// Restarts by reason, in the order of [`REASONS`].
    pub restarts: [u32; 5],
    /// When the current run started (Unix seconds), while alive.
    pub start_time_seconds: Option<f64>,
    /// The exit code of the last run that had one.
    pub last_exit_code: Option<i32>,
    /// Bytes written to stdout and stderr.
    pub log_bytes: [u64; 2],
    /// Reloads by result.
    pub reloads: ReloadCounts,
}

/// The daemon's own figures.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    /// `CARGO_PKG_VERSION`.
    pub version: &'static str,
    /// The daemon's resident memory (Linux).
    pub resident_bytes: Option<u64>,
}

impl Daemon {
    /// This daemon, now.
    pub fn now() -> Daemon {
        Daemon {
            version: env!("CARGO_PKG_VERSION"),
            resident_bytes: crate::procstat::sample(std::process::id()).map(|s| s.rss_bytes),
        }
    }
}

/// Asks the supervisor for a snapshot (with fresh CPU and memory figures when `usage`);
/// `None` when it does not answer within [`SNAPSHOT_TIMEOUT`] or is gone.
pub async fn snapshot(supervisor: &Sender<Command>, usage: bool) -> Option<Snapshot> {
    let (reply, answer) = async_channel::bounded(1);
    supervisor
        .send(Command::Metrics { usage, reply })
        .await
        .ok()?;
    async { answer.recv().await.ok() }
        .or(async {
            Timer::after(SNAPSHOT_TIMEOUT).await;
            None
        })
        .await
}

/// The metrics setting and its listener; cheap to clone (all clones are one service).
/// Lives on the connections' thread.
#[derive(Clone)]
pub struct Service {
    inner: Rc<Inner>,
}

struct Inner {
    home: Home,
    supervisor: Sender<Command>,
    /// Runs the listener's task (and, inside it, its connections).
    executor: smol::LocalExecutor<'static>,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The setting: the address as given, while enabled.
    listen: Option<String>,
    /// Where it listens now, and the task serving it (dropped: the port is closed and
    /// its connections end).
    serving: Option<(SocketAddr, smol::Task<()>)>,
    /// Why an enabled setting is not served.
    error: Option<String>,
}

impl Service {
    /// The service of `home`, serving the address its setting names, if any (a failure is
    /// logged and kept for `status`).
    pub fn start(home: Home, supervisor: Sender<Command>) -> Service {
        let service = Service {
            inner: Rc::new(Inner {
                home,
                supervisor,
                executor: smol::LocalExecutor::new(),
                state: RefCell::default(),
            }),
        };
        let listen = match read_setting(&service.inner.home.metrics_path()) {
            Ok(listen) => listen,
            Err(error) => {
                crate::log(format_args!("metrics: {error}"));
                service.inner.state.borrow_mut().error = Some(error);
                return service;
            }
        };
        if let Some(listen) = listen {
            let bound = parse(&listen).and_then(|addr| bind(&listen, addr));
            let mut state = service.inner.state.borrow_mut();
            match bound {
                Ok(listener) => {
                    let address = local_address(&listener);
                    crate::log(format_args!("metrics: serving http://{address}/metrics"));
                    state.serving = Some((address, service.serve(listener)));
                }
                Err(error) => {
                    crate::log(format_args!("metrics: {error}"));
                    state.error = Some(error);
                }
            }
            state.listen = Some(listen);
        }
        service
    }

    /// Runs the listener and its connections; awaited for as long as the daemon serves.
    pub async fn run(self) {
        self.inner.executor.run(std::future::pending::<()>()).await;
    }

    /// Answers a `metrics.*` request; any other comes back to be answered elsewhere.
    pub async fn answer(&self, request: Request) -> Result<Result<Response, RpcError>, Request> {
        Ok(match request {
            Request::MetricsEnable(params) => {
                self.enable(params.listen).map(Response::MetricsEnable)
            }
            Request::MetricsDisable => self.disable().map(Response::MetricsDisable),
            Request::MetricsStatus => Ok(Response::MetricsStatus(self.state())),
            Request::Metrics => match snapshot(&self.inner.supervisor, true).await {
                Some(snapshot) => Ok(Response::Metrics(MetricsText {
                    text: render(&snapshot, &Daemon::now()),
                })),
                None => Err(RpcError::new(
                    ErrorCode::Internal,
                    "the daemon's supervisor did not answer in time: look at velosd.log",
                )),
            },
            other => return Err(other),
        })
    }

    fn state(&self) -> MetricsState {
        let state = self.inner.state.borrow();
        MetricsState {
            enabled: state.listen.is_some(),
            listen: state.listen.clone(),
            address: state
                .serving
                .as_ref()
                .map(|(address, _)| address.to_string()),
            error: state.error.clone(),
        }
    }

    /// `metrics.enable`: binds `listen` (the default when `None`), saves the setting,
    /// then serves it in place of what was served. Nothing changes on an error.
    fn enable(&self, listen: Option<String>) -> Result<MetricsState, RpcError> {
        let listen = listen.unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_owned());
        let addr = parse(&listen).map_err(invalid)?;
        {
            let state = self.inner.state.borrow();
            if state.listen.as_deref() == Some(listen.as_str()) && state.serving.is_some() {
                drop(state);
                return Ok(self.state());
            }
        }
        // Serving it already under another spelling (or port 0's port): bind anew.
        let same = self
            .inner
            .state
            .borrow()
            .serving
            .as_ref()
            .is_some_and(|(address, _)| *address == addr);
        // Binding what is ours already would fail: it stays.
        let listener = if same {
            None
        } else {
            Some(bind(&listen, addr).map_err(invalid)?)
        };
        write_setting(&self.inner.home.metrics_path(), &listen).map_err(|error| {
            RpcError::new(
                ErrorCode::Internal,
                format!("{error}; metrics left as they were"),
            )
        })?;
        let mut state = self.inner.state.borrow_mut();
        if let Some(listener) = listener {
            let address = local_address(&listener);
            crate::log(format_args!("metrics: serving http://{address}/metrics"));
            state.serving = Some((address, self.serve(listener)));
        }
        state.listen = Some(listen);
        state.error = None;
        drop(state);
        Ok(self.state())
    }

    /// `metrics.disable`: forgets the setting and closes the port.
    fn disable(&self) -> Result<MetricsState, RpcError> {
        let path = self.inner.home.metrics_path();
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(RpcError::new(
                    ErrorCode::Internal,
                    format!(
                        "cannot remove {}: {error}; metrics left as they were",
                        path.display()
                    ),
                ));
            }
            _ => {}
        }
        let mut state = self.inner.state.borrow_mut();
        if let Some((address, _task)) = state.serving.take() {
            crate::log(format_args!("metrics: no longer serving {address}"));
        }
        *state = State::default();
        drop(state);
        Ok(self.state())
    }

    fn serve(&self, listener: Async<TcpListener>) -> smol::Task<()> {
        self.inner
            .executor
            .spawn(http::serve(listener, self.inner.supervisor.clone()))
    }
}

fn invalid(message: String) -> RpcError {
    RpcError::new(ErrorCode::InvalidParams, message)
}

/// The address of `listen`, or a line saying what an address looks like.
fn parse(listen: &str) -> Result<SocketAddr, String> {
    listen.trim().parse().map_err(|_| {
        format!(
            "'{}' is not an address to listen on: give an IP address and a port, such as 127.0.0.1:9615 or [::1]:9615",
            velos_proto::echo(listen)
        )
    })
}

fn bind(listen: &str, addr: SocketAddr) -> Result<Async<TcpListener>, String> {
    let hint = |error: &std::io::Error| match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            ": another program (or another velos home) uses it; pick another address with --listen"
        }
        std::io::ErrorKind::PermissionDenied => ": ports below 1024 need privileges; pick another",
        std::io::ErrorKind::AddrNotAvailable => ": no interface of this machine has that address",
        _ => "",
    };
    TcpListener::bind(addr)
        .and_then(Async::new)
        .map_err(|error| {
            format!(
                "cannot listen on {}: {error}{}",
                velos_proto::echo(listen),
                hint(&error)
            )
        })
}

fn local_address(listener: &Async<TcpListener>) -> SocketAddr {
    listener
        .get_ref()
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The address in the setting file, `None` when there is none (metrics off).
fn read_setting(path: &std::path::Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let file = crate::paths::open_in_home(path, std::fs::OpenOptions::new().read(true));
    let mut file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let mut text = String::new();
    // An address is short; more is not a setting of ours.
    (&mut file)
        .take(1024)
        .read_to_string(&mut text)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let listen = text.trim();
    if listen.is_empty() {
        return Err(format!(
            "{} is empty: 'velos metrics enable' writes it again",
            path.display()
        ));
    }
    Ok(Some(listen.to_owned()))
}

/// Writes the setting: a fresh file, renamed over the old one.
fn write_setting(path: &std::path::Path, listen: &str) -> Result<(), String> {
    use std::io::Write;
    let temporary = path.with_extension("listen.tmp");
    let written = crate::paths::create_fresh_in_home(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{listen}\n").as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot save {}: {error}", path.display())
    })
}
