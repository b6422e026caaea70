//! The process table as plain data: entries, their settings, and how they look on the
//! wire.
//!
//! No I/O happens here. The supervisor owns the one [`ProcessTable`] and does the
//! spawning and signalling; where each process is in its life is its
//! [`Lifecycle`], which decides what happens next.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;
use velos_proto::{LastRestart, ProcessInfo, ReadyMode, RestartMode, StartParams, Target};

use crate::error::Error;
use crate::lifecycle::{Cause, Decision, Event, Lifecycle, Policy, Restarted, Settings};
use crate::logs::Logs;
use crate::memory_limit::{MemoryLimit, OverLimit};
use crate::watch::{Watch, WatchSpec};

/// Everything needed to start a process again: what `restart` reuses.
#[derive(Clone)]
pub struct Spec {
    /// The script, absolute.
    pub script: PathBuf,
    /// The interpreter, when the script does not run directly.
    pub interpreter: Option<String>,
    /// The interpreter the user asked for (`--interpreter`), if any.
    pub requested_interpreter: Option<String>,
    /// The program handed to exec and the arguments before the user's (`node`, `[script]`).
    pub program: String,
    /// Arguments that come before `args`: the script path when an interpreter runs it.
    pub program_args: Vec<String>,
    /// The user's arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The whole environment; the daemon's own when `None`. Shared: processes started
    /// from one shell have the same one, kept once (see [`EnvPool`]).
    pub env: Option<Env>,
    /// Time between the stop signal and SIGKILL.
    pub kill_timeout: Duration,
    /// The stop signal (`--kill-signal`; SIGTERM by default).
    pub kill_signal: Signal,
    /// The two log files.
    pub out_log: PathBuf,
    /// The stderr log.
    pub err_log: PathBuf,
    /// Which exits are restarted (never [`RestartMode::Unknown`]).
    pub restart: RestartMode,
    /// Exit codes that are a clean stop, sorted, each once.
    pub stop_exit_codes: Vec<u8>,
    /// Its restart schedule (`--cron-restart`).
    pub cron: Option<crate::cron::Schedule>,
    /// Quick failures in a row before giving up.
    pub max_restarts: u32,
    /// How long a run must last to count as a success.
    pub min_uptime: Duration,
    /// Restart it when its tree stays over this much memory (`--max-memory-restart`).
    pub max_memory: Option<MemoryLimit>,
    /// Rotate a log file at this size.
    pub max_log_bytes: Option<u64>,
    /// Rotated log files kept.
    pub log_files: u32,
    /// The interpreter's own arguments, as requested (already in `program_args`).
    pub interpreter_args: Vec<String>,
    /// The sockets the daemon holds for it (`--listen`), handed to every run; shared by
    /// everything that clones this spec, closed when the last clone goes.
    pub listen: Option<Arc<crate::listen::Listeners>>,
    /// How it says it is ready; without one, it is `running` from its spawn.
    pub ready: Option<ReadyMode>,
    /// How long it may take to be ready, with a ready mode.
    pub ready_timeout: Duration,
    /// The variable that tells an instance its number besides `VELOS_INSTANCE`
    /// (`NODE_APP_INSTANCE` when `None`).
    pub instance_var: Option<String>,
    /// A variable of the environment whose number instance K gets plus K.
    pub increment_var: Option<String>,
    /// What it watches (`--watch`), if anything.
    pub watch: Option<WatchSpec>,
    /// Lines go to the log files after the time they arrived (`--time`, see `stamp`).
    pub time: bool,
}

/// The variable that tells every process its instance number.
pub const INSTANCE_ENV: &str = "VELOS_INSTANCE";
/// The second one, for PM2 compatibility, unless `--instance-var` renames it.
pub const DEFAULT_INSTANCE_VAR: &str = "NODE_APP_INSTANCE";

/// An environment, shared between the processes that have it.
pub type Env = Arc<BTreeMap<String, String>>;

/// Keeps one copy of each distinct environment.
#[derive(Default)]
pub struct EnvPool {
    envs: Vec<std::sync::Weak<BTreeMap<String, String>>>,
}

impl EnvPool {
    /// The shared copy of `env`.
    pub fn share(&mut self, env: BTreeMap<String, String>) -> Env {
        self.envs.retain(|weak| weak.strong_count() > 0);
        if let Some(known) = self
            .envs
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .find(|known| **known == env)
        {
            return known;
        }
        let env = Arc::new(env);
        self.envs.push(Arc::downgrade(&env));
        env
    }
}

impl Spec {
    /// The start request that gives this spec again, without its environment (which
    /// the saved list stores once per distinct environment).
    pub fn params(&self, name: &str) -> StartParams {
        StartParams {
            script: self.script.to_string_lossy().into_owned(),
            name: Some(name.to_owned()),
            args: self.args.clone(),
            interpreter: self.requested_interpreter.clone(),
            cwd: Some(self.cwd.to_string_lossy().into_owned()),
            env: None,
            kill_timeout_ms: Some(millis(self.kill_timeout)),
            autorestart: Some(self.restart != RestartMode::Never),
            max_restarts: Some(self.max_restarts),
            min_uptime_ms: Some(millis(self.min_uptime)),
            max_memory_bytes: self.max_memory.map(|limit| limit.bytes),
            max_memory_for_ms: self.max_memory.map(|limit| millis(limit.window)),
            max_log_bytes: self.max_log_bytes,
            log_files: Some(self.log_files),
            interpreter_args: self.interpreter_args.clone(),
            // As bound: a daemon that brings it back listens on the same port.
            listen: self.listen_addresses(),
            ready: self.ready.as_ref().map(ReadyMode::to_string),
            ready_timeout_ms: self.ready.as_ref().map(|_| millis(self.ready_timeout)),
            instances: None,
            instance_var: self.instance_var.clone(),
            increment_var: self.increment_var.clone(),
            kill_signal: Some(self.kill_signal_name().to_owned()),
            restart: Some(self.restart),
            stop_exit_codes: self.stop_exit_codes.clone(),
            cron_restart: self.cron.as_ref().map(|cron| cron.expression().to_owned()),
            watch: self.watch_paths(),
            watch_ignore: self
                .watch
                .as_ref()
                .map_or_else(Vec::new, |w| w.ignore.clone()),
            watch_delay_ms: self.watch.as_ref().map(|w| millis(w.delay)),
            time: self.time,
        }
    }

    /// The paths it watches, as text; empty when it watches nothing.
    pub fn watch_paths(&self) -> Vec<String> {
        self.watch.as_ref().map_or_else(Vec::new, |watch| {
            watch
                .paths
                .iter()
                .map(|path| path.to_string_lossy().into_owned())
                .collect()
        })
    }

    /// The stop signal's name (`SIGTERM`).
    pub fn kill_signal_name(&self) -> &'static str {
        velos_proto::signal_name(self.kill_signal.as_raw()).unwrap_or("SIGTERM")
    }

    /// The variables instance `instance` gets on top of its environment: its number
    /// (twice) and, with an increment variable, that variable's number plus the instance.
    /// The increment variable was checked at start ([`increment_base`]); one that no
    /// longer reads as a number is left as it is.
    pub fn instance_env(&self, instance: u32) -> Vec<(String, String)> {
        let number = instance.to_string();
        let mut vars = vec![
            (INSTANCE_ENV.to_owned(), number.clone()),
            (
                self.instance_var
                    .clone()
                    .unwrap_or_else(|| DEFAULT_INSTANCE_VAR.to_owned()),
                number,
            ),
        ];
        if let Some(var) = &self.increment_var
            && let Ok(base) = increment_base(var, self.env.as_deref())
        {
            vars.push((var.clone(), (base + u64::from(instance)).to_string()));
        }
        vars
    }

    /// The addresses it listens on, as bound.
    pub fn listen_addresses(&self) -> Vec<String> {
        self.listen
            .as_ref()
            .map_or_else(Vec::new, |listeners| listeners.addresses())
    }
}

/// The number in variable `var` of `env` (the daemon's own environment when `None`):
/// what `--increment-var` adds each instance's number to. The error is one line.
pub fn increment_base(var: &str, env: Option<&BTreeMap<String, String>>) -> Result<u64, String> {
    let value = match env {
        Some(env) => env.get(var).cloned(),
        None => std::env::var(var).ok(),
    };
    let Some(value) = value else {
        return Err(format!(
            "--increment-var {}: the variable is not set; set it to the first instance's value (PORT=3000)",
            velos_proto::echo(var)
        ));
    };
    value.trim().parse::<u64>().map_err(|_| {
        format!(
            "--increment-var {}: its value '{}' is not a whole number",
            velos_proto::echo(var),
            velos_proto::echo(&value)
        )
    })
}

/// A duration in whole milliseconds, saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// CPU and memory of a running process's whole tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// The run they are of (0: none yet): the figures of an earlier run are never shown.
    pub run: u64,
    /// Percent of one core since the previous sample.
    pub cpu_percent: Option<f64>,
    /// Resident bytes.
    pub memory_bytes: Option<u64>,
    /// CPU time the current run's whole tree has used so far.
    pub cpu_total: Option<Duration>,
}

/// How the reloads of a process went, by result (the `velos_reloads_total` metric): a
/// count since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadCounts {
    /// The replacement became ready and took over.
    pub replaced: u64,
    /// The replacement exited or was not ready in time; the old run kept running.
    pub failed: u64,
    /// Nothing to replace (it was not running).
    pub skipped: u64,
}

impl ReloadCounts {
    /// Counts one reload that ended with `result` (`not_reached` is no reload of it).
    pub fn count(&mut self, result: velos_proto::ReloadResult) {
        use velos_proto::ReloadResult;
        let counter = match result {
            ReloadResult::Replaced => &mut self.replaced,
            ReloadResult::Failed => &mut self.failed,
            ReloadResult::Skipped => &mut self.skipped,
            _ => return,
        };
        *counter = counter.saturating_add(1);
    }
}

/// What tells the next daemon, should this one die, that a process group is still the
/// one velos started: the group, its leader's start time and session, and the boot the
/// start time counts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupMark {
    /// The process group (the leader's pid).
    pub pgid: u32,
    /// The leader's start time, in clock ticks since boot.
    pub start_ticks: u64,
    /// The leader's session (the daemon's).
    pub session: u32,
    /// The boot (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// One managed process.
pub struct Entry {
    /// Stable id.
    pub id: u32,
    /// The app's name, the same for all its instances.
    pub name: String,
    /// Which instance of the app it is (0 to N-1); with the name, unique.
    pub instance: u32,
    /// The name its log lines carry: `name:K` for an instance of an app of several,
    /// else the name.
    pub log_name: String,
    /// Settings.
    pub spec: Spec,
    /// Where it is in its life; changed only by [`Lifecycle::handle`].
    pub lifecycle: Lifecycle,
    /// The last CPU sample: when, and the CPU time used by then.
    pub cpu_sample: Option<(Instant, Duration)>,
    /// The latest CPU and memory figures, refreshed on `list` and `info`, and every
    /// second with a memory limit.
    pub usage: Usage,
    /// Where the current run stands against the memory limit, with one.
    pub over_limit: OverLimit,
    /// Its log files and the last lines it wrote, shared with its log collectors.
    pub ring: Arc<Logs>,
    /// The current run's process group, as saved in `state.msgpack` (Linux).
    pub group: Option<GroupMark>,
    /// The last `STATUS=` the current run sent to `$NOTIFY_SOCKET`.
    pub status_text: Option<String>,
    /// Whether the last run outlived its kill timeout and got SIGKILL.
    pub killed: bool,
    /// Its reloads by result.
    pub reloads: ReloadCounts,
    /// Its file watch, while it is watched (`spec.watch`, and not stopped); set by the
    /// supervisor, dropped with the entry.
    pub watch: Option<Watch>,
}

impl Entry {
    /// A process about to be started for the first time.
    pub fn new(id: u32, name: String, spec: Spec) -> Entry {
        let ring = Arc::new(Logs::new(id, &name));
        Entry {
            id,
            log_name: name.clone(),
            name,
            instance: 0,
            spec,
            lifecycle: Lifecycle::new(),
            cpu_sample: None,
            usage: Usage::default(),
            over_limit: OverLimit::default(),
            ring,
            group: None,
            status_text: None,
            killed: false,
            reloads: ReloadCounts::default(),
            watch: None,
        }
    }

    /// Instance `instance` of the app. Its log lines carry `name:K` as their name when
    /// `labelled` (the app has several instances), else the app's name.
    pub fn with_instance(mut self, instance: u32, labelled: bool) -> Entry {
        self.instance = instance;
        if labelled {
            self.log_name = format!("{}:{instance}", self.name);
            self.ring = Arc::new(Logs::new(self.id, &self.log_name));
        }
        self
    }

    /// Moves its lifecycle on by `event` (see [`Lifecycle::handle`]).
    pub fn handle(&mut self, event: Event) -> Vec<Decision> {
        let settings = Settings {
            name: &self.name,
            kill_timeout: self.spec.kill_timeout,
            kill_signal: self.spec.kill_signal,
            policy: Policy {
                restart: self.spec.restart,
                max_restarts: self.spec.max_restarts,
                min_uptime: self.spec.min_uptime,
                watch: self.spec.watch.is_some(),
            },
            ready_timeout: self.spec.ready.as_ref().map(|_| self.spec.ready_timeout),
            stop_exit_codes: &self.spec.stop_exit_codes,
        };
        self.lifecycle.handle(event, &settings)
    }

    /// Whether a run of it is alive.
    pub fn is_alive(&self) -> bool {
        self.lifecycle.is_alive()
    }

    /// This entry as `process.list` shows it.
    pub fn info(&self) -> ProcessInfo {
        let to_string = |path: &PathBuf| path.to_string_lossy().into_owned();
        let life = &self.lifecycle;
        let alive = life.is_alive();
        // Figures of the current run only (a new run has none until sampled after exec).
        let usage = Some(self.usage)
            .filter(|usage| alive && life.run().is_some_and(|run| run.number == usage.run));
        let exit = life.last_exit();
        ProcessInfo {
            id: self.id,
            name: self.name.clone(),
            instance: self.instance,
            pid: life.pid(),
            status: life.status(),
            exit_code: exit.and_then(|exit| exit.code),
            signal: exit.and_then(|exit| exit.signal),
            restarts: life.restarts(),
            uptime_ms: life.run().map(|run| millis(run.since.elapsed())),
            script: to_string(&self.spec.script),
            interpreter: self.spec.interpreter.clone(),
            args: self.spec.args.clone(),
            cwd: to_string(&self.spec.cwd),
            kill_timeout_ms: millis(self.spec.kill_timeout),
            out_log: to_string(&self.spec.out_log),
            err_log: to_string(&self.spec.err_log),
            error: life.error().map(str::to_owned),
            log_error: crate::logs::lock(&self.ring).write_error.clone(),
            autorestart: self.spec.restart != RestartMode::Never,
            restart: self.spec.restart,
            stop_exit_codes: self.spec.stop_exit_codes.clone(),
            cron_restart: self
                .spec
                .cron
                .as_ref()
                .map(|cron| cron.expression().to_owned()),
            cron_next_ms: self
                .spec
                .cron
                .as_ref()
                .filter(|_| life.wants_to_run())
                .and_then(|cron| cron.next_after(SystemTime::now()))
                .map(crate::cron::unix_ms),
            max_restarts: self.spec.max_restarts,
            min_uptime_ms: millis(self.spec.min_uptime),
            max_log_bytes: self.spec.max_log_bytes,
            max_memory_bytes: self.spec.max_memory.map(|limit| limit.bytes),
            max_memory_for_ms: self.spec.max_memory.map(|limit| millis(limit.window)),
            log_files: self.spec.log_files,
            restart_in_ms: life
                .restart_at()
                .map(|at| millis(at.saturating_duration_since(Instant::now()))),
            cpu_percent: usage.and_then(|usage| usage.cpu_percent),
            memory_bytes: usage.and_then(|usage| usage.memory_bytes),
            listen: self.spec.listen_addresses(),
            ready: self.spec.ready.as_ref().map(ReadyMode::to_string),
            ready_timeout_ms: self
                .spec
                .ready
                .as_ref()
                .map(|_| millis(self.spec.ready_timeout)),
            status_text: self.status_text.clone().filter(|_| alive),
            kill_signal: self.spec.kill_signal_name().to_owned(),
            killed: self.killed,
            time: self.spec.time,
            restart_counts: life.restart_counts(),
            last_restart: life.last_restart().map(last_restart),
            watch: self.spec.watch_paths(),
            watch_ignore: self
                .spec
                .watch
                .as_ref()
                .map_or_else(Vec::new, |watch| watch.ignore.clone()),
            watch_delay_ms: self.spec.watch.as_ref().map(|watch| millis(watch.delay)),
            watched: self.watch.as_ref().and_then(|watch| watch.state().watched),
            watch_error: self.watch.as_ref().and_then(|watch| watch.state().problem),
        }
    }
}

/// A restart as `info` shows it, its time in Unix milliseconds.
pub fn last_restart(restarted: &Restarted) -> LastRestart {
    LastRestart {
        reason: restarted.cause.reason,
        detail: restarted.cause.detail.clone(),
        time_ms: unix_ms(restarted.at),
    }
}

/// A restart brought back from a saved list (it started no run of this daemon), or
/// `None` when its time cannot be placed on this clock.
pub fn restarted(last: LastRestart) -> Option<Restarted> {
    let now = SystemTime::now();
    let ago = now
        .duration_since(UNIX_EPOCH + Duration::from_millis(last.time_ms))
        .unwrap_or_default();
    Some(Restarted {
        cause: Cause::new(last.reason, last.detail),
        at: Instant::now().checked_sub(ago)?,
        run: 0,
    })
}

/// The Unix time in milliseconds of `at`, a moment in the past.
fn unix_ms(at: Instant) -> u64 {
    let when = SystemTime::now()
        .checked_sub(at.elapsed())
        .unwrap_or(UNIX_EPOCH);
    when.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// Every managed process, by id, with an index of apps: each name's instances.
#[derive(Default)]
pub struct ProcessTable {
    entries: BTreeMap<u32, Entry>,
    /// For each app's name, its instances' ids by instance number.
    names: HashMap<String, BTreeMap<u32, u32>>,
    /// One past the largest id ever inserted (so it may be 2^32).
    next_id: u64,
}

impl ProcessTable {
    /// The id the next inserted entry gets: one past the largest so far, or, once the
    /// largest id is `u32::MAX` (a saved list can bring such an id back), the lowest free
    /// one. Never an id in use: ids do not wrap.
    pub fn next_id(&self) -> u32 {
        if let Ok(id) = u32::try_from(self.next_id) {
            return id;
        }
        // Fewer than 2^32 entries, so there is a gap; the keys come in order.
        let mut free = 0;
        for &id in self.entries.keys() {
            if id != free {
                break;
            }
            free += 1;
        }
        free
    }

    /// Whether an app has this name.
    pub fn has_name(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// Whether the app `name` has instance `instance`.
    pub fn has_instance(&self, name: &str, instance: u32) -> bool {
        self.names
            .get(name)
            .is_some_and(|instances| instances.contains_key(&instance))
    }

    /// The instances of the app `name`: (instance number, id), by instance number.
    pub fn instances(&self, name: &str) -> Vec<(u32, u32)> {
        self.names
            .get(name)
            .map(|instances| instances.iter().map(|(&k, &id)| (k, id)).collect())
            .unwrap_or_default()
    }

    /// The lowest instance number the app `name` does not use.
    pub fn free_instance(&self, name: &str) -> u32 {
        let mut free = 0;
        for &instance in self.names.get(name).into_iter().flat_map(BTreeMap::keys) {
            if instance != free {
                break;
            }
            free += 1;
        }
        free
    }

    /// Adds an entry; ids are not reused while the daemon runs, until the largest id is
    /// `u32::MAX` (see [`ProcessTable::next_id`]).
    pub fn insert(&mut self, entry: Entry) {
        debug_assert!(!self.has_instance(&entry.name, entry.instance));
        debug_assert!(!self.entries.contains_key(&entry.id));
        self.next_id = self.next_id.max(u64::from(entry.id) + 1);
        self.names
            .entry(entry.name.clone())
            .or_default()
            .insert(entry.instance, entry.id);
        self.entries.insert(entry.id, entry);
    }

    /// Removes an entry.
    pub fn remove(&mut self, id: u32) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(instances) = self.names.get_mut(&entry.name) {
            instances.remove(&entry.instance);
            if instances.is_empty() {
                self.names.remove(&entry.name);
            }
        }
        Some(entry)
    }

    /// The entry with this id.
    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// The entry with this id, to change.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Entry> {
        self.entries.get_mut(&id)
    }

    /// Every entry, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The ids a target names: one, every instance of an app (by instance number), or
    /// every id for `all` (possibly none).
    pub fn resolve(&self, target: &Target) -> Result<Vec<u32>, Error> {
        let found = match target {
            Target::All => return Ok(self.entries.keys().copied().collect()),
            Target::Id(id) => self.entries.contains_key(id).then(|| vec![*id]),
            Target::Name(name) => self
                .names
                .get(name)
                .map(|instances| instances.values().copied().collect()),
            Target::Instance { name, instance } => self
                .names
                .get(name)
                .and_then(|instances| instances.get(instance))
                .map(|&id| vec![id]),
        };
        found.ok_or_else(|| Error::NotFound(target.clone()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn spec() -> Spec {
        Spec {
            script: "/srv/app.js".into(),
            interpreter: Some("node".into()),
            program: "node".into(),
            program_args: vec!["/srv/app.js".into()],
            args: vec![],
            cwd: "/srv".into(),
            env: None,
            kill_timeout: Duration::from_secs(5),
            kill_signal: Signal::TERM,
            out_log: "/h/logs/app-out.log".into(),
            err_log: "/h/logs/app-err.log".into(),
            requested_interpreter: None,
            restart: RestartMode::OnFailure,
            stop_exit_codes: vec![],
            cron: None,
            max_restarts: 16,
            min_uptime: Duration::from_secs(1),
            max_memory: None,
            max_log_bytes: None,
            log_files: 5,
            interpreter_args: vec![],
            listen: None,
            ready: None,
            ready_timeout: Duration::from_secs(30),
            instance_var: None,
            increment_var: None,
            watch: None,
            time: false,
        }
    }

    #[test]
    fn spec_gives_back_its_start_params() {
        let params = spec().params("api");
        assert_eq!(params.name.as_deref(), Some("api"));
        assert_eq!(params.kill_timeout_ms, Some(5000));
        assert_eq!(params.kill_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(params.autorestart, Some(true));
        assert_eq!(params.restart, Some(RestartMode::OnFailure));
        let never = Spec {
            restart: RestartMode::Never,
            stop_exit_codes: vec![0, 3],
            ..spec()
        }
        .params("api");
        assert_eq!(
            (never.autorestart, never.restart, never.stop_exit_codes),
            (Some(false), Some(RestartMode::Never), vec![0, 3])
        );
        assert_eq!(params.script, "/srv/app.js");
    }

    #[test]
    fn targets_resolve_by_id_name_and_all() {
        let mut table = ProcessTable::default();
        table.insert(Entry::new(0, "api".into(), spec()));
        table.insert(Entry::new(1, "worker".into(), spec()));
        assert_eq!(table.resolve(&Target::Name("worker".into())).unwrap(), [1]);
        assert_eq!(table.resolve(&Target::Id(0)).unwrap(), [0]);
        assert_eq!(table.resolve(&Target::All).unwrap(), [0, 1]);
        assert!(matches!(
            table.resolve(&Target::Id(7)),
            Err(Error::NotFound(Target::Id(7)))
        ));
        table.remove(0);
        assert!(!table.has_name("api"));
        assert_eq!(table.next_id(), 2, "ids are not reused");
    }

    #[test]
    fn instances_resolve_by_name_and_by_name_k_and_free_numbers_are_reused() {
        let mut table = ProcessTable::default();
        for (id, instance) in [(0, 0), (1, 1), (2, 2)] {
            table.insert(Entry::new(id, "web".into(), spec()).with_instance(instance, true));
        }
        table.insert(Entry::new(3, "worker".into(), spec()));
        assert_eq!(
            table.resolve(&Target::Name("web".into())).unwrap(),
            [0, 1, 2]
        );
        let web1 = Target::Instance {
            name: "web".into(),
            instance: 1,
        };
        assert_eq!(table.resolve(&web1).unwrap(), [1]);
        assert_eq!(table.free_instance("web"), 3);
        table.remove(1);
        assert!(matches!(table.resolve(&web1), Err(Error::NotFound(_))));
        assert_eq!(table.free_instance("web"), 1, "the lowest free number");
        assert_eq!(table.instances("web"), [(0, 0), (2, 2)]);
        assert_eq!(table.get(2).unwrap().info().instance, 2);
        table.remove(0);
        table.remove(2);
        assert!(!table.has_name("web"));
        assert_eq!(table.free_instance("web"), 0);
    }

    #[test]
    fn each_instance_gets_its_number_and_an_incremented_variable() {
        let mut spec = spec();
        spec.env = Some(Arc::new(BTreeMap::from([("PORT".into(), "3000".into())])));
        spec.increment_var = Some("PORT".into());
        let vars = spec.instance_env(2);
        assert_eq!(
            vars,
            [
                ("VELOS_INSTANCE".to_owned(), "2".to_owned()),
                ("NODE_APP_INSTANCE".to_owned(), "2".to_owned()),
                ("PORT".to_owned(), "3002".to_owned()),
            ]
        );
        spec.instance_var = Some("INSTANCE_ID".into());
        assert_eq!(spec.instance_env(0)[1], ("INSTANCE_ID".into(), "0".into()));
        let env = BTreeMap::from([("PORT".to_owned(), "eighty".to_owned())]);
        assert!(
            increment_base("PORT", Some(&env))
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            increment_base("NOPE", Some(&env))
                .unwrap_err()
                .contains("not set")
        );
    }

    #[test]
    fn ids_never_wrap() {
        let mut table = ProcessTable::default();
        table.insert(Entry::new(u32::MAX - 1, "z".into(), spec()));
        assert_eq!(table.next_id(), u32::MAX);
        table.insert(Entry::new(table.next_id(), "x".into(), spec()));
        assert_eq!(
            table.next_id(),
            0,
            "the lowest free id once u32::MAX is taken"
        );
        table.insert(Entry::new(table.next_id(), "y".into(), spec()));
        assert_eq!(table.next_id(), 1);
        table.insert(Entry::new(table.next_id(), "w".into(), spec()));
        table.remove(0);
        assert_eq!(table.next_id(), 0);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn info_shows_only_the_current_runs_figures() {
        let mut entry = Entry::new(0, "api".into(), spec());
        entry.handle(Event::Spawned {
            run: 1,
            pid: 10,
            now: Instant::now(),
        });
        entry.usage = Usage {
            run: 1,
            cpu_percent: Some(50.0),
            memory_bytes: Some(600 << 20),
            cpu_total: None,
        };
        assert_eq!(entry.info().memory_bytes, Some(600 << 20));
        // A later run that has not been sampled yet (not exec'd, say) shows nothing.
        entry.usage.run = 0;
        let info = entry.info();
        assert_eq!((info.cpu_percent, info.memory_bytes), (None, None));
    }

    #[test]
    fn info_shows_uptime_only_while_alive() {
        let mut entry = Entry::new(0, "api".into(), spec());
        assert_eq!(entry.info().uptime_ms, None);
        entry.handle(Event::Spawned {
            run: 1,
            pid: 10,
            now: Instant::now(),
        });
        let info = entry.info();
        assert!(info.uptime_ms.is_some());
        assert_eq!(
            (info.pid, info.status),
            (Some(10), velos_proto::ProcessStatus::Running)
        );
    }
}
