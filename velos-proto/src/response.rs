//! The types of the results and notifications: [`ProcessInfo`], [`LogLines`],
//! [`ProcessEvent`] and the rest. Which method answers which is written once, in the
//! table of `method.rs` (see [`crate::Call`]).

use serde::{Deserialize, Serialize};

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessStatus {
    /// Running and ready.
    Running,
    /// Spawned with a ready mode (`ready`), not ready yet.
    Starting,
    /// Asked to stop; not gone yet.
    Stopping,
    /// Stopped by the user, or exited with code 0.
    Stopped,
    /// Exited non-zero, killed by a signal nobody asked for, or could not be spawned.
    Errored,
    /// Exited unexpectedly; velos starts it again after a backoff delay.
    Waiting,
    /// A status this version does not know (from a newer daemon); also the default.
    #[default]
    #[serde(other)]
    Unknown,
}

impl ProcessStatus {
    /// The lowercase word used on the wire and in `velos list`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessStatus::Running => "running",
            ProcessStatus::Starting => "starting",
            ProcessStatus::Stopping => "stopping",
            ProcessStatus::Stopped => "stopped",
            ProcessStatus::Errored => "errored",
            ProcessStatus::Waiting => "waiting",
            ProcessStatus::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of `daemon.ping`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingInfo {
    /// The daemon's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The daemon's pid.
    pub pid: u32,
    /// The protocol version the daemon speaks.
    #[serde(default)]
    pub protocol: u8,
    /// Milliseconds since the daemon started.
    #[serde(default)]
    pub uptime_ms: u64,
    /// How many processes it manages.
    #[serde(default)]
    pub processes: u32,
    /// Why the daemon's latest save of its process list (`state.msgpack`) failed, while it
    /// keeps failing (a full disk, say; a failed write is retried every second). `None`
    /// when the list on disk is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_error: Option<String>,
    /// Whether a change to the process list is not on disk yet (being written, or failing):
    /// a crash now would lose it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub state_pending: bool,
    /// The daemon's limit of open files (its soft `RLIMIT_NOFILE`, raised at start to the
    /// hard limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u64>,
    /// About how many processes that limit lets the daemon manage (each takes five
    /// descriptors: two pipes, two log files, one pidfd; some are kept for clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_processes: Option<u32>,
    /// The [`build_stamp`](crate::build_stamp) of the daemon's executable, taken when it
    /// started. A client compares it with the stamp of the `velosd` it would start: when
    /// they differ, the daemon runs another build (started before a rebuild, say), which
    /// ignores options it does not know. `None` from daemons older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

/// One managed process, as `process.list` and `velos list --json` show it.
///
/// `Default` is an empty record (zeros, empty strings, `None`, status `Unknown`), a base for
/// `..ProcessInfo::default()` in fixtures; it is not what the daemon reports for a process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Stable small integer, never reused while the daemon runs.
    pub id: u32,
    /// The app's name: the same for every instance of it.
    pub name: String,
    /// Which instance of the app it is, 0 to N-1 (`name:K`); 0 for an app of one.
    #[serde(default)]
    pub instance: u32,
    /// The pid while it runs.
    pub pid: Option<u32>,
    /// Where it is in its life.
    pub status: ProcessStatus,
    /// Exit code of the last run, if it exited normally.
    pub exit_code: Option<i32>,
    /// Signal that ended the last run, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// How many times it was started again after the first start.
    #[serde(default)]
    pub restarts: u32,
    /// Milliseconds it has been running, while it runs.
    #[serde(default)]
    pub uptime_ms: Option<u64>,
    /// The script or program, absolute.
    #[serde(default)]
    pub script: String,
    /// The interpreter that runs the script, if any.
    #[serde(default)]
    pub interpreter: Option<String>,
    /// Arguments passed to the script.
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: String,
    /// Milliseconds between SIGTERM and SIGKILL on stop.
    #[serde(default)]
    pub kill_timeout_ms: u64,
    /// Path of the stdout log file.
    #[serde(default)]
    pub out_log: String,
    /// Path of the stderr log file.
    #[serde(default)]
    pub err_log: String,
    /// Why it is errored, when it is (for example the spawn error).
    #[serde(default)]
    pub error: Option<String>,
    /// The last error writing its log files (disk full, file not writable), until a
    /// write succeeds again.
    #[serde(default)]
    pub log_error: Option<String>,
    /// Whether velos starts it again when it exits unexpectedly (`restart` is not
    /// `never`).
    #[serde(default)]
    pub autorestart: bool,
    /// Which exits are restarted: `always`, `on-failure` or `never` (a daemon without
    /// restart modes sends none: then `autorestart` says on-failure or never).
    #[serde(default)]
    pub restart: RestartMode,
    /// Exit codes that are a clean stop, never restarted.
    #[serde(default)]
    pub stop_exit_codes: Vec<u8>,
    /// Its restart schedule (`--cron-restart`), as given.
    #[serde(default)]
    pub cron_restart: Option<String>,
    /// When its schedule restarts it next (Unix milliseconds), while it is armed: while the
    /// process runs or waits for a restart, never while it is stopped or errored.
    #[serde(default)]
    pub cron_next_ms: Option<u64>,
    /// Quick failures in a row after which velos gives up.
    #[serde(default)]
    pub max_restarts: u32,
    /// Milliseconds a run must last to count as a success (resetting the backoff).
    #[serde(default)]
    pub min_uptime_ms: u64,
    /// The memory limit (`--max-memory-restart`): resident bytes of its whole tree over
    /// which, for `max_memory_for_ms`, it is restarted; `None` without a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// Milliseconds its tree must stay over `max_memory_bytes` before the restart, with a
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_for_ms: Option<u64>,
    /// Log file size (bytes) at which it is rotated, if rotation is on.
    #[serde(default)]
    pub max_log_bytes: Option<u64>,
    /// How many rotated log files are kept.
    #[serde(default)]
    pub log_files: u32,
    /// Milliseconds until the next automatic restart, while `waiting`.
    #[serde(default)]
    pub restart_in_ms: Option<u64>,
    /// CPU use of the process's whole tree (the leader and every descendant) in percent
    /// of one core, since the previous sample (or since it started), while it runs
    /// (Linux).
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// Resident memory of the process's whole tree in bytes, while it runs (Linux).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// The addresses the daemon listens on for it (`--listen`), as bound: the real port
    /// when port 0 was asked (`127.0.0.1:41234`, `[::1]:8080`, `unix:/run/app.sock`).
    #[serde(default)]
    pub listen: Vec<String>,
    /// How it says it is ready (`notify`, `message`, `log:REGEX`, `http:URL`), if it
    /// has a ready mode.
    #[serde(default)]
    pub ready: Option<String>,
    /// Milliseconds it may take to be ready, with a ready mode.
    #[serde(default)]
    pub ready_timeout_ms: Option<u64>,
    /// The last `STATUS=` it sent to `$NOTIFY_SOCKET` in this run (`notify` mode).
    #[serde(default)]
    pub status_text: Option<String>,
    /// The signal that stops it (`SIGTERM` unless `kill_signal` said otherwise).
    #[serde(default)]
    pub kill_signal: String,
    /// Whether its last run was still alive when the kill timeout after the stop signal
    /// ran out, so velos sent SIGKILL (set when that run is over; cleared by a new run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
    /// Whether its lines are written to the log files after the time they arrived
    /// (`--time`, PM2's `time`); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time: bool,
    /// The files and directories whose changes restart it (absolute); empty when it is
    /// not watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// The user's globs of paths whose changes do not count, on top of the built-in ones
    /// ([`watch::BUILTIN_IGNORES`](crate::watch::BUILTIN_IGNORES)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_ignore: Vec<String>,
    /// Milliseconds of quiet after the last change before the restart, when watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_delay_ms: Option<u64>,
    /// Directories and files under watch, once the watch is set up (`None` before, and
    /// when not watched); ignored ones are not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched: Option<WatchedCount>,
    /// What keeps the watch from seeing every change (out of inotify watches, a path that
    /// cannot be read), when something does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_error: Option<String>,
    /// How many of `restarts` each reason caused (their sum is `restarts`).
    #[serde(default)]
    pub restart_counts: RestartCounts,
    /// The latest restart: its reason, what caused it and when.
    #[serde(default)]
    pub last_restart: Option<LastRestart>,
}

/// Which exits of a process the restart policy restarts (`--restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Every exit nobody asked for, exit code 0 included (PM2's habit).
    Always,
    /// An exit with a non-zero code, or by a signal nobody sent; exit code 0 is a stop.
    #[default]
    OnFailure,
    /// None: a failure stays `errored`.
    Never,
    /// A mode this version does not know (from a newer daemon); a daemon refuses it.
    #[serde(other)]
    Unknown,
}

impl RestartMode {
    /// The word used on the wire and on the command line (`on-failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            RestartMode::Always => "always",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Never => "never",
            RestartMode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for RestartMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RestartMode {
    type Err = String;

    fn from_str(text: &str) -> Result<RestartMode, String> {
        match text {
            "always" => Ok(RestartMode::Always),
            "on-failure" => Ok(RestartMode::OnFailure),
            "never" => Ok(RestartMode::Never),
            _ => Err(format!(
                "unknown restart mode '{}': use always, on-failure or never",
                crate::echo(text)
            )),
        }
    }
}

/// Why a process was started again (`restart_counts`, `last_restart`, and the
/// `restart_reason` of an event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartReason {
    /// The restart policy's automatic restart after the process exited (`--restart`): a
    /// failure, or with `--restart always` an exit 0 too (which the CLI calls
    /// `autorestart`, never a crash).
    Crash,
    /// A watched file changed (`--watch`).
    Watch,
    /// Its memory stayed over its limit (`--max-memory-restart`).
    Memory,
    /// Its schedule said so (`--cron-restart`).
    Cron,
    /// Somebody asked: `velos restart`, `velos reload`, or their SDK calls.
    Manual,
    /// A reason this version does not know (from a newer daemon); also the default.
    #[default]
    #[serde(other)]
    Unknown,
}

impl RestartReason {
    /// The snake_case word used on the wire (`crash`, `watch`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Watch => "watch",
            RestartReason::Memory => "memory",
            RestartReason::Cron => "cron",
            RestartReason::Manual => "manual",
            RestartReason::Unknown => "unknown",
        }
    }
}

impl RestartReason {
    /// Whether it is a restart trigger's (`watch`, `memory`, `cron`), not the restart
    /// policy's nor a user's.
    pub fn is_trigger(self) -> bool {
        matches!(
            self,
            RestartReason::Watch | RestartReason::Memory | RestartReason::Cron
        )
    }
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many restarts each reason caused; their sum is [`ProcessInfo::restarts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartCounts {
    /// Automatic restarts of the restart policy, after an exit.
    pub crash: u32,
    /// Restarts because a watched file changed.
    pub watch: u32,
    /// Restarts because memory stayed over the limit.
    pub memory: u32,
    /// Restarts by the schedule.
    pub cron: u32,
    /// Restarts and reloads somebody asked for.
    pub manual: u32,
}

impl RestartCounts {
    /// The count of `reason` (0 for [`RestartReason::Unknown`]).
    pub fn get(&self, reason: RestartReason) -> u32 {
        match reason {
            RestartReason::Crash => self.crash,
            RestartReason::Watch => self.watch,
            RestartReason::Memory => self.memory,
            RestartReason::Cron => self.cron,
            RestartReason::Manual => self.manual,
            RestartReason::Unknown => 0,
        }
    }

    /// Counts one more restart for `reason` (an unknown reason counts as `crash`),
    /// saturating.
    pub fn add(&mut self, reason: RestartReason) {
        let count = match reason {
            RestartReason::Crash | RestartReason::Unknown => &mut self.crash,
            RestartReason::Watch => &mut self.watch,
            RestartReason::Memory => &mut self.memory,
            RestartReason::Cron => &mut self.cron,
            RestartReason::Manual => &mut self.manual,
        };
        *count = count.saturating_add(1);
    }

    /// All restarts, saturating.
    pub fn total(&self) -> u32 {
        [self.crash, self.watch, self.memory, self.cron, self.manual]
            .into_iter()
            .fold(0u32, u32::saturating_add)
    }
}

/// The latest restart of a process: why, in words, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRestart {
    /// Why.
    pub reason: RestartReason,
    /// What `velos info` prints after "restarted: " (`exited with code 1`,
    /// `restart asked`, `memory 612 MiB > 512 MiB for 3s`, `cron 0 3 * * *`).
    #[serde(default)]
    pub detail: String,
    /// When it was decided (Unix milliseconds).
    #[serde(default)]
    pub time_ms: u64,
}

/// How much a watch covers: `velos info` shows it beside the watched paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedCount {
    /// Directories with a watch of their own (a watched file counts its directory).
    pub directories: u64,
    /// Files found in them when they were walked.
    pub files: u64,
}

/// Which pipe a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

impl Stream {
    /// `out` or `err`, as in the log file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// One line a process wrote, without its newline, bytes as written.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The process's id.
    pub id: u32,
    /// The process's name.
    pub name: String,
    /// Which pipe.
    pub stream: Stream,
    /// The bytes, which need not be UTF-8.
    #[serde(with = "serde_bytes")]
    pub line: Vec<u8>,
    /// No newline follows these bytes (yet): the process exited in the middle of the
    /// line, has not finished writing it, or the rest comes in the next item (a long
    /// line sent in pieces, whose next piece is `continued`). `--raw` prints no newline
    /// after it.
    #[serde(default)]
    pub partial: bool,
    /// These bytes continue the previous item of the same process and stream, which was
    /// `partial`: print them right after it, without a new prefix.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// When the daemon received it (Unix milliseconds), if known; lines read back from
    /// the files carry none.
    #[serde(default)]
    pub time_ms: Option<u64>,
}

// Hand-written: show the line as text, however long it is.
impl std::fmt::Debug for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLine")
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("line", &String::from_utf8_lossy(&self.line))
            .finish_non_exhaustive()
    }
}

/// Result of `log.read`: lines oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLines {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Problems a person should know about, such as a log file that cannot be written
    /// (then lines are still kept in memory, and shown here).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// More lines than one answer carries were asked for: pass this back as the
    /// `cursor` of the same `log.read` for the next page. Absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<crate::LogCursor>,
}

/// What happened to a process, as `events.subscribe` streams it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run started (first start, restart or automatic restart).
    Started,
    /// A run ended (with `exit_code` or `signal`).
    Exited,
    /// It exited unexpectedly and will be started again after `restart_in_ms`.
    Restarting,
    /// It failed too often, or could not be spawned; velos leaves it alone.
    Errored,
    /// It stopped because it was asked to.
    Stopped,
    /// It was deleted.
    Deleted,
    /// A run with a ready mode was spawned and is `starting` (right after its
    /// `started`) until its `ready` event.
    Starting,
    /// A run became ready (see `ready` in `process.info`): it is `running`.
    Ready,
    /// A reload started a replacement run (`pid`) beside the current one.
    ReloadStarted,
    /// The replacement (`pid`) is ready and took the old run's place; the old run is
    /// being stopped (`reason` names its pid).
    Replaced,
    /// Every process of a reload was replaced (sent once per reload, for its last process).
    ReloadDone,
    /// A replacement failed (`reason`): it was stopped, the old run keeps running, and the
    /// reload stops there.
    ReloadFailed,
    /// Its file watch cannot see every change (`reason`: what is wrong, such as running
    /// out of inotify watches, and what to do); it goes on running.
    WatchError,
    /// An event this version does not know.
    #[serde(other)]
    Unknown,
}

/// How the reload of one process went (`process.reload`'s result, one per process, in the
/// order they were reloaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// The process's id (the same before and after: the entry stays, its run changes).
    pub id: u32,
    /// The process as its log lines name it: `name:K` for an instance of an app of
    /// several, else the name.
    pub name: String,
    /// The result.
    pub result: ReloadResult,
    /// The pid of the run that was replaced (or kept, when the replacement failed).
    #[serde(default)]
    pub old_pid: Option<u32>,
    /// The replacement's pid, when one was spawned.
    #[serde(default)]
    pub new_pid: Option<u32>,
    /// Why, for `failed` and `skipped`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The result of reloading one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadResult {
    /// The replacement is ready and the old run is gone.
    Replaced,
    /// The replacement exited or was not ready in time: it was stopped, the old run is
    /// untouched, and the reload stopped here.
    Failed,
    /// Not running (stopped, errored, waiting for a restart): nothing to replace.
    Skipped,
    /// Not reached: an earlier process's replacement failed.
    NotReached,
    /// A result this version does not know.
    #[serde(other)]
    Unknown,
}

/// One process event: the params of a `process.event` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// What happened.
    pub kind: EventKind,
    /// The process's id.
    pub id: u32,
    /// The process's name: the app's, the same for every instance of it.
    pub name: String,
    /// Which instance of the app it is, 0 to N-1 (`name:K`); 0 for an app of one.
    #[serde(default)]
    pub instance: u32,
    /// Its pid, for `started` (and the pid that ended, for `exited`).
    #[serde(default)]
    pub pid: Option<u32>,
    /// Exit code, for `exited`.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Signal, for `exited`.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The restart counter after this event.
    #[serde(default)]
    pub restarts: u32,
    /// Delay before the automatic restart, for `restarting`.
    #[serde(default)]
    pub restart_in_ms: Option<u64>,
    /// Why, for `errored`; what caused it, for an event with `restart_reason`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Why it is started again, for a `restarting` or `started` event of a restart (and
    /// `reload_started` and `replaced` of a reload a trigger began).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_reason: Option<RestartReason>,
    /// When (Unix milliseconds).
    #[serde(default)]
    pub time_ms: u64,
}

impl ProcessEvent {
    /// The name of [`ProcessEvent::signal`] on this platform (`"SIGTERM"`), for `exited`
    /// events of a run a signal ended; `None` without a signal or for a number without a
    /// name (the number stays in `signal`).
    ///
    /// # Examples
    /// ```
    /// # fn show(event: &velos_proto::ProcessEvent) {
    /// if let Some(signal) = event.signal_name() {
    ///     println!("'{}' was killed by {signal}", event.name);
    /// }
    /// # }
    /// ```
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal.and_then(crate::signal_name)
    }
}

impl ProcessInfo {
    /// The name of [`ProcessInfo::signal`] on this platform (`"SIGKILL"`): the signal
    /// that ended the last run, if one did and it has a name.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal.and_then(crate::signal_name)
    }
}

/// Result of `metrics.enable`, `metrics.disable` and `metrics.status`: the daemon's
/// metrics setting and where it serves them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsState {
    /// Whether the metrics are on (the setting, kept across daemon restarts).
    pub enabled: bool,
    /// The address the setting names, as given (`127.0.0.1:0` stays so), while enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The address the daemon listens on now, as bound (the real port when port 0 was
    /// asked), while it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why an enabled setting is not served (its address was taken when the daemon
    /// started, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Result of `metrics.scrape`: what `GET /metrics` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsText {
    /// The metrics in the Prometheus text format 0.0.4.
    pub text: String,
}

/// Params of a `log.gap` notification: lines a follower missed because it read too
/// slowly (the daemon never waits for a follower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGap {
    /// How many lines were skipped.
    pub dropped: u64,
}

/// Params of a `log.end` notification: a followed process sends no more lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEnd {
    /// The process's id.
    pub id: u32,
    /// The process's name.
    pub name: String,
    /// Why: `deleted`.
    pub reason: String,
}

/// Result of `daemon.save`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Where the list was written.
    pub path: String,
    /// How many processes it holds.
    pub processes: u32,
}

#[cfg(test)]
mod tests {
    use rmpv::Value;

    use super::*;
    use crate::{Envelope, Method, Response, rpc};

    pub(crate) fn sample_process() -> ProcessInfo {
        ProcessInfo {
            name: "api".into(),
            pid: Some(4242),
            status: ProcessStatus::Running,
            restarts: 2,
            uptime_ms: Some(1500),
            script: "/srv/app.js".into(),
            interpreter: Some("node".into()),
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            out_log: "/home/u/.velos/logs/api-out.log".into(),
            err_log: "/home/u/.velos/logs/api-err.log".into(),
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            max_log_bytes: Some(10 << 20),
            max_memory_bytes: Some(512 << 20),
            max_memory_for_ms: Some(3000),
            log_files: 5,
            cpu_percent: Some(1.5),
            memory_bytes: Some(30 << 20),
            ..ProcessInfo::default()
        }
    }

    fn round_trip(method: Method, response: Response) {
        let payload = response.encode(9).unwrap();
        assert_eq!(response.method(), method);
        assert_eq!(
            Response::decode(method, &payload).unwrap().unwrap(),
            (9, Ok(response.clone()))
        );
        let Envelope::Response { msgid, result } = Envelope::decode(&payload).unwrap() else {
            panic!("not a response");
        };
        assert_eq!(msgid, 9);
        assert_eq!(
            Response::from_parts(method, result.unwrap()).unwrap(),
            response
        );
    }

    #[test]
    fn every_response_round_trips() {
        round_trip(
            Method::Ping,
            Response::Ping(PingInfo {
                version: "0.1.0".into(),
                pid: 1,
                protocol: 1,
                uptime_ms: 10,
                processes: 0,
                ..PingInfo::default()
            }),
        );
        round_trip(Method::Kill, Response::Kill);
        round_trip(Method::Start, Response::Start(sample_process()));
        let mut stopped = sample_process();
        stopped.status = ProcessStatus::Errored;
        stopped.pid = None;
        stopped.exit_code = Some(3);
        round_trip(
            Method::List,
            Response::List(vec![sample_process(), stopped]),
        );
        round_trip(
            Method::LogRead,
            Response::LogRead(LogLines {
                next: None,
                lines: vec![LogLine {
                    continued: false,
                    id: 0,
                    name: "api".into(),
                    stream: Stream::Err,
                    line: vec![0xff, 0xfe, b'x'],
                    partial: true,
                    time_ms: Some(1),
                }],
                warnings: vec!["cannot write /x: disk full".into()],
            }),
        );
    }

    #[test]
    fn unknown_statuses_and_events_from_a_newer_daemon_decode() {
        let status: ProcessStatus = rpc::from_value(Value::from("hibernating")).unwrap();
        assert_eq!(status, ProcessStatus::Unknown);
        let kind: EventKind = rpc::from_value(Value::from("teleported")).unwrap();
        assert_eq!(kind, EventKind::Unknown);
    }

    #[test]
    fn events_round_trip() {
        let event = ProcessEvent {
            kind: EventKind::Restarting,
            id: 1,
            name: "api".into(),
            instance: 2,
            pid: None,
            exit_code: Some(1),
            signal: None,
            restarts: 3,
            restart_in_ms: Some(400),
            restart_reason: Some(RestartReason::Crash),
            reason: None,
            time_ms: 5,
        };
        let back: ProcessEvent = rpc::from_value(rpc::to_value(&event).unwrap()).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.signal_name(), None);
        let killed = ProcessEvent {
            signal: Some(15),
            ..event
        };
        #[cfg(target_os = "linux")]
        assert_eq!(killed.signal_name(), Some("SIGTERM"));
    }

    #[test]
    fn restart_reasons_are_counted_and_unknown_ones_decode() {
        let mut counts = RestartCounts::default();
        for reason in [
            RestartReason::Crash,
            RestartReason::Cron,
            RestartReason::Cron,
            RestartReason::Manual,
        ] {
            counts.add(reason);
        }
        assert_eq!((counts.get(RestartReason::Cron), counts.total()), (2, 4));
        assert_eq!(counts.get(RestartReason::Unknown), 0);
        assert!(RestartReason::Cron.is_trigger() && !RestartReason::Manual.is_trigger());
        let reason: RestartReason = rpc::from_value(Value::from("solar_flare")).unwrap();
        assert_eq!(reason, RestartReason::Unknown);
        assert_eq!(
            rpc::to_value(&RestartReason::Memory).unwrap().as_str(),
            Some("memory")
        );
        // A record from a daemon without reasons decodes with none.
        let mut process = sample_process();
        process.restart_counts = counts;
        process.last_restart = Some(LastRestart {
            reason: RestartReason::Cron,
            detail: "cron 0 3 * * *".into(),
            time_ms: 7,
        });
        round_trip(Method::Info, Response::Info(process.clone()));
        let Value::Map(fields) = rpc::to_value(&process).unwrap() else {
            panic!("a map");
        };
        let older: Vec<(Value, Value)> = fields
            .into_iter()
            .filter(|(key, _)| !matches!(key.as_str(), Some("restart_counts" | "last_restart")))
            .collect();
        let older: ProcessInfo = rpc::from_value(Value::Map(older)).unwrap();
        assert_eq!(
            (older.restart_counts, older.last_restart),
            (RestartCounts::default(), None)
        );
    }

    #[test]
    fn statuses_are_lowercase_words_on_the_wire() {
        let value = rpc::to_value(&ProcessStatus::Errored).unwrap();
        assert_eq!(value.as_str(), Some("errored"));
    }

    #[test]
    fn log_bytes_travel_as_binary() {
        let value = rpc::to_value(&LogLine {
            continued: false,
            id: 0,
            name: "a".into(),
            stream: Stream::Out,
            line: vec![0xff],
            partial: false,
            time_ms: None,
        })
        .unwrap();
        let line = value
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_str() == Some("line"))
            .unwrap();
        assert!(line.1.is_bin(), "{value:?}");
    }
}
