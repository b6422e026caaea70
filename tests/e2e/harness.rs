//! The harness every e2e test stands on: the real binaries, a home per test, the CLI runner,
//! bounded waits and cleanup.
//!
//! - [`bins`] builds `velos` and `velosd` once per test run with the cargo that runs the tests
//!   and takes their paths from cargo's JSON messages, so a test never runs a stale binary;
//!   `VELOS_TEST_BINS=DIR` runs the binaries in DIR instead (relative to the workspace root:
//!   `VELOS_TEST_BINS=target/bin` for the release binaries `scripts/build` made).
//! - [`TestHome`] is a fresh `VELOS_HOME` under `/tmp` (socket paths are capped near 104
//!   bytes). [`TestHome::velos`] runs the CLI in it; [`TestHome::cmd`] is the builder when a
//!   test needs an extra environment variable or another working directory. Its `Drop` kills
//!   whatever the test left behind, even after a failed assertion.
//! - [`wait_until`] polls a condition every 20 ms up to a bound and, on timeout, panics with
//!   what it last saw. Tests never sleep for a fixed time.
//! - `cli.rs` runs the CLI ([`Cmd`], [`Output`]) and reads what it printed: `list --json`
//!   entries ([`Proc`]) and the `name | text` lines of `velos logs` ([`logged_lines`]).
//! - `process.rs` looks at processes from outside: alive or gone, groups, signals, and
//!   whether a process wakes up ([`wakeups_over`]: its threads' context switches).
//! - `spawned.rs` keeps a CLI running (`velos logs --follow`) and reads its lines with a
//!   bound ([`Spawned`]); `background.rs` does the same for the SDK's streams
//!   ([`Background`]; [`TestHome::events`] is the event stream read so), and [`TestHome::sdk`]
//!   is a blocking SDK client of the home's daemon.
//!
//! Cleanup order in `Drop`: `velos kill` (bounded), then SIGKILL to the pid in `velos.pid`,
//! then, on Linux, SIGKILL to every process still carrying this home's `VELOS_HOME` in its
//! environment (children inherit the CLI's environment, so this finds the recorded
//! processes and grandchildren nobody told us about, in one look at `/proc`); elsewhere,
//! SIGKILL to every process group the test recorded. Every pid seen in `velos list --json`
//! is recorded automatically.

mod background;
mod cli;
mod process;
mod spawned;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt::Display;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use velos_proto::{Envelope, Home, Method, PingInfo, Request, Response, Stream, frame};

pub use background::Background;
use cli::parse_list;
pub use cli::{Cmd, Output, Proc, logged_lines};
#[cfg(target_os = "linux")]
pub use process::{group_members, wait_idle, wakeups_over};
pub use process::{pid_alive, signal_pid, wait_gone};
pub use spawned::Spawned;

/// The default bound of a [`wait_until`] in tests: generous, because two cores run eight tests
/// at once (`.cargo/config.toml`), on a machine that may be busy with more (under a load of
/// 20 to 30, a `velos runtime` took 11 s to relay its app's first line), and only paid when
/// something is wrong. A bound that is itself asserted has a constant of its own.
pub const WAIT: Duration = Duration::from_secs(30);

/// How long `Drop` lets `velos kill` take.
const CLEANUP_KILL_TIMEOUT: Duration = Duration::from_secs(15);

/// How often [`wait_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Paths of the freshly built binaries.
#[derive(Debug)]
pub struct Bins {
    pub velos: PathBuf,
    pub velosd: PathBuf,
}

/// Builds `velos` and `velosd` once per test run and returns their paths.
#[track_caller]
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Result<Bins, String>> = OnceLock::new();
    match BINS.get_or_init(build_bins) {
        Ok(bins) => bins,
        Err(error) => panic!("{error}"),
    }
}

fn build_bins() -> Result<Bins, String> {
    if let Some(dir) = std::env::var_os("VELOS_TEST_BINS").filter(|dir| !dir.is_empty()) {
        let dir = workspace_root().join(dir);
        let (velos, velosd) = (dir.join("velos"), dir.join("velosd"));
        return match (velos.is_file(), velosd.is_file()) {
            (true, true) => Ok(Bins { velos, velosd }),
            _ => Err(format!(
                "VELOS_TEST_BINS: no velos and velosd in {}",
                dir.display()
            )),
        };
    }
    // Cargo does not hold its build lock while tests run, so this nested build works; it is
    // a no-op when the binaries are fresh.
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "velos",
            "-p",
            "velosd",
            "--message-format=json",
        ])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {}: {error}", env!("CARGO")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p velos -p velosd` failed ({}):\n{stderr}",
            output.status
        ));
    }
    let (mut velos, mut velosd) = (None, None);
    for line in output.stdout.split(|&byte| byte == b'\n') {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let is_bin = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"));
        let executable = message["executable"].as_str();
        if message["reason"] != "compiler-artifact" || !is_bin {
            continue;
        }
        match (message["target"]["name"].as_str(), executable) {
            (Some("velos"), Some(path)) => velos = Some(PathBuf::from(path)),
            (Some("velosd"), Some(path)) => velosd = Some(PathBuf::from(path)),
            _ => {}
        }
    }
    match (velos, velosd) {
        (Some(velos), Some(velosd)) => Ok(Bins { velos, velosd }),
        (velos, velosd) => Err(format!(
            "cargo built no executable for velos ({velos:?}) or velosd ({velosd:?})\n{stderr}"
        )),
    }
}

/// Who holds homes now: any number of ordinary tests, or one test running alone. Ordinary
/// tests never wait for a test that only waits to run alone (it may wait until the end of
/// the run), so a test that makes a second home cannot deadlock on a waiting one.
struct Turns {
    /// Homes held by ordinary tests.
    shared: usize,
    /// Whether a test running alone holds its turn.
    alone: bool,
}

static TURNS: Mutex<Turns> = Mutex::new(Turns {
    shared: 0,
    alone: false,
});
static TURN_CHANGED: Condvar = Condvar::new();

thread_local! {
    /// Whether this thread runs alone: its further homes take no turn of their own.
    static ALONE_HERE: Cell<bool> = const { Cell::new(false) };
}

/// One home's hold on [`TURNS`], given back on drop.
enum Turn {
    Shared,
    Alone,
    /// A further home of the test running alone.
    Nested,
}

impl Turn {
    fn lock() -> std::sync::MutexGuard<'static, Turns> {
        // A test that panicked while holding the lock left the counts consistent.
        TURNS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shared() -> Turn {
        if ALONE_HERE.get() {
            return Turn::Nested;
        }
        let mut turns = Turn::lock();
        while turns.alone {
            turns = TURN_CHANGED
                .wait(turns)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        turns.shared += 1;
        Turn::Shared
    }

    fn exclusive() -> Turn {
        if ALONE_HERE.get() {
            return Turn::Nested;
        }
        let mut turns = Turn::lock();
        while turns.alone || turns.shared > 0 {
            turns = TURN_CHANGED
                .wait(turns)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        turns.alone = true;
        ALONE_HERE.set(true);
        Turn::Alone
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = Turn::lock();
        match self {
            Turn::Shared => turns.shared -= 1,
            Turn::Alone => {
                turns.alone = false;
                ALONE_HERE.set(false);
            }
            Turn::Nested => return,
        }
        TURN_CHANGED.notify_all();
    }
}

/// The workspace root: the parent of this crate.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
}

/// The absolute path of a script in `tests/fixtures/`, as a string for the command line.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    assert!(path.exists(), "no fixture {}", path.display());
    path.to_str().expect("fixture paths are UTF-8").to_owned()
}

/// The absolute path of a file of the workspace (`examples/node-app/app.js`), as a string
/// for the command line.
pub fn example(path: &str) -> String {
    let path = workspace_root().join(path);
    assert!(path.exists(), "no {}", path.display());
    path.to_str().expect("workspace paths are UTF-8").to_owned()
}

/// Waits until `condition` gives a value, checking every 20 ms for at most `timeout`.
///
/// The condition returns an `Option` (`None`: not yet) or a `Result` whose error says what
/// it saw, or a `bool`. On timeout this panics with `what` and the last thing seen.
#[track_caller]
pub fn wait_until<C: Check>(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> C,
) -> C::Value {
    let start = Instant::now();
    loop {
        match condition().check() {
            Ok(value) => return value,
            Err(seen) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last saw:\n{seen}")
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}

/// What a [`wait_until`] condition may return.
pub trait Check {
    /// What the wait returns once the condition holds.
    type Value;
    /// The value, or a description of what was seen instead.
    fn check(self) -> Result<Self::Value, String>;
}

impl<T> Check for Option<T> {
    type Value = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "(nothing yet)".to_owned())
    }
}

impl<T, E: Display> Check for Result<T, E> {
    type Value = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

impl Check for bool {
    type Value = ();
    fn check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

/// A fresh velos home for one test; see the module docs.
pub struct TestHome {
    dir: tempfile::TempDir,
    home: Home,
    /// Pids (each also a process group: velosd puts every child in its own group) to kill
    /// on drop.
    recorded: Mutex<BTreeSet<i32>>,
    /// This test's turn ([`TestHome::alone`]); dropped last, after the cleanup.
    _turn: Turn,
}

impl TestHome {
    /// Makes an empty home under `/tmp` with a short name (`/tmp/vtXXXXXX`).
    #[track_caller]
    pub fn new() -> TestHome {
        TestHome::with_turn(Turn::shared())
    }

    /// Like [`TestHome::new`], for a test that measures latency: it waits until no other
    /// test holds a home, and no other test gets one until this one is dropped. Tests run
    /// 8 at a time on 2 cores (`.cargo/config.toml`), which is fine for waiting but not for
    /// a bound of 100 ms. A test that makes a home while another test runs alone waits for
    /// it; the one running alone makes and drops its homes on one thread.
    #[track_caller]
    pub fn alone() -> TestHome {
        TestHome::with_turn(Turn::exclusive())
    }

    #[track_caller]
    fn with_turn(turn: Turn) -> TestHome {
        bins();
        let dir = tempfile::Builder::new()
            .prefix("vt")
            .tempdir_in("/tmp")
            .expect("cannot create a temporary directory in /tmp");
        let home = Home::at(dir.path());
        TestHome {
            dir,
            home,
            recorded: Mutex::new(BTreeSet::new()),
            _turn: turn,
        }
    }

    /// The home directory (`VELOS_HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The paths inside the home, as velos computes them.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// A CLI invocation to set up further.
    pub fn cmd(&self, args: &[&str]) -> Cmd<'_> {
        Cmd::new(self, args)
    }

    /// Runs `velos ARGS` in this home.
    #[track_caller]
    pub fn velos(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }

    /// Runs `velosd ARGS` in this home (the launcher detaches the daemon and exits).
    #[track_caller]
    pub fn velosd(&self, args: &[&str]) -> Output {
        self.cmd(args).daemon().run()
    }

    /// Starts `velosd --no-daemon` in this home with `env` added, its stderr (the daemon's
    /// log) in `foreground.log` of the home, and returns at once (it may not answer yet).
    /// Its pid is recorded for the cleanup.
    #[track_caller]
    pub fn foreground_daemon(&self, env: &[(&str, &str)]) -> std::process::Child {
        let log = std::fs::File::create(self.path().join("foreground.log"))
            .expect("create foreground.log");
        let mut command = Command::new(&bins().velosd);
        command
            .arg("--no-daemon")
            .env("VELOS_HOME", self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start velosd --no-daemon");
        self.record(child.id() as i32);
        child
    }

    /// Starts `velos ARGS` and leaves it running; see [`Spawned`].
    #[track_caller]
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        self.cmd(args).spawn()
    }

    /// A blocking SDK client of this home's daemon, started first if needed.
    #[track_caller]
    pub fn sdk(&self) -> velos_sdk::blocking::Client {
        self.velos(&["ping"]).success();
        match velos_sdk::blocking::Client::connect(self.home.socket_path()) {
            Ok(client) => client,
            Err(error) => panic!("SDK connect to {}: {error}", self.path().display()),
        }
    }

    /// Every process event from now on, from the SDK's `events()` stream, read in the
    /// background.
    pub fn events(&self) -> Background<velos_proto::ProcessEvent> {
        let events = self.sdk().events().expect("events.subscribe");
        Background::new(
            "the events stream",
            events.map(|event| event.expect("an event the SDK can read")),
        )
    }

    /// `velos info NAME --json`, which must succeed.
    #[track_caller]
    pub fn info(&self, name: &str) -> Value {
        let output = self.velos(&["info", name, "--json"]);
        output.success();
        output.json()
    }

    /// The `list --json` object of `name`, whole (every key the daemon sends).
    #[track_caller]
    pub fn entry(&self, name: &str) -> Value {
        let output = self.velos(&["list", "--json"]);
        output.success();
        let json = output.json();
        let found = json
            .as_array()
            .and_then(|list| list.iter().find(|entry| entry["name"] == name));
        match found {
            Some(entry) => {
                if let Some(pid) = entry["pid"].as_i64() {
                    self.record(pid as i32);
                }
                entry.clone()
            }
            None => panic!("no process named {name:?} in `velos list --json`:\n{output}"),
        }
    }

    /// `velos list --json`, checked against the contract; records every pid in it.
    #[track_caller]
    pub fn list(&self) -> Vec<Proc> {
        let output = self.velos(&["list", "--json"]);
        output.success();
        let list = parse_list(&output);
        for pid in list.iter().filter_map(|proc| proc.pid) {
            self.record(pid);
        }
        list
    }

    /// The entry named `name`, if the list has one.
    #[track_caller]
    pub fn find(&self, name: &str) -> Option<Proc> {
        self.list().into_iter().find(|proc| proc.name == name)
    }

    /// The entry named `name`; fails the test if there is none.
    #[track_caller]
    pub fn get(&self, name: &str) -> Proc {
        let list = self.list();
        match list.iter().find(|proc| proc.name == name) {
            Some(proc) => proc.clone(),
            None => panic!("no process named {name:?} in `velos list --json`: {list:#?}"),
        }
    }

    /// Waits until `name` has `status` and returns its entry.
    #[track_caller]
    pub fn wait_status(&self, name: &str, status: &str) -> Proc {
        wait_until(WAIT, &format!("{name:?} to be {status}"), || {
            let list = self.list();
            match list.iter().find(|proc| proc.name == name) {
                Some(proc) if proc.status == status => Ok(proc.clone()),
                _ => Err(format!("{list:#?}")),
            }
        })
    }

    /// Waits until `name` is running with a pid and returns its entry.
    #[track_caller]
    pub fn wait_running(&self, name: &str) -> Proc {
        wait_until(WAIT, &format!("{name:?} to be running with a pid"), || {
            let list = self.list();
            match list.iter().find(|proc| proc.name == name) {
                Some(proc) if proc.status == "running" && proc.pid.is_some() => Ok(proc.clone()),
                _ => Err(format!("{list:#?}")),
            }
        })
    }

    /// The bytes of `logs/<name>-out.log` or `-err.log` (empty if it does not exist yet).
    pub fn log_file(&self, name: &str, stream: Stream) -> Vec<u8> {
        std::fs::read(self.home.log_path(name, stream)).unwrap_or_default()
    }

    /// Waits until `name`'s log file for `stream` contains `needle`.
    #[track_caller]
    pub fn wait_log(&self, name: &str, stream: Stream, needle: &str) {
        let path = self.home.log_path(name, stream);
        wait_until(WAIT, &format!("{needle:?} in {}", path.display()), || {
            let log = self.log_file(name, stream);
            let text = String::from_utf8_lossy(&log);
            if text.contains(needle) {
                Ok(())
            } else {
                Err(format!("{text:?}"))
            }
        });
    }

    /// Waits until `velos logs ARGS` prints a line for each of `texts`, as `name | text`
    /// lines, and returns the output.
    #[track_caller]
    pub fn wait_logs_show(&self, args: &[&str], name: &str, texts: &[&str]) -> Output {
        wait_until(
            WAIT,
            &format!("`velos {}` to show {texts:?}", args.join(" ")),
            || {
                let output = self.velos(args);
                output.success();
                let shown = logged_lines(&output.stdout_str(), name);
                if texts
                    .iter()
                    .all(|text| shown.iter().any(|line| line == text))
                {
                    Ok(output)
                } else {
                    Err(output.to_string())
                }
            },
        )
    }

    /// The daemon's pid from `velos.pid`, if the file holds one.
    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home.pid_path())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs the daemon and waits until it is gone and its socket refuses connections:
    /// a killed process shows as a zombie as soon as its main thread is gone, while its
    /// other threads may hold the socket open a moment longer. Returns its pid.
    #[track_caller]
    pub fn kill_daemon(&self) -> i32 {
        let daemon = self.daemon_pid().expect("velos.pid names the daemon");
        self.record(daemon);
        // A crash after the last change was saved, as the tests mean it: the list is
        // fsynced, which a loaded disk may take a while to do.
        wait_until(WAIT, "the daemon's list to be on disk", || {
            !self.ping().state_pending
        });
        signal_pid(daemon, Signal::KILL);
        wait_gone(daemon, "the SIGKILLed daemon");
        wait_until(
            WAIT,
            "the dead daemon's socket to refuse connections",
            || UnixStream::connect(self.home.socket_path()).is_err(),
        );
        daemon
    }

    /// Sends `daemon.ping` over the socket (no CLI involved) and returns the answer.
    #[track_caller]
    pub fn ping(&self) -> PingInfo {
        match ping_socket(&self.home.socket_path()) {
            Ok(info) => {
                self.record(info.pid as i32);
                info
            }
            Err(error) => panic!("daemon.ping on {}: {error}", self.path().display()),
        }
    }

    /// Remembers a pid (and its process group) to SIGKILL when the test ends.
    pub fn record(&self, pid: i32) {
        self.recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(pid);
    }

    /// Live processes whose environment carries this home's `VELOS_HOME`: the daemon, the
    /// children and their children (they inherit the CLI's environment).
    #[cfg(target_os = "linux")]
    pub fn processes(&self) -> Vec<i32> {
        let mut entry = b"VELOS_HOME=".to_vec();
        entry.extend_from_slice(self.path().as_os_str().as_encoded_bytes());
        process::with_env(&entry)
    }

    fn cleanup(&mut self) {
        let daemon = self.daemon_pid();
        if self.home.pid_path().exists() || self.home.socket_path().exists() {
            // Errors are ignored: whatever `velos kill` leaves, the steps below kill.
            let _ = self.cmd(&["kill"]).timeout(CLEANUP_KILL_TIMEOUT).try_run();
        }
        if let Some(pid) = daemon {
            signal_pid(pid, Signal::KILL);
        }
        let recorded = std::mem::take(
            self.recorded
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        // On Linux, the recorded groups' members that are ours (a pid may have been reused
        // by someone else's process) all carry this home's VELOS_HOME: one look at /proc
        // finds them and whatever else is ours. (A look per recorded group made the
        // cleanup of 2000 processes read /proc millions of times: minutes under load.)
        #[cfg(target_os = "linux")]
        {
            drop(recorded);
            for pid in self.processes() {
                signal_pid(pid, Signal::KILL);
            }
        }
        #[cfg(not(target_os = "linux"))]
        for pgid in recorded {
            process::signal_group(pgid, Signal::KILL);
        }
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Sends `daemon.ping` to the socket at `path` with a blocking std socket.
pub fn ping_socket(path: &Path) -> Result<PingInfo, String> {
    let mut stream = UnixStream::connect(path).map_err(|error| format!("connect: {error}"))?;
    let limit = Some(Duration::from_secs(5));
    stream
        .set_read_timeout(limit)
        .and_then(|()| stream.set_write_timeout(limit))
        .map_err(|error| error.to_string())?;
    let payload = Request::Ping.encode(1).map_err(|error| error.to_string())?;
    let bytes = frame::encode_frame(&payload).map_err(|error| error.to_string())?;
    stream
        .write_all(&bytes)
        .map_err(|error| format!("write: {error}"))?;
    let mut header = [0; frame::HEADER_LEN];
    stream
        .read_exact(&mut header)
        .map_err(|error| format!("read header: {error}"))?;
    let len = frame::decode_header(&header).map_err(|error| error.to_string())?;
    let mut payload = vec![0; len as usize];
    stream
        .read_exact(&mut payload)
        .map_err(|error| format!("read payload: {error}"))?;
    match Envelope::decode(&payload).map_err(|error| error.to_string())? {
        Envelope::Response {
            msgid: 1,
            result: Ok(result),
        } => match Response::from_parts(Method::Ping, result) {
            Ok(Response::Ping(info)) => Ok(info),
            other => Err(format!("not a ping answer: {other:?}")),
        },
        other => Err(format!("unexpected message: {other:?}")),
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Whether `program` is an executable on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
