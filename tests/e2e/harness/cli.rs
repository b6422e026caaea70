//! Running the CLI and reading what it printed: [`Cmd`] sets up one `velos` invocation in a
//! [`TestHome`], [`Output`] is what it did, with assertions that print the whole run when
//! they fail; [`Proc`] is one `list --json` entry, checked against the contract's keys and
//! types; [`logged_lines`] takes the texts out of `velos logs` output.
//!
//! Every run is bounded: a CLI that hangs is killed and fails the test, and so does one whose
//! stdout or stderr stays open after it exits (something it started inherited the pipe).

use std::ffi::OsString;
use std::fmt::{self, Display};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;

use super::{Spawned, TestHome, bins, signal_pid};

/// How long one CLI invocation may take before the harness kills it and fails the test.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the CLI's stdout and stderr may stay open after it exits. Longer means some
/// process it started (the daemon) inherited the pipes, which would hang `velos list | cat`.
const PIPE_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What one CLI run did.
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Output {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Output {
        assert!(self.status.success(), "expected success, got {self}");
        self
    }

    /// Asserts a non-zero exit with one `error: ...` line on stderr and returns that line.
    #[track_caller]
    pub fn error(&self) -> String {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "expected a non-zero exit code, got {self}"
        );
        let stderr = self.stderr_str();
        let errors = stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .count();
        assert!(
            stderr.starts_with("error: ") && errors == 1,
            "expected stderr to start with a single `error: ...` line, got {self}"
        );
        stderr.lines().next().unwrap_or_default().to_owned()
    }

    /// Stdout as text; fails the test if it is not UTF-8.
    #[track_caller]
    pub fn stdout_str(&self) -> String {
        match String::from_utf8(self.stdout.clone()) {
            Ok(text) => text,
            Err(_) => panic!("stdout is not UTF-8\n{self}"),
        }
    }

    /// Stderr as text (lossy: it is only shown or searched).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_slice(&self.stdout) {
            Ok(json) => json,
            Err(error) => panic!("stdout is not JSON ({error})\n{self}"),
        }
    }
}

impl Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "`{}` exited with {}", self.command, self.status)?;
        writeln!(
            f,
            "--- stdout ---\n{}",
            String::from_utf8_lossy(&self.stdout)
        )?;
        write!(
            f,
            "--- stderr ---\n{}",
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

/// A CLI invocation being set up: `home.cmd(&["start", ...]).env("PORT", "8080").run()`.
pub struct Cmd<'h> {
    home: &'h TestHome,
    /// `velos`, or `velosd` for [`TestHome::velosd`].
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// Variables of the test's environment the CLI does not get.
    removed: Vec<OsString>,
    cwd: Option<PathBuf>,
    timeout: Duration,
}

impl<'h> Cmd<'h> {
    pub(super) fn new(home: &'h TestHome, args: &[&str]) -> Self {
        Cmd {
            home,
            program: bins().velos.clone(),
            args: args.iter().map(OsString::from).collect(),
            envs: Vec::new(),
            removed: Vec::new(),
            cwd: None,
            timeout: CLI_TIMEOUT,
        }
    }

    /// Runs `velosd` instead of `velos`, with the same environment.
    pub(super) fn daemon(mut self) -> Self {
        self.program = bins().velosd.clone();
        self
    }

    /// Sets an environment variable for the CLI (and so for what it starts).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Leaves a variable of the test's environment out of the CLI's (and so out of what
    /// it starts).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.removed.push(key.into());
        self
    }

    /// Runs the CLI in another working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Bounds the run; the default is 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the CLI and returns what it did; fails the test if it could not run, hung, or
    /// left its output pipes open.
    #[track_caller]
    pub fn run(self) -> Output {
        match self.try_run() {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    /// The command line as text, for messages.
    fn command_line(&self) -> String {
        let program = self
            .program
            .file_name()
            .map_or_else(|| "velos".into(), |name| name.to_string_lossy());
        self.args.iter().fold(program.into_owned(), |line, arg| {
            format!("{line} {}", arg.to_string_lossy())
        })
    }

    /// The process to run: the home's environment, stdin null, stdout and stderr piped.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        for key in &self.removed {
            command.env_remove(key);
        }
        command
            .args(&self.args)
            .env("VELOS_HOME", self.home.path())
            .env("VELOS_DAEMON", &bins().velosd)
            .env("NO_COLOR", "1")
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    /// Starts the CLI and returns at once, for commands that run until stopped
    /// (`velos logs --follow`); see [`Spawned`].
    #[track_caller]
    pub fn spawn(self) -> Spawned {
        let command_line = self.command_line();
        match self.command().spawn() {
            Ok(child) => Spawned::new(command_line, child),
            Err(error) => panic!("cannot run `{command_line}`: {error}"),
        }
    }

    pub(super) fn try_run(self) -> Result<Output, String> {
        let command_line = self.command_line();
        let mut command = self.command();
        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot run `{command_line}`: {error}"))?;
        let pid = child.id();
        let pipes = mpsc::channel();
        for (is_stdout, mut pipe) in [
            (
                true,
                Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            ),
            (false, Box::new(child.stderr.take().expect("piped"))),
        ] {
            let sender = pipes.0.clone();
            thread::spawn(move || {
                let mut bytes = Vec::new();
                // A read error leaves what was read so far; the output shows it.
                let _ = pipe.read_to_end(&mut bytes);
                let _ = sender.send((is_stdout, bytes));
            });
        }
        let (status_sender, status_receiver) = mpsc::channel();
        thread::spawn(move || {
            let _ = status_sender.send(child.wait());
        });

        let status = match status_receiver.recv_timeout(self.timeout) {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => return Err(format!("cannot wait for `{command_line}`: {error}")),
            Err(_) => {
                // Not reaped yet (the waiter thread is still in wait()), so the pid is ours.
                signal_pid(pid as i32, Signal::KILL);
                let _ = status_receiver.recv();
                let (stdout, stderr) = collect_pipes(&pipes.1);
                return Err(format!(
                    "`{command_line}` did not finish within {:?}; killed it\n\
                     --- stdout ---\n{}\n--- stderr ---\n{}",
                    self.timeout,
                    String::from_utf8_lossy(&stdout.unwrap_or_default()),
                    String::from_utf8_lossy(&stderr.unwrap_or_default()),
                ));
            }
        };
        let elapsed = start.elapsed();
        let (stdout, stderr) = collect_pipes(&pipes.1);
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err(format!(
                "`{command_line}` exited ({status}) but its stdout or stderr stayed open for \
                 {PIPE_CLOSE_TIMEOUT:?}: a process it started (the daemon?) inherited them"
            ));
        };
        let output = Output {
            command: command_line,
            status,
            stdout,
            stderr,
            elapsed,
        };
        Ok(output)
    }
}

/// Collects both pipes of a finished CLI, waiting at most [`PIPE_CLOSE_TIMEOUT`] for them.
fn collect_pipes(receiver: &mpsc::Receiver<(bool, Vec<u8>)>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let deadline = Instant::now() + PIPE_CLOSE_TIMEOUT;
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok((true, bytes)) => stdout = Some(bytes),
            Ok((false, bytes)) => stderr = Some(bytes),
            Err(_) => break,
        }
    }
    (stdout, stderr)
}

/// One process as `velos list --json` shows it: the process fields of `docs/protocol.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub id: u64,
    pub name: String,
    pub pid: Option<i32>,
    pub status: String,
    pub exit_code: Option<i64>,
}

impl Proc {
    /// Reads one entry, failing the test if a contract key is missing or has the wrong type.
    #[track_caller]
    fn from_json(entry: &Value) -> Proc {
        let bad = |key: &str, wanted: &str| -> ! {
            panic!("`list --json` entry has no {wanted} `{key}`: {entry}")
        };
        let id = entry["id"].as_u64().unwrap_or_else(|| bad("id", "integer"));
        let name = entry["name"]
            .as_str()
            .unwrap_or_else(|| bad("name", "string"))
            .to_owned();
        let pid = match &entry["pid"] {
            Value::Null => None,
            pid => Some(
                pid.as_i64()
                    .and_then(|pid| i32::try_from(pid).ok())
                    .unwrap_or_else(|| bad("pid", "integer or null")),
            ),
        };
        let status = entry["status"]
            .as_str()
            .unwrap_or_else(|| bad("status", "string"))
            .to_owned();
        assert!(
            [
                "running", "starting", "stopping", "stopped", "errored", "waiting"
            ]
            .contains(&status.as_str()),
            "status {status:?} is not one of the contract's statuses: {entry}"
        );
        let exit_code = match &entry["exit_code"] {
            Value::Null => None,
            code => Some(
                code.as_i64()
                    .unwrap_or_else(|| bad("exit_code", "integer or null")),
            ),
        };
        if entry.get("pid").is_none() || entry.get("exit_code").is_none() {
            panic!("`list --json` entry lacks `pid` or `exit_code` (null is fine): {entry}");
        }
        Proc {
            id,
            name,
            pid,
            status,
            exit_code,
        }
    }
}

/// Reads the output of `velos list --json`.
#[track_caller]
pub(super) fn parse_list(output: &Output) -> Vec<Proc> {
    let json = output.json();
    let Some(entries) = json.as_array() else {
        panic!("`list --json` did not print a JSON array\n{output}");
    };
    entries.iter().map(Proc::from_json).collect()
}

/// The texts of the `NAME | text` lines in `velos logs` output, in order.
pub fn logged_lines(output: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name} |");
    output
        .lines()
        .filter_map(|line| {
            let at = line.find(&prefix)? + prefix.len();
            let rest = &line[at..];
            Some(rest.strip_prefix(' ').unwrap_or(rest).to_owned())
        })
        .collect()
}
