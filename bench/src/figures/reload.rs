//! `reload` under load: the Node example (`examples/node-app/app.js`) as 4 instances, a
//! client at full speed on loopback from before `reload` until after it, and what the
//! client saw.
//!
//! - velos: `velos start app.js --name app -i 4 --listen 127.0.0.1:0 --ready message`
//!   (velos holds the socket; the port is `listen` in `velos list --json`).
//! - PM2: `pm2 start app.js --name app -i 4 --wait-ready --listen-timeout 10000` with `PORT`
//!   set to a free loopback port (cluster mode: the master holds the port; the app says
//!   `process.send('ready')`, PM2's `wait_ready`).
//!
//! The client is 8 threads, each sending `GET /` over a new connection per request
//! (`Connection: close`), one after another, for [`LEAD`] before the reload, during it, and
//! [`TRAIL`] after it returned. A request fails when the connection is refused or reset,
//! the answer is not `200`, or nothing comes within [`REQUEST_TIMEOUT`]. The reload's
//! duration is the CLI's wall time, spawn to exit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use super::{Bench, Figure, Group, Readings};
use crate::harness;
use crate::manager::{self, Manager};
use crate::report::{Table, Unit};
use crate::stats::Stats;

/// Instances of the app.
const INSTANCES: usize = 4;
/// Client connections (threads).
const CONNECTIONS: usize = 8;
/// How long the client runs before the reload starts.
const LEAD: Duration = Duration::from_millis(500);
/// How long the client runs after the reload returned.
const TRAIL: Duration = Duration::from_millis(500);
/// The bound on one request, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// This group's tables.
pub fn tables(bench: &Bench) -> Vec<Table> {
    if !bench.wants(Group::Reload) {
        return Vec::new();
    }
    let (velos, pm2) = bench.against_each("reload", |m, r| measure(bench, m, r));
    let figures = vec![
        Figure::new(
            "reload_time",
            Group::Reload,
            format!("reload {INSTANCES} instances under load (whole CLI)"),
            Unit::Seconds,
        ),
        Figure::new(
            "reload_failed",
            Group::Reload,
            "failed requests during the reload",
            Unit::Count,
        ),
        Figure::new(
            "reload_requests",
            Group::Reload,
            "requests answered in the client's window",
            Unit::Count,
        ),
    ];
    super::table(bench, "Reload", figures, &velos, pm2.as_ref())
        .into_iter()
        .collect()
}

fn measure(bench: &Bench, manager: &dyn Manager, readings: &mut Readings) -> Result<()> {
    let app = harness::workspace_root()
        .join("examples")
        .join("node-app")
        .join("app.js");
    let app = app.to_string_lossy().into_owned();
    manager.daemon_pid()?;
    let (addr, start) = if manager.is_peer() {
        let port = free_port()?;
        let args = [
            "start",
            &app,
            "--name",
            "app",
            "-i",
            "4",
            "--wait-ready",
            "--listen-timeout",
            "10000",
        ];
        let mut command = manager.cli(&args);
        command.env("PORT", port.to_string());
        harness::run(&mut command, manager.patience())?;
        (
            SocketAddr::from(([127, 0, 0, 1], port)),
            format!("`PORT={port} pm2 start app.js -i 4 --wait-ready --listen-timeout 10000`"),
        )
    } else {
        manager.run(&[
            "start",
            &app,
            "--name",
            "app",
            "-i",
            "4",
            "--listen",
            "127.0.0.1:0",
            "--ready",
            "message",
        ])?;
        (
            velos_listen(manager)?,
            "`velos start app.js -i 4 --listen 127.0.0.1:0 --ready message`".to_owned(),
        )
    };
    manager::wait_online(manager, INSTANCES)?;
    // The app answers before the client is timed.
    harness::wait_until(
        manager.patience(),
        Duration::from_millis(20),
        &format!("the app to answer on {addr}"),
        || Ok(get(addr).ok()),
    )?;
    let cli = manager.label().to_lowercase();
    let runs = bench.runs(manager, 3, 3);
    let (mut times, mut failed, mut answered) = (Vec::new(), Vec::new(), Vec::new());
    let mut kinds = Kinds::default();
    for run in 0..runs {
        let (time, seen) = reload_under_load(manager, addr)?;
        eprintln!(
            "  run {}: reload {:.2}s, {} answered, {} failed",
            run + 1,
            time.as_secs_f64(),
            seen.answered,
            seen.failed.total()
        );
        times.push(time);
        failed.push(seen.failed.total() as f64);
        answered.push(seen.answered as f64);
        kinds.add(&seen.failed);
        manager::wait_online(manager, INSTANCES)?;
    }
    readings.set(
        "reload_time",
        Stats::of_durations(&times).expect("at least one run"),
    );
    readings.how(
        "reload_time",
        format!("{start}, then `{cli} reload app` timed spawn to exit"),
    );
    readings.set(
        "reload_failed",
        Stats::of(&failed).expect("at least one run"),
    );
    readings.how(
        "reload_failed",
        format!(
            "{CONNECTIONS} threads, `GET /` on a new connection each, from {}ms before the \
             reload to {}ms after; over all runs: {}",
            LEAD.as_millis(),
            TRAIL.as_millis(),
            kinds.describe()
        ),
    );
    readings.set(
        "reload_requests",
        Stats::of(&answered).expect("at least one run"),
    );
    readings.how(
        "reload_requests",
        "200 answers over the whole window, all connections",
    );
    manager.delete_all()
}

/// A free loopback port: bound, read and released (PM2 binds it in its own master).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The address velos listens on for `app`, from `velos list --json`.
fn velos_listen(manager: &dyn Manager) -> Result<SocketAddr> {
    let output = manager.run(manager.list_json_args())?;
    let list: Value = serde_json::from_slice(&output.stdout).context("parsing list --json")?;
    let listen = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["name"] == "app")
        .flat_map(|entry| entry["listen"].as_array().cloned().unwrap_or_default())
        .find_map(|addr| addr.as_str().map(str::to_owned))
        .ok_or_else(|| anyhow!("no `listen` address for 'app' in `velos list --json`"))?;
    listen
        .parse()
        .with_context(|| format!("parsing the listen address {listen:?}"))
}

/// What the client saw in one run.
#[derive(Debug, Default)]
struct Seen {
    answered: u64,
    failed: Kinds,
}

/// Failed requests by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    refused: u64,
    reset: u64,
    timeout: u64,
    status: u64,
    other: u64,
}

impl Kinds {
    fn total(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.status + self.other
    }

    fn add(&mut self, other: &Kinds) {
        self.refused += other.refused;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.status += other.status;
        self.other += other.other;
    }

    fn count(&mut self, failure: &Failure) {
        match failure {
            Failure::Refused => self.refused += 1,
            Failure::Reset => self.reset += 1,
            Failure::Timeout => self.timeout += 1,
            Failure::Status => self.status += 1,
            Failure::Other => self.other += 1,
        }
    }

    fn describe(&self) -> String {
        if self.total() == 0 {
            return "no failure".to_owned();
        }
        format!(
            "{} refused, {} reset, {} timed out, {} bad status, {} other",
            self.refused, self.reset, self.timeout, self.status, self.other
        )
    }
}

/// Why one request failed.
enum Failure {
    Refused,
    Reset,
    Timeout,
    Status,
    Other,
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::ConnectionRefused => Failure::Refused,
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof => Failure::Reset,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Failure::Timeout,
            _ => Failure::Other,
        }
    }
}

/// One `GET /` on a new connection; `Ok` on a `200`.
fn get(addr: SocketAddr) -> Result<(), Failure> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::with_capacity(512);
    stream.read_to_end(&mut answer)?;
    if answer.is_empty() {
        return Err(Failure::Reset);
    }
    if answer.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(Failure::Status)
    }
}

/// Runs the client for [`LEAD`], times `reload app`, runs it [`TRAIL`] more, and returns
/// the reload's wall time and what the client saw.
fn reload_under_load(manager: &dyn Manager, addr: SocketAddr) -> Result<(Duration, Seen)> {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut seen = Seen::default();
                while !stop.load(Ordering::Relaxed) {
                    match get(addr) {
                        Ok(()) => seen.answered += 1,
                        Err(failure) => seen.failed.count(&failure),
                    }
                }
                seen
            })
        })
        .collect();
    thread::sleep(LEAD);
    let reload = manager.time(&["reload", "app"]);
    thread::sleep(TRAIL);
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    for client in clients {
        let one = client
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))?;
        seen.answered += one.answered;
        seen.failed.add(&one.failed);
    }
    Ok((reload?, seen))
}
