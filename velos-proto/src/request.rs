//! Typed params of each method, and decoding a [`Request`]: a method with its params,
//! within the decoding budget.
//!
//! Every params struct is a map on the wire. Optional fields may be left out, and fields
//! this version does not know are ignored, so older and newer peers understand each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Method, Request, rpc};

/// Which process a request is about: an id, a name (every instance of the app), one
/// instance (`name:K`), or every process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// The process with this id.
    Id(u32),
    /// Every instance of the app with this name.
    Name(String),
    /// One instance of an app: `name:K` on the command line and on the wire (`:` is not
    /// allowed in names, so this is never a name).
    Instance {
        /// The app's name.
        name: String,
        /// The instance number, 0 to N-1.
        instance: u32,
    },
    /// Every process (`all` on the command line and on the wire).
    All,
}

impl Target {
    /// Reads what a user typed: `all`, an id (all digits), `name:K` (one instance), or
    /// a name.
    ///
    /// # Examples
    /// ```
    /// use velos_proto::Target;
    /// assert_eq!(Target::parse("3"), Target::Id(3));
    /// assert_eq!(Target::parse("api"), Target::Name("api".into()));
    /// assert_eq!(
    ///     Target::parse("web:2"),
    ///     Target::Instance { name: "web".into(), instance: 2 }
    /// );
    /// assert_eq!(Target::parse("all"), Target::All);
    /// ```
    pub fn parse(text: &str) -> Target {
        let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if text == "all" {
            Target::All
        } else if let Ok(id) = text.parse::<u32>()
            && all_digits(text)
        {
            Target::Id(id)
        } else if let Some((name, instance)) = text.rsplit_once(':')
            && all_digits(instance)
            && let Ok(instance) = instance.parse::<u32>()
        {
            Target::Instance {
                name: name.to_owned(),
                instance,
            }
        } else {
            Target::Name(text.to_owned())
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::Name(name) => f.write_str(name),
            Target::Instance { name, instance } => write!(f, "{name}:{instance}"),
            Target::All => f.write_str("all"),
        }
    }
}

impl From<u32> for Target {
    fn from(id: u32) -> Target {
        Target::Id(id)
    }
}

impl From<&str> for Target {
    fn from(text: &str) -> Target {
        Target::parse(text)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Target::Id(id) => serializer.serialize_u32(*id),
            Target::Name(name) => serializer.serialize_str(name),
            Target::Instance { .. } => serializer.collect_str(self),
            Target::All => serializer.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Target;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a process id (integer), a name (string) or \"all\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Target, E> {
                u32::try_from(v)
                    .map(Target::Id)
                    .map_err(|_| E::custom("process id out of range"))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Target, E> {
                u32::try_from(v)
                    .map(Target::Id)
                    .map_err(|_| E::custom("process id out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Target, E> {
                Ok(Target::parse(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Params of `daemon.ping`, `daemon.kill` and `process.list`: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoParams {}

/// Params of `process.start`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartParams {
    /// The script or program to run, as an absolute path.
    pub script: String,
    /// The process name; the daemon uses the script's file stem when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Arguments passed to the script as they are.
    #[serde(default)]
    pub args: Vec<String>,
    /// The program that runs the script (`node`); chosen by shebang, executable bit or
    /// extension when absent.
    #[serde(default)]
    pub interpreter: Option<String>,
    /// Working directory; the daemon's own when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The whole environment of the process; the daemon's own when absent.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Milliseconds between SIGTERM and SIGKILL on stop; 5000 when absent.
    #[serde(default)]
    pub kill_timeout_ms: Option<u64>,
    /// Start it again when it exits unexpectedly; true when absent.
    #[serde(default)]
    pub autorestart: Option<bool>,
    /// Quick failures in a row before velos gives up; 16 when absent.
    #[serde(default)]
    pub max_restarts: Option<u32>,
    /// Milliseconds a run must last to reset the backoff; 1000 when absent.
    #[serde(default)]
    pub min_uptime_ms: Option<u64>,
    /// Restart it when its whole process tree (the leader and every descendant) stays
    /// over this many resident bytes for `max_memory_for_ms` (PM2's
    /// `max_memory_restart`); no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// Milliseconds the tree must stay over `max_memory_bytes` before the restart; 3000
    /// when absent. Without `max_memory_bytes` it does nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_for_ms: Option<u64>,
    /// Rotate a log file when it reaches this many bytes; no rotation when absent.
    #[serde(default)]
    pub max_log_bytes: Option<u64>,
    /// Rotated log files kept; 5 when absent.
    #[serde(default)]
    pub log_files: Option<u32>,
    /// Arguments for the interpreter, before the script (`--max-old-space-size=512` for
    /// node: PM2's `interpreter_args`, `node_args`); none when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpreter_args: Vec<String>,
    /// Addresses the daemon listens on and hands to the process as descriptors 3, 4, …
    /// (systemd's socket activation: `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`): `PORT`
    /// (all IPv4 interfaces), `HOST:PORT`, `[IPv6]:PORT` or `unix:/absolute/path`; port 0
    /// lets the kernel choose. None when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<String>,
    /// How it says it is ready ([`ReadyMode`](crate::ReadyMode) as text: `notify`,
    /// `message`, `log:REGEX`, `http:URL`); `running` from its spawn when absent.
    #[serde(default)]
    pub ready: Option<String>,
    /// Milliseconds it may take to be ready with a `ready` mode; 30000 when absent.
    #[serde(default)]
    pub ready_timeout_ms: Option<u64>,
    /// How many instances to start under this name, each its own process with its own
    /// id, numbered 0 to N-1 (`name:K`); 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// The variable that tells each instance its number, besides `VELOS_INSTANCE`
    /// (PM2's `instance_var`); `NODE_APP_INSTANCE` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_var: Option<String>,
    /// A variable of the environment holding a number that instance K gets plus K
    /// (`PORT=3000`: 3000, 3001, ...; PM2's `increment_var`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increment_var: Option<String>,
    /// The signal that stops it (sent to its process group on stop, restart and delete,
    /// SIGKILL following after the kill timeout): a name (`SIGINT`, `INT`) or a number;
    /// SIGTERM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_signal: Option<String>,
    /// Which exits are restarted (`always`, `on-failure`, `never`); `on-failure` when
    /// absent, or `never` when `autorestart` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<crate::RestartMode>,
    /// Exit codes that are a clean stop: never restarted, shown `stopped` (PM2's
    /// `stop_exit_codes`). None when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_exit_codes: Vec<u8>,
    /// A restart schedule in cron syntax, in the daemon's local time (PM2's
    /// `cron_restart`): 5 fields, or 6 with seconds first (`0 3 * * *`, `*/30 * * * * *`);
    /// none when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_restart: Option<String>,
    /// Files and directories whose changes restart it (`--watch`): absolute, or relative
    /// to `cwd`; a directory counts with everything under it. Not watched when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<String>,
    /// Globs of paths whose changes do not count, on top of the built-in ones (`.git`,
    /// `node_modules`, `*.log`, editor swap files, ...): a glob without `/` matches any
    /// one part of a path (`dist`, `*.tmp`), one with `/` the path relative to the
    /// watched directory (`src/gen/**`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_ignore: Vec<String>,
    /// Milliseconds of quiet after the last change before the restart; 300 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_delay_ms: Option<u64>,
    /// Write each line to the log files after the time it arrived, `2026-05-01T12:00:00.123Z `
    /// (UTC, RFC 3339 with milliseconds, and a space), so its time is known when it is read
    /// back from the files (PM2's `time`); false when absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time: bool,
}

// Hand-written: the environment is long and may hold secrets.
impl std::fmt::Debug for StartParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartParams")
            .field("script", &self.script)
            .field("name", &self.name)
            .field("args", &self.args)
            .field("interpreter", &self.interpreter)
            .field("cwd", &self.cwd)
            .field("env", &self.env.as_ref().map(|env| env.len()))
            .field("kill_timeout_ms", &self.kill_timeout_ms)
            .field("autorestart", &self.autorestart)
            .field("max_restarts", &self.max_restarts)
            .field("min_uptime_ms", &self.min_uptime_ms)
            .field("max_memory_bytes", &self.max_memory_bytes)
            .field("max_memory_for_ms", &self.max_memory_for_ms)
            .field("max_log_bytes", &self.max_log_bytes)
            .field("log_files", &self.log_files)
            .field("interpreter_args", &self.interpreter_args)
            .field("listen", &self.listen)
            .field("ready", &self.ready)
            .field("ready_timeout_ms", &self.ready_timeout_ms)
            .field("instances", &self.instances)
            .field("instance_var", &self.instance_var)
            .field("increment_var", &self.increment_var)
            .field("kill_signal", &self.kill_signal)
            .field("restart", &self.restart)
            .field("stop_exit_codes", &self.stop_exit_codes)
            .field("cron_restart", &self.cron_restart)
            .field("watch", &self.watch)
            .field("watch_ignore", &self.watch_ignore)
            .field("watch_delay_ms", &self.watch_delay_ms)
            .field("time", &self.time)
            .finish()
    }
}

/// The most bytes of arguments and environment a start may carry, counted as exec counts
/// them (each string with its terminating NUL, `KEY=VALUE` for a variable). Linux refuses
/// 2 MiB at exec; this leaves room, and keeps one process's part of `process.list` small.
pub const MAX_START_BYTES: usize = 1024 * 1024;

/// Bytes of `args` and `env` as exec counts them.
fn exec_bytes<'a>(
    args: impl IntoIterator<Item = &'a String>,
    env: Option<&BTreeMap<String, String>>,
) -> usize {
    let args: usize = args.into_iter().map(|arg| arg.len() + 1).sum();
    let env: usize = env
        .into_iter()
        .flatten()
        .map(|(key, value)| key.len() + value.len() + 2)
        .sum();
    args + env
}

/// Refuses arguments and environment over [`MAX_START_BYTES`].
fn check_exec_bytes(bytes: usize) -> Result<(), Error> {
    if bytes > MAX_START_BYTES {
        return Err(Error::StartTooLarge { bytes });
    }
    Ok(())
}

/// Params of `process.stop` and `process.delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetParams {
    /// The process (or all).
    pub target: Target,
}

/// Params of `process.signal`: which processes, and which signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalParams {
    /// The process (or every instance of an app, or all).
    pub target: Target,
    /// The signal: a name with or without `SIG` (`SIGUSR2`, `USR2`, any case) or its
    /// number on this platform, as [`crate::parse_signal`] reads it.
    pub signal: String,
}

/// Params of `process.delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteParams {
    /// The process (or all).
    pub target: Target,
    /// Remove its log files too (`logs/<name>-out.log`, `-err.log` and the rotated
    /// copies); they stay when absent.
    #[serde(default)]
    pub logs: bool,
}

/// Params of `process.restart`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartParams {
    /// The process (or all).
    pub target: Target,
    /// A new environment to start with; the remembered one when absent.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// New settings to start with, replacing the remembered ones (what `velos restart
    /// velos.toml` sends: the file's current settings). Only for a target naming one
    /// process, and its `name` must be that process's. Their `env`, when absent, is the
    /// one above, or else the remembered one; `listen` is ignored (the sockets it holds
    /// stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Box<StartParams>>,
}

impl std::fmt::Debug for RestartParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartParams")
            .field("target", &self.target)
            .field("env", &self.env.as_ref().map(|env| env.len()))
            .field("settings", &self.settings)
            .finish()
    }
}

/// Params of `process.scale`: how many instances an app should have, as a count
/// (`to`) or a change (`by`); exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleParams {
    /// The app's name.
    pub name: String,
    /// The number of instances it should have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Instances to add (positive) or remove (negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<i64>,
}

impl ScaleParams {
    /// Reads what a user typed: `N` (a count), `+N` or `-N` (a change).
    ///
    /// # Examples
    /// ```
    /// use velos_proto::ScaleParams;
    ///
    /// assert_eq!(ScaleParams::parse("web", "4").unwrap().to, Some(4));
    /// assert_eq!(ScaleParams::parse("web", "-1").unwrap().by, Some(-1));
    /// assert_eq!(ScaleParams::parse("web", "+2").unwrap().by, Some(2));
    /// assert!(ScaleParams::parse("web", "many").is_err());
    /// ```
    pub fn parse(name: &str, count: &str) -> Result<ScaleParams, String> {
        let bad = || {
            format!(
                "'{}' is not a count: give N (so many instances), +N (add) or -N (remove)",
                crate::echo(count)
            )
        };
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let (to, by) = match count.as_bytes().first() {
            Some(b'+' | b'-') if digits(&count[1..]) => {
                let by: i64 = count.parse().map_err(|_| bad())?;
                (None, Some(by))
            }
            _ if digits(count) => (Some(count.parse().map_err(|_| bad())?), None),
            _ => return Err(bad()),
        };
        Ok(ScaleParams {
            name: name.to_owned(),
            to,
            by,
        })
    }

    /// The number of instances wanted, from the `current` one; `None` when the params
    /// give neither or both of `to` and `by`.
    pub fn wanted(&self, current: u32) -> Option<i64> {
        match (self.to, self.by) {
            (Some(to), None) => Some(i64::from(to)),
            (None, Some(by)) => Some(i64::from(current).saturating_add(by)),
            _ => None,
        }
    }
}

/// Params of `process.reload`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadParams {
    /// The process (or all).
    pub target: Target,
    /// How many processes are replaced at a time (1 when absent or 0).
    #[serde(default)]
    pub parallel: Option<u32>,
    /// A new environment for the replacements; the remembered one when absent.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// New settings for the replacements (what `velos reload velos.toml` sends: the file's
    /// current settings), as [`RestartParams::settings`]: only for a target naming one
    /// app, checked as a start is. Each process keeps them once its replacement took over
    /// (a process not running takes them at once); a failed replacement leaves the old
    /// ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Box<StartParams>>,
}

impl std::fmt::Debug for ReloadParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadParams")
            .field("target", &self.target)
            .field("parallel", &self.parallel)
            .field("env", &self.env.as_ref().map(|env| env.len()))
            .field("settings", &self.settings)
            .finish()
    }
}

/// Params of `metrics.enable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsEnableParams {
    /// The address to serve the metrics on (`127.0.0.1:9615`, `[::1]:9615`, port 0 for
    /// any free port); [`DEFAULT_METRICS_LISTEN`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// Where `metrics.enable` serves the metrics when no address is given: loopback only.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9615";

/// Params of `daemon.save`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveParams {
    /// Write the list even when it is empty and the dump holds processes (which the
    /// daemon otherwise refuses, so that an empty daemon does not erase a snapshot).
    #[serde(default)]
    pub force: bool,
}

/// Params of `log.read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReadParams {
    /// The process (or all).
    pub target: Target,
    /// How many of the last lines to return, per process.
    #[serde(default = "default_lines")]
    pub lines: u32,
    /// Where to go on: the `next` of the previous answer (`log.read` only). Absent for
    /// a first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<LogCursor>,
}

/// Where a paged `log.read` goes on (see [`crate::LogLines::next`]). Clients pass it back
/// unchanged; its fields are the daemon's business.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    /// The processes still to read, the one in progress first.
    pub processes: Vec<ProcessCursor>,
}

/// Where reading one process's log goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCursor {
    /// The process's id.
    pub id: u32,
    /// Where its stdout and stderr go on; absent until reading it has begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<[LogPosition; 2]>,
    /// The previous page ended inside a line, which this one continues.
    #[serde(default)]
    pub continued: bool,
}

/// A byte in a stream's log files: which file (the daemon's count of that stream's
/// files so far) and where in it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// Which file of the stream.
    pub generation: u64,
    /// Bytes into it.
    pub offset: u64,
}

fn default_lines() -> u32 {
    15
}

/// Why a well-formed request cannot be carried out. The daemon answers it with an error
/// (`unknown-method`, `invalid-params`) and keeps the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// The method is not one this version knows; its name, cut to
    /// [`MAX_QUOTED_CHARS`] characters.
    #[error("unknown method '{0}'")]
    UnknownMethod(String),
    /// The params do not fit the method (a missing or mistyped field).
    #[error("bad params for {method}: {error}")]
    InvalidParams {
        /// The method.
        method: Method,
        /// What did not fit.
        error: Error,
    },
}

/// How much of a client's text an error message quotes; the rest is cut and marked `…`.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `text` cut to [`MAX_QUOTED_CHARS`] characters, with `…` when something was cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl Request {
    /// Decodes a request payload once, straight into its typed form, within the decoding
    /// budget (see [`crate::budget`]): the msgid, and the request or why it cannot be
    /// carried out. `Err` when the payload is not a well-formed request at all (then the
    /// msgid may be unknown). Parameters a method does not know are skipped, never built.
    /// Never panics, whatever the bytes.
    ///
    /// # Examples
    /// ```
    /// use velos_proto::{Request, Target, TargetParams};
    ///
    /// let stop = Request::Stop(TargetParams { target: Target::Id(3) });
    /// let (msgid, decoded) = Request::decode(&stop.encode(7).unwrap()).unwrap();
    /// assert_eq!((msgid, decoded.unwrap()), (7, stop));
    /// ```
    pub fn decode(payload: &[u8]) -> Result<(u32, Result<Request, Refused>), Error> {
        let head = rpc::decode_request(payload)?;
        let request = match Method::from_name(head.method) {
            None => Err(Refused::UnknownMethod(shorten(head.method))),
            Some(method) => Request::decode_params(method, head.params)
                .map_err(|error| Refused::InvalidParams { method, error }),
        };
        Ok((head.msgid, request))
    }

    /// Decodes the params of `method`, straight into their typed form, and refuses a start
    /// (or a restart's environment) over [`MAX_START_BYTES`].
    pub fn decode_params(method: Method, params: rpc::Params<'_>) -> Result<Request, Error> {
        let request = Request::decode_fields(method, params)?;
        match &request {
            Request::Start(start) => {
                check_exec_bytes(exec_bytes(
                    start.args.iter().chain(&start.interpreter_args),
                    start.env.as_ref(),
                ))?;
            }
            Request::Restart(RestartParams { env, settings, .. })
            | Request::Reload(ReloadParams { env, settings, .. }) => {
                let settings = settings.as_ref();
                let args = settings
                    .into_iter()
                    .flat_map(|settings| settings.args.iter().chain(&settings.interpreter_args));
                let settings_env = settings.and_then(|settings| settings.env.as_ref());
                check_exec_bytes(exec_bytes(args, env.as_ref()) + exec_bytes([], settings_env))?;
            }
            _ => {}
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Envelope;

    fn round_trip(request: Request) {
        let payload = request.encode(42).unwrap();
        let (msgid, decoded) = Request::decode(&payload).unwrap();
        assert_eq!(msgid, 42);
        assert_eq!(decoded.unwrap(), request);
        // The generic envelope reads it too.
        assert!(matches!(
            Envelope::decode(&payload).unwrap(),
            Envelope::Request { msgid: 42, .. }
        ));
    }

    /// `[0, 1, method, params]` with params given as JSON.
    fn payload(method: &str, params: serde_json::Value) -> Vec<u8> {
        rpc::encode_request(1, method, &params).unwrap()
    }

    fn decoded(method: &str, params: serde_json::Value) -> Result<Request, Refused> {
        Request::decode(&payload(method, params)).unwrap().1
    }

    #[test]
    fn every_request_round_trips() {
        round_trip(Request::Ping);
        round_trip(Request::Kill);
        round_trip(Request::List);
        round_trip(Request::Start(StartParams {
            script: "/srv/app.js".into(),
            name: Some("api".into()),
            args: vec!["--port".into(), "3000".into()],
            interpreter: Some("node".into()),
            cwd: Some("/srv".into()),
            env: Some(BTreeMap::from([("PORT".into(), "3000".into())])),
            kill_timeout_ms: Some(500),
            autorestart: Some(false),
            max_restarts: Some(3),
            min_uptime_ms: Some(2000),
            max_memory_bytes: Some(512 << 20),
            max_memory_for_ms: Some(5000),
            max_log_bytes: Some(1 << 20),
            log_files: Some(2),
            interpreter_args: vec!["--inspect".into()],
            listen: vec!["127.0.0.1:0".into(), "unix:/run/api.sock".into()],
            ready: Some("log:listening on \\d+".into()),
            ready_timeout_ms: Some(10_000),
            instances: Some(4),
            instance_var: Some("INSTANCE_ID".into()),
            increment_var: Some("PORT".into()),
            kill_signal: Some("SIGINT".into()),
            restart: Some(crate::RestartMode::Always),
            stop_exit_codes: vec![0, 3],
            cron_restart: Some("0 3 * * *".into()),
            watch: vec!["/srv/src".into()],
            watch_ignore: vec!["*.gen.js".into()],
            watch_delay_ms: Some(500),
            time: true,
        }));
        round_trip(Request::Scale(ScaleParams {
            name: "web".into(),
            to: None,
            by: Some(-1),
        }));
        round_trip(Request::Info(TargetParams {
            target: Target::Id(1),
        }));
        round_trip(Request::Signal(SignalParams {
            target: Target::parse("web:1"),
            signal: "SIGUSR2".into(),
        }));
        round_trip(Request::LogFollow(LogReadParams {
            cursor: None,
            target: Target::All,
            lines: 0,
        }));
        round_trip(Request::LogFlush(TargetParams {
            target: Target::All,
        }));
        round_trip(Request::Subscribe);
        round_trip(Request::Save(SaveParams::default()));
        round_trip(Request::Save(SaveParams { force: true }));
        round_trip(Request::Resurrect);
        round_trip(Request::Start(StartParams {
            script: "/srv/app.py".into(),
            ..StartParams::default()
        }));
        round_trip(Request::Stop(TargetParams {
            target: Target::Id(3),
        }));
        round_trip(Request::Delete(DeleteParams {
            target: Target::All,
            logs: false,
        }));
        round_trip(Request::Delete(DeleteParams {
            target: Target::Name("api".into()),
            logs: true,
        }));
        round_trip(Request::Restart(RestartParams {
            target: Target::Name("api".into()),
            env: None,
            settings: None,
        }));
        round_trip(Request::Restart(RestartParams {
            target: Target::Name("api".into()),
            env: None,
            settings: Some(Box::new(StartParams {
                script: "/srv/app.js".into(),
                name: Some("api".into()),
                ..StartParams::default()
            })),
        }));
        round_trip(Request::Reload(ReloadParams {
            target: Target::Name("web".into()),
            parallel: Some(2),
            env: None,
            settings: Some(Box::new(StartParams {
                script: "/srv/app.js".into(),
                name: Some("web".into()),
                args: vec!["--edited".into()],
                ..StartParams::default()
            })),
        }));
        round_trip(Request::LogRead(LogReadParams {
            cursor: None,
            target: Target::Name("api".into()),
            lines: 50,
        }));
    }

    #[test]
    fn targets_read_ids_names_instances_and_all() {
        assert_eq!(Target::parse("007"), Target::Id(7));
        let web1 = Target::Instance {
            name: "web".into(),
            instance: 1,
        };
        assert_eq!(Target::parse("web:1"), web1);
        assert_eq!(web1.to_string(), "web:1");
        let from_wire: Target = rpc::from_value(rpc::to_value(&web1).unwrap()).unwrap();
        assert_eq!(from_wire, web1);
        // Not an instance number: a name, which the daemon will not find.
        for text in ["web:", "web:x", "web:-1", "web:99999999999"] {
            assert_eq!(Target::parse(text), Target::Name(text.into()), "{text}");
        }
        assert_eq!(Target::parse("api-2"), Target::Name("api-2".into()));
        assert_eq!(
            Target::parse("99999999999"),
            Target::Name("99999999999".into())
        );
        let from_wire: Target = rpc::from_value(rmpv::Value::from("12")).unwrap();
        assert_eq!(from_wire, Target::Id(12));
    }

    #[test]
    fn missing_or_mistyped_fields_are_invalid_params() {
        for (method, params) in [
            ("process.stop", json!({"target": true})),
            ("process.start", json!({})),
            ("log.read", json!({"target": "api", "lines": "many"})),
        ] {
            assert!(
                matches!(
                    decoded(method, params.clone()),
                    Err(Refused::InvalidParams { method: m, .. }) if m.as_str() == method
                ),
                "{method} {params}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let stop = decoded(
            "process.stop",
            json!({"target": "api", "from_the_future": {"deep": [1, [2, {"x": "y"}]]}}),
        );
        assert_eq!(
            stop.unwrap(),
            Request::Stop(TargetParams {
                target: Target::Name("api".into())
            })
        );
        assert_eq!(
            decoded("daemon.ping", json!({"x": [1, 2, 3]})).unwrap(),
            Request::Ping
        );
    }

    #[test]
    fn unknown_methods_are_refused_with_their_name_cut_short() {
        let Err(Refused::UnknownMethod(name)) = decoded("process.explode", json!({})) else {
            panic!("not refused as unknown");
        };
        assert_eq!(name, "process.explode");
        let Err(Refused::UnknownMethod(name)) = decoded(&"é".repeat(100_000), json!({})) else {
            panic!("not refused as unknown");
        };
        assert_eq!(name, format!("{}…", "é".repeat(MAX_QUOTED_CHARS)));
    }

    #[test]
    fn nil_params_read_as_an_empty_map() {
        let payload = rpc::encode_request(3, "log.read", &()).unwrap();
        assert!(matches!(
            Request::decode(&payload).unwrap(),
            (3, Err(Refused::InvalidParams { .. }))
        ));
        let payload = rpc::encode_request(3, "process.list", &()).unwrap();
        assert_eq!(Request::decode(&payload).unwrap().1.unwrap(), Request::List);
    }

    #[test]
    fn starts_over_1_mib_of_arguments_and_environment_are_invalid_params() {
        // Just at the limit: 1024 arguments of 1023 bytes, each with its NUL.
        let args = vec!["a".repeat(1023); 1024];
        let at_limit = decoded(
            "process.start",
            json!({"script": "/srv/app.sh", "args": args}),
        );
        assert!(at_limit.is_ok(), "{at_limit:?}");
        let args = vec!["a".repeat(1024); 1024];
        assert!(matches!(
            decoded(
                "process.start",
                json!({"script": "/srv/app.sh", "args": args})
            ),
            Err(Refused::InvalidParams {
                error: Error::StartTooLarge { bytes: 1_049_600 },
                ..
            })
        ));
        let env: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("V{i:02}"), "v".repeat(11_000)))
            .collect();
        for (method, params) in [
            (
                "process.start",
                json!({"script": "/srv/app.sh", "env": env}),
            ),
            ("process.restart", json!({"target": "api", "env": env})),
        ] {
            assert!(
                matches!(
                    decoded(method, params),
                    Err(Refused::InvalidParams {
                        error: Error::StartTooLarge { .. },
                        ..
                    })
                ),
                "{method}"
            );
        }
    }

    #[test]
    fn scale_counts_are_counts_or_changes() {
        let wanted =
            |count: &str, current| ScaleParams::parse("web", count).unwrap().wanted(current);
        assert_eq!(wanted("4", 2), Some(4));
        assert_eq!(wanted("+2", 2), Some(4));
        assert_eq!(wanted("-1", 2), Some(1));
        assert_eq!(wanted("-3", 2), Some(-1));
        for bad in ["", "+", "-", "1.5", "two", "+-1", "99999999999"] {
            let error = ScaleParams::parse("web", bad).unwrap_err();
            assert!(error.contains("give N"), "{bad}: {error}");
        }
        let neither = ScaleParams {
            name: "web".into(),
            to: None,
            by: None,
        };
        assert_eq!(neither.wanted(1), None);
    }

    #[test]
    fn a_request_over_the_budget_is_refused_whole() {
        let nils = vec![vec![(); 1]; crate::budget::MAX_REQUEST_VALUES];
        let payload = rpc::encode_request(1, "daemon.ping", &json!({ "x": nils })).unwrap();
        assert!(matches!(
            Request::decode(&payload),
            Err(Error::TooManyValues { .. })
        ));
    }
}
