//! A CLI left running, such as `velos logs --follow`: [`Spawned`] reads its stdout line by
//! line in a thread, so a test waits for a line with a bound; it collects stderr, waits for
//! the exit with a bound, and kills the CLI on drop if it is still running.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::WAIT;

/// How long stdout and stderr may stay open after the CLI exited.
const PIPE_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A running CLI; see the module docs.
pub struct Spawned {
    command: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<Vec<u8>>,
    seen: Vec<String>,
    exited: Option<ExitStatus>,
}

impl Spawned {
    pub(super) fn new(command: String, mut child: Child) -> Spawned {
        let (line_sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            // Ends at end of file, a read error, or when the test has gone.
            while let Ok(n) = reader.read_until(b'\n', &mut line) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                if line_sender.send(text).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let (stderr_sender, stderr) = mpsc::channel();
        let mut pipe = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            let mut bytes = Vec::new();
            // A read error leaves what was read so far.
            let _ = pipe.read_to_end(&mut bytes);
            let _ = stderr_sender.send(bytes);
        });
        Spawned {
            command,
            child,
            lines,
            stderr,
            seen: Vec::new(),
            exited: None,
        }
    }

    /// Reads stdout lines until one satisfies `wanted` and returns it, within [`WAIT`].
    /// Every line read is kept in [`Spawned::seen`].
    #[track_caller]
    pub fn wait_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out after {WAIT:?} waiting for {what} from `{}`; its stdout so far:\n{}",
                    self.command,
                    self.seen.join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "`{}` closed its stdout before {what}; its stdout:\n{}",
                    self.command,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The CLI's pid (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the CLI is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every stdout line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Waits (within [`WAIT`]) for the CLI to exit, reads the rest of its stdout into
    /// [`Spawned::seen`], and returns its exit status and stderr.
    #[track_caller]
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => panic!(
                    "`{}` still running after {WAIT:?}; its stdout so far:\n{}",
                    self.command,
                    self.seen.join("\n")
                ),
                Err(error) => panic!("cannot wait for `{}`: {error}", self.command),
            }
        };
        self.exited = Some(status);
        let pipes_deadline = Instant::now() + PIPE_CLOSE_TIMEOUT;
        loop {
            let left = pipes_deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "`{}` exited ({status}) but its stdout stayed open: something it started \
                     inherited it",
                    self.command
                ),
            }
        }
        let left = pipes_deadline.saturating_duration_since(Instant::now());
        let stderr = self.stderr.recv_timeout(left).unwrap_or_default();
        (status, String::from_utf8_lossy(&stderr).into_owned())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // Not reaped yet, so the pid is still ours to kill.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
