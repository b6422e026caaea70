//! The supervisor: the one owner of the process table.
//!
//! Connections, exit watchers, timers and the signal handler send it a [`Command`]; it
//! changes the table and answers on the reply channel that came with the command. It
//! never waits: slow steps run in their own tasks and report back with another command.
//!
//! What happens to a process (spawned, exited, asked to stop, a timer due) is decided by
//! its [`Lifecycle`](crate::lifecycle::Lifecycle): the supervisor feeds it the event and
//! carries out its decisions (`execute.rs`: spawn, signal, arm a timer, report, answer).
//!
//! - A run's watcher (`launch.rs`) reports the leader's exit ([`Command::LeaderExited`])
//!   and is told what is left to end and by when; the run is over ([`Command::Exited`])
//!   when all is gone.
//! - Stop, restart, delete and kill resolve their target, tell each process's lifecycle,
//!   and a task waits until each has answered, then sends [`Command::Finish`], which
//!   completes the request. So `stop all` stops every process in parallel, and answers
//!   when all are gone.
//! - Timers the lifecycle arms (a kill deadline, a restart, readiness) send
//!   [`Command::Timer`].
//! - Every change is queued for `state.msgpack`, and `velos save`/`resurrect` work on
//!   `dump.msgpack` (`saved.rs`).
//! - `log.read`, `log.follow`, `log.flush` and the event subscribers live in `streams.rs`.
//! - The figures of a metrics scrape are copied out in `metrics.rs`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use velos_proto::home::process_name;
use velos_proto::{
    DEFAULT_READY_TIMEOUT, Home, LogLines, LogReadParams, PingInfo, ProcessEvent, ProcessInfo,
    ReadyMode, Request, Response, RestartReason, RpcError, ScaleParams, StartParams, Stream,
    Target, frame,
};

use crate::error::Error;
use crate::follow::{FollowStream, Follower};
use crate::launch::{Ending, launch};
use crate::lifecycle::{Attempt, Event, Exit, Then, Timer};
use crate::logs;
use crate::memory_limit::{DEFAULT_WINDOW, MemoryLimit};
use crate::orphans::{self, Stray};
use crate::persist::{ListEncoder, StateWriter};
use crate::state::{Entry, EnvPool, ProcessTable, Spec, Usage};
use crate::{process, procstat};

mod cron;
mod execute;
mod logfiles;
mod metrics;
mod reload;
mod sampler;
mod saved;
mod signal;
mod streams;

/// The kill timeout when a start request names none.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// Quick failures in a row before velos gives up, when a start request names none.
pub const DEFAULT_MAX_RESTARTS: u32 = 16;
/// How long a run must last to reset the backoff, when a start request names none.
pub const DEFAULT_MIN_UPTIME: Duration = Duration::from_secs(1);
/// Rotated log files kept, when a start request names none.
pub const DEFAULT_LOG_FILES: u32 = 5;
/// The shortest time between two CPU and memory samples of one process.
const USAGE_INTERVAL: Duration = Duration::from_secs(1);
/// Room for events on their way to one subscriber.
const EVENT_QUEUE: usize = 256;
/// Commands handled in one batch before the work done once per batch (a look at our
/// children for every exit and SIGCHLD in it).
const MAX_BATCH: usize = 1024;

/// Test-only: the name whose start panics (see `daemonize::TEST_PANIC_ENV`); only ever set
/// in debug builds.
pub static TEST_PANIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The answer to a request.
pub type Reply = Sender<Result<Response, RpcError>>;

/// What a `log.follow` request gets: the lines so far, and the stream of new ones.
pub type FollowReply = Sender<Result<(LogLines, FollowStream), RpcError>>;

/// What the supervisor is asked to do.
// Commands are moved through the inbox one at a time; boxing a start request's params
// would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// A client's request, with where to send the answer.
    Request {
        /// The request (boxed: a start is large, and every command is as large as the
        /// largest).
        request: Box<Request>,
        /// Where the answer goes.
        reply: Reply,
    },
    /// `log.follow`: the lines so far, then every new line.
    Follow {
        /// Which process (or all) and how many lines first.
        params: LogReadParams,
        /// Where the answer goes.
        reply: FollowReply,
    },
    /// `events.subscribe`: every process event from now on.
    Subscribe {
        /// Where the event stream goes.
        reply: Sender<Receiver<ProcessEvent>>,
    },
    /// A run's leader exited: signal what it left where due, and answer with what is
    /// left to end and the deadline (`launch.rs` waits for it to go).
    LeaderExited {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
        /// The leader's pid.
        pid: u32,
        /// How the leader ended.
        exit: Exit,
        /// Where the answer goes.
        reply: Sender<Ending>,
    },
    /// A run ended: its leader and everything it left are gone.
    Exited {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
        /// How.
        exit: Exit,
        /// Whether what was left at the deadline got SIGKILL.
        killed: bool,
    },
    /// A timer a process's lifecycle armed is due (a kill deadline, a restart, ...).
    Timer {
        /// Which process.
        id: u32,
        /// Which timer.
        timer: Timer,
    },
    /// Every process a request is about has answered: complete the request.
    Finish {
        /// What to do now.
        after: After,
        /// The processes' answers, in the request's order.
        infos: Vec<ProcessInfo>,
        /// Where the answer goes, if anyone waits for one.
        reply: Option<Reply>,
    },
    /// A run's ready probe saw it become ready (`message`, `log:`, `http:` modes).
    Ready {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
    },
    /// A run sent `STATUS=` to its notify socket (the `notify` ready mode).
    Status {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
        /// What it said.
        text: String,
    },
    /// A reload's turn for one process: start its replacement (`reload.rs`).
    ReloadOne {
        /// Which process.
        id: u32,
        /// The environment its replacement starts with (`--update-env`).
        env: Option<crate::state::Env>,
        /// The settings its replacement starts with (a config file's), environment
        /// included.
        spec: Option<Box<Spec>>,
        /// Where its outcome goes.
        waiter: reload::Waiter,
    },
    /// A reload is over: answer it.
    ReloadFinished {
        /// The apps it reloaded, free for the next reload.
        names: Vec<String>,
        /// Each process's outcome, in order.
        outcomes: Vec<velos_proto::ReloadOutcome>,
        /// Where the answer goes.
        reply: Reply,
    },
    /// A restart trigger (a watcher, the memory sampler, a schedule) asks for process
    /// `id` to be started again: reloaded with a ready mode, else restarted; remembered
    /// during a reload and carried out after it; nothing when it is not running, except
    /// that a file change starts an errored app (`Lifecycle`, `Event::Trigger`).
    Trigger {
        /// Which process.
        id: u32,
        /// Why.
        reason: RestartReason,
        /// What caused it, as `info` prints it after "restarted: ".
        detail: String,
    },
    /// A process's file watch cannot see every change (`watch.rs`): say so.
    WatchProblem {
        /// Which process.
        id: u32,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// SIGTERM or SIGINT: stop everything and exit.
    Shutdown,
    /// SIGCHLD: collect exited children that no watcher waits for.
    Reap,
    /// The memory sampler's tick: check the processes with a memory limit.
    SampleMemory,
    /// `velosd --resurrect`: bring back `state.msgpack`.
    Resurrect,
    /// A metrics scrape or readiness probe: the figures of every process (with fresh CPU
    /// and memory when `usage`), see `metrics.rs`.
    Metrics {
        /// Whether CPU and memory are sampled.
        usage: bool,
        /// Where the figures go.
        reply: Sender<crate::metrics::Snapshot>,
    },
}

/// What a stop, restart or delete request does once each of its processes answered.
pub enum After {
    /// `process.stop`, `process.restart`, `process.delete`: answer with their state, as
    /// the method's own response (`Response::Stop`, ...).
    Answer(fn(Vec<ProcessInfo>) -> Response),
    /// `process.scale` down: answer with the app's remaining instances.
    Scaled(String),
    /// `daemon.kill`: answer; the connection then tells the daemon to exit.
    Kill,
    /// Shutdown by signal: tell the daemon to exit.
    Exit,
}

/// Owns the process table.
pub struct Supervisor {
    home: Home,
    table: ProcessTable,
    commands: Sender<Command>,
    exit: Sender<()>,
    shutting_down: bool,
    started_at: Instant,
    /// The build stamp of our executable, taken at start (`daemon.ping`'s `build`).
    build: Option<String>,
    subscribers: Vec<Sender<ProcessEvent>>,
    /// Followers of every process, added to each process started later too.
    all_followers: Vec<Follower>,
    /// One copy of each distinct environment (a `RefCell` so that checking a start
    /// request can stay a `&self` method).
    envs: std::cell::RefCell<EnvPool>,
    /// Where `state.msgpack` updates go.
    state: StateWriter,
    /// Keeps each process's saved bytes between two saves.
    encoder: std::cell::RefCell<ListEncoder>,
    /// The pids of the live leaders velos started (their watchers wait for them): every
    /// other child of ours is a stray.
    leaders: HashSet<u32>,
    /// Leaders that exited in this batch (id, run, pid, exit), answered once the batch
    /// is handled.
    leader_exits: Vec<(u32, u64, u32, Exit, Sender<Ending>)>,
    /// The restart schedule of each process that has one and should run (`cron.rs`), by
    /// its expression; dropping one disarms it.
    cron: HashMap<u32, (String, smol::Task<()>)>,
    /// The timer each process's lifecycle armed (a kill deadline or a restart); dropping
    /// one cancels it.
    timers: HashMap<(u32, bool), smol::Task<()>>,
    /// The apps a reload is under way for (one at a time per app).
    reloading: HashSet<String>,
    /// The reload waiting for each process's replacement, answered when it is over.
    reload_waiters: HashMap<u32, reload::ReloadWaiter>,
    /// The requests waiting for a process's stop, restart or delete, answered with its
    /// state when its lifecycle says so.
    waiters: HashMap<u32, Vec<Sender<ProcessInfo>>>,
    /// A SIGCHLD or an ended run asks for strays to be reaped once the batch is handled.
    reap_pending: bool,
    /// A change asks for `state.msgpack` to be written once the batch is handled.
    persist_pending: std::cell::Cell<bool>,
    /// The memory sampler's timer, while a process with a memory limit runs
    /// (`sampler.rs`).
    sampler: Option<smol::Task<()>>,
}

impl Supervisor {
    /// A supervisor with an empty table. `commands` is the sending side of its own inbox
    /// (handed to the tasks it starts); `exit` tells the daemon to exit.
    pub fn new(
        home: Home,
        commands: Sender<Command>,
        exit: Sender<()>,
        state: StateWriter,
    ) -> Supervisor {
        Supervisor {
            home,
            table: ProcessTable::default(),
            commands,
            exit,
            shutting_down: false,
            started_at: Instant::now(),
            // Taken now: a rebuild later replaces the file, which is what clients detect.
            build: std::env::current_exe()
                .and_then(std::fs::metadata)
                .ok()
                .map(|metadata| velos_proto::build_stamp(&metadata)),
            subscribers: Vec::new(),
            all_followers: Vec::new(),
            envs: std::cell::RefCell::default(),
            state,
            encoder: std::cell::RefCell::default(),
            leaders: HashSet::new(),
            leader_exits: Vec::new(),
            timers: HashMap::new(),
            cron: HashMap::new(),
            reloading: HashSet::new(),
            reload_waiters: HashMap::new(),
            waiters: HashMap::new(),
            reap_pending: false,
            persist_pending: std::cell::Cell::new(false),
            sampler: None,
        }
    }

    /// Handles commands until every sender is gone. Commands that are already queued are
    /// handled together, then [`Supervisor::settle`] does the per-batch work once: so
    /// `stop all` of thousands reads our children list a few times, not once per exit.
    pub async fn serve(mut self, inbox: Receiver<Command>) {
        while let Ok(command) = inbox.recv().await {
            self.handle(command);
            for _ in 1..MAX_BATCH {
                let Ok(command) = inbox.try_recv() else {
                    break;
                };
                self.handle(command);
            }
            self.settle();
        }
    }

    /// The work done once per batch of commands: answer the leaders that exited and
    /// reap strays, from one look at our children; write the list if it changed.
    fn settle(&mut self) {
        self.settle_children();
        self.write_state();
        self.start_sampler();
    }

    fn settle_children(&mut self) {
        if self.leader_exits.is_empty() && !self.reap_pending {
            return;
        }
        let strays = orphans::strays(self.home.root(), &self.leaders);
        for (id, run, pid, exit, reply) in std::mem::take(&mut self.leader_exits) {
            self.leader_exited(id, run, pid, exit, &reply, &strays);
        }
        if std::mem::take(&mut self.reap_pending) {
            orphans::reap(&strays, |id, run| {
                self.table
                    .get(id)
                    .is_none_or(|entry| !entry.lifecycle.is_live_run(run))
            });
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Request { request, reply } => self.request(*request, reply),
            Command::Follow { params, reply } => {
                let _ = reply.try_send(self.follow(params).map_err(RpcError::from));
            }
            Command::Subscribe { reply } => {
                let (tx, rx) = async_channel::bounded(EVENT_QUEUE);
                self.subscribers.push(tx);
                let _ = reply.try_send(rx);
            }
            Command::LeaderExited {
                id,
                run,
                pid,
                exit,
                reply,
            } => self.leader_exits.push((id, run, pid, exit, reply)),
            Command::Exited {
                id,
                run,
                exit,
                killed,
            } => self.exited(id, run, exit, killed),
            Command::Timer { id, timer } => self.timer_due(id, timer),
            Command::Status { id, run, text } => {
                if let Some(entry) = self.table.get_mut(id)
                    && entry.lifecycle.run().is_some_and(|live| live.number == run)
                {
                    entry.status_text = Some(text);
                }
            }
            Command::Ready { id, run } => self.apply(
                id,
                Event::Ready {
                    run,
                    now: Instant::now(),
                },
            ),
            Command::ReloadOne {
                id,
                env,
                spec,
                waiter,
            } => self.reload_one(id, env, spec, waiter),
            Command::ReloadFinished {
                names,
                outcomes,
                reply,
            } => self.reload_finished(names, outcomes, reply),
            Command::Finish {
                after,
                infos,
                reply,
            } => self.finish(after, infos, reply),
            Command::Trigger { id, reason, detail } => self.trigger(id, reason, detail),
            Command::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.stop_then(Then::Stop, After::Exit, &Target::All, None);
                }
            }
            Command::WatchProblem { id, problem } => self.watch_problem(id, problem),
            Command::Reap => self.reap_pending = true,
            Command::SampleMemory => self.sample_memory(),
            Command::Resurrect => self.resurrect_state(),
            Command::Metrics { usage, reply } => {
                let _ = reply.try_send(self.metrics(usage));
            }
        }
    }

    fn request(&mut self, request: Request, reply: Reply) {
        let answer = match request {
            Request::Ping => Ok(Response::Ping(self.ping())),
            Request::List => {
                let ids: Vec<u32> = self.table.iter().map(|entry| entry.id).collect();
                Ok(Response::List(self.infos(&ids)))
            }
            Request::Info(params) => self.info(&params.target).map(Response::Info),
            Request::Start(params) => self.start(params).map(Response::Start),
            Request::Stop(params) => {
                return self.stop_then(
                    Then::Stop,
                    After::Answer(Response::Stop),
                    &params.target,
                    Some(reply),
                );
            }
            Request::Restart(params) => {
                if self.shutting_down {
                    Err(Error::ShuttingDown)
                } else {
                    return self.restart(params, reply);
                }
            }
            Request::Reload(params) => return self.reload(params, reply),
            Request::Delete(params) => {
                let then = Then::Delete { logs: params.logs };
                let after = After::Answer(Response::Delete);
                return self.stop_then(then, after, &params.target, Some(reply));
            }
            Request::Kill => {
                self.shutting_down = true;
                return self.stop_then(Then::Stop, After::Kill, &Target::All, Some(reply));
            }
            Request::LogRead(params) => return self.read_logs(params, reply),
            Request::LogFlush(params) => self.flush(&params.target).map(Response::LogFlush),
            Request::Save(params) => self.save(params.force).map(Response::Save),
            Request::Resurrect => self.resurrect_dump().map(Response::Resurrect),
            Request::Scale(params) => return self.scale(params, reply),
            Request::Signal(params) => self.signal(params).map(Response::Signal),
            // Streams are set up by the connection with their own commands.
            other => Err(Error::NotHere(other.method().as_str())),
        };
        // The client may have gone; nothing to do then.
        let _ = reply.try_send(answer.map_err(RpcError::from));
    }

    fn ping(&self) -> PingInfo {
        PingInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            protocol: frame::VERSION,
            uptime_ms: crate::state::millis(self.started_at.elapsed()),
            processes: u32::try_from(self.table.len()).unwrap_or(u32::MAX),
            state_error: self.state.error(),
            state_pending: self.persist_pending.get() || self.state.pending(),
            max_open_files: crate::fd_limit::limit(),
            max_processes: crate::fd_limit::limit().map(crate::fd_limit::max_processes),
            build: self.build.clone(),
        }
    }

    /// The processes `ids`, with fresh CPU and memory figures.
    fn infos(&mut self, ids: &[u32]) -> Vec<ProcessInfo> {
        self.refresh_usage(ids);
        let mut infos = Vec::with_capacity(ids.len());
        infos.extend(
            ids.iter()
                .filter_map(|&id| self.table.get(id))
                .map(Entry::info),
        );
        infos
    }

    /// Samples the CPU and memory of the processes `ids` whose figures are due (see
    /// [`sample_usage`]). Our children are looked at (for escaped descendants) only when
    /// a running process is due: a list asked for again within [`USAGE_INTERVAL`] reads
    /// nothing under /proc.
    fn refresh_usage(&mut self, ids: &[u32]) {
        let now = Instant::now();
        let due: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| {
                self.table
                    .get(id)
                    .is_some_and(|entry| usage_due(entry, now, USAGE_INTERVAL))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        // One look at our children finds every run's escaped descendants.
        let strays = if due
            .iter()
            .any(|&id| self.table.get(id).is_some_and(Entry::is_alive))
        {
            orphans::strays(self.home.root(), &self.leaders)
        } else {
            Vec::new()
        };
        for id in due {
            if let Some(entry) = self.table.get_mut(id) {
                let escaped = entry
                    .lifecycle
                    .run()
                    .map(|run| escaped_of(&strays, id, run.number))
                    .unwrap_or_default();
                sample_usage(entry, now, &escaped, USAGE_INTERVAL);
            }
        }
    }

    fn info(&mut self, target: &Target) -> Result<ProcessInfo, Error> {
        if *target == Target::All {
            return Err(Error::NeedsOne("process.info"));
        }
        let ids = self.table.resolve(target)?;
        Ok(self.infos(&ids).remove(0))
    }

    /// `process.start`: the app's instances (one unless `instances` says more), each its
    /// own entry numbered 0 to N-1. Answers with instance 0. A start whose first instance
    /// cannot spawn adds nothing; a later instance that cannot stays, errored with the
    /// reason.
    fn start(&mut self, params: StartParams) -> Result<ProcessInfo, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let count = params.instances.unwrap_or(1);
        let id = self.table.next_id();
        let entry = self.new_entry(id, params, 0)?;
        if self.table.has_name(&entry.name) {
            return Err(Error::AlreadyExists(entry.name));
        }
        if TEST_PANIC.get() == Some(&entry.name) {
            panic!(
                "{} asked for a panic on starting '{}'",
                crate::daemonize::TEST_PANIC_ENV,
                entry.name
            );
        }
        let labelled = count > 1;
        let (name, spec) = (entry.name.clone(), entry.spec.clone());
        let mut entry = entry.with_instance(0, labelled);
        let run = entry.lifecycle.runs() + 1;
        // A start that cannot spawn adds nothing.
        let pid = launch(&mut entry, run, &self.home, &self.commands)?;
        self.leaders.insert(pid);
        let decisions = entry.handle(Event::Spawned {
            run,
            pid,
            now: Instant::now(),
        });
        let info = self.insert(entry);
        self.execute(id, decisions);
        for instance in 1..count {
            self.add_instance(&name, &spec, instance, labelled);
        }
        Ok(info)
    }

    /// Adds instance `instance` of the app `name`, with the settings `spec` (its own log
    /// files), and starts it; one that cannot spawn stays, errored with the reason.
    fn add_instance(&mut self, name: &str, spec: &Spec, instance: u32, labelled: bool) -> u32 {
        let id = self.table.next_id();
        let mut spec = spec.clone();
        spec.out_log = self.home.instance_log_path(name, instance, Stream::Out);
        spec.err_log = self.home.instance_log_path(name, instance, Stream::Err);
        let mut entry = Entry::new(id, name.to_owned(), spec).with_instance(instance, labelled);
        let decisions = self.launch_new(&mut entry);
        self.insert(entry);
        self.execute(id, decisions);
        id
    }

    /// Launches the first run of `entry`, which is not in the table yet, and tells its
    /// lifecycle how that went: one that cannot spawn stays, errored with the reason, as
    /// a failed restart does.
    fn launch_new(&mut self, entry: &mut Entry) -> Vec<crate::lifecycle::Decision> {
        let run = entry.lifecycle.runs() + 1;
        let now = Instant::now();
        let event = match launch(entry, run, &self.home, &self.commands) {
            Ok(pid) => {
                self.leaders.insert(pid);
                Event::Spawned { run, pid, now }
            }
            Err(error) => Event::SpawnFailed {
                attempt: Attempt::Asked,
                reason: error.to_string(),
                now,
            },
        };
        entry.handle(event)
    }

    /// `process.scale`: starts instances (lowest free numbers first) or stops and removes
    /// them (highest numbers first, gracefully) until the app has as many as asked.
    /// Answers with the app's instances once the new ones are spawned or the removed ones
    /// have ended.
    fn scale(&mut self, params: ScaleParams, reply: Reply) {
        let name = params.name.clone();
        let instances = self.table.instances(&name);
        let wanted = if self.shutting_down {
            Err(Error::ShuttingDown)
        } else if instances.is_empty() {
            Err(Error::NotFound(Target::Name(name.clone())))
        } else {
            let current = u32::try_from(instances.len()).unwrap_or(u32::MAX);
            match params.wanted(current) {
                None => Err(Error::ScaleCount),
                Some(wanted) if wanted < 1 => Err(Error::ScaleToNone {
                    name: name.clone(),
                    wanted,
                }),
                Some(wanted) => velos_proto::limits::INSTANCES
                    .check(u64::try_from(wanted).unwrap_or(u64::MAX))
                    .map(|wanted| wanted as usize)
                    .map_err(Error::from),
            }
        };
        let wanted = match wanted {
            Ok(wanted) => wanted,
            Err(error) => {
                let _ = reply.try_send(Err(error.into()));
                return;
            }
        };
        if wanted < instances.len() {
            // Highest numbers first: those go.
            let ids = instances[wanted..]
                .iter()
                .rev()
                .map(|&(_, id)| id)
                .collect();
            let then = Then::Delete { logs: false };
            return self.stop_ids(then, After::Scaled(name), ids, Some(reply));
        }
        // The settings of the lowest-numbered instance.
        let spec = self
            .table
            .get(instances[0].1)
            .map(|entry| entry.spec.clone());
        if let Some(spec) = spec {
            for _ in instances.len()..wanted {
                let instance = self.table.free_instance(&name);
                self.add_instance(&name, &spec, instance, true);
            }
        }
        let _ = reply.try_send(Ok(Response::Scale(self.app_infos(&name))));
    }

    /// Every instance of the app `name`, by instance number, with fresh figures.
    pub(super) fn app_infos(&mut self, name: &str) -> Vec<ProcessInfo> {
        let ids: Vec<u32> = self
            .table
            .instances(name)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        self.infos(&ids)
    }

    /// Checks a start request and makes the entry it describes (not yet in the table),
    /// as instance `instance` of its app (which names its log files).
    fn new_entry(&self, id: u32, params: StartParams, instance: u32) -> Result<Entry, Error> {
        let (name, spec) = self.spec_of(params, instance, |_| Ok(()))?;
        Ok(Entry::new(id, name, spec))
    }

    /// Checks a start request and makes the name and spec it describes, as instance
    /// `instance` of its app; `check_name` says whether the name may be used.
    fn spec_of(
        &self,
        params: StartParams,
        instance: u32,
        check_name: impl FnOnce(&str) -> Result<(), Error>,
    ) -> Result<(String, Spec), Error> {
        params.check_ranges()?;
        let script = PathBuf::from(&params.script);
        if !script.is_absolute() {
            return Err(Error::RelativeScript(params.script));
        }
        let name = process_name(params.name.as_deref(), &script)?;
        check_name(&name)?;
        if !script.is_file() {
            return Err(Error::ScriptNotFound(params.script));
        }
        let ready = match params.ready.as_deref() {
            Some(mode) => {
                let mode = mode
                    .parse::<ReadyMode>()
                    .map_err(|e| Error::BadReady(e.to_string()))?;
                crate::readiness::check(&mode).map_err(Error::BadReady)?;
                Some(mode)
            }
            None => None,
        };
        let line = process::command_line(&script, params.interpreter.as_deref())?
            .with_interpreter_args(&script, &params.interpreter_args)?;
        let cwd = match params.cwd {
            Some(cwd) => PathBuf::from(cwd),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        };
        if !cwd.is_dir() {
            return Err(Error::BadCwd(cwd.to_string_lossy().into_owned()));
        }
        let instance_var = params.instance_var.filter(|var| !var.is_empty());
        if let Some(var) = &instance_var
            && !is_variable_name(var)
        {
            return Err(Error::BadInstanceVar(var.clone()));
        }
        let increment_var = params.increment_var.filter(|var| !var.is_empty());
        if let Some(var) = &increment_var {
            crate::state::increment_base(var, params.env.as_ref())
                .map_err(Error::BadIncrementVar)?;
        }
        let kill_signal = match params.kill_signal.as_deref() {
            Some(text) => process::parse_signal(text).map_err(Error::BadSignal)?,
            None => rustix::process::Signal::TERM,
        };
        let watch = crate::watch::WatchSpec::from_params(
            &params.watch,
            &params.watch_ignore,
            params.watch_delay_ms,
            &cwd,
        )?;
        let spec = Spec {
            out_log: self.home.instance_log_path(&name, instance, Stream::Out),
            err_log: self.home.instance_log_path(&name, instance, Stream::Err),
            script,
            interpreter: line.interpreter,
            requested_interpreter: params.interpreter.filter(|i| !i.is_empty()),
            program: line.program,
            program_args: line.program_args,
            args: params.args,
            cwd,
            env: params.env.map(|env| self.envs.borrow_mut().share(env)),
            kill_timeout: params
                .kill_timeout_ms
                .map_or(DEFAULT_KILL_TIMEOUT, Duration::from_millis),
            kill_signal,
            restart: restart_mode(params.restart, params.autorestart)?,
            stop_exit_codes: {
                let mut codes = params.stop_exit_codes;
                codes.sort_unstable();
                codes.dedup();
                codes
            },
            cron: match params.cron_restart.as_deref().map(str::trim) {
                Some(expression) if !expression.is_empty() => {
                    Some(crate::cron::Schedule::parse(expression).map_err(Error::BadCron)?)
                }
                _ => None,
            },
            max_restarts: params.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
            min_uptime: params
                .min_uptime_ms
                .map_or(DEFAULT_MIN_UPTIME, Duration::from_millis),
            max_memory: params.max_memory_bytes.map(|bytes| MemoryLimit {
                bytes,
                window: params
                    .max_memory_for_ms
                    .map_or(DEFAULT_WINDOW, Duration::from_millis),
            }),
            max_log_bytes: params.max_log_bytes.filter(|max| *max > 0),
            log_files: params.log_files.unwrap_or(DEFAULT_LOG_FILES),
            interpreter_args: params.interpreter_args,
            ready,
            ready_timeout: params
                .ready_timeout_ms
                .map_or(DEFAULT_READY_TIMEOUT, Duration::from_millis),
            // Last: a start refused for another reason binds nothing, not even briefly.
            listen: crate::listen::Listeners::bind(&name, &params.listen)?,
            instance_var,
            increment_var,
            watch,
            time: params.time,
        };
        Ok((name, spec))
    }

    /// Adds `entry`, launched or not, to the table (and to the followers of every
    /// process). What its lifecycle decided on launching is the caller's to carry out.
    fn insert(&mut self, entry: Entry) -> ProcessInfo {
        let run = entry.is_alive();
        {
            let mut ring = logs::lock(&entry.ring);
            if !run {
                // Not started, so no collector measured the files: do it here, so that
                // `velos logs` finds the lines they already hold.
                for (stream, path) in [
                    (Stream::Out, &entry.spec.out_log),
                    (Stream::Err, &entry.spec.err_log),
                ] {
                    let len = std::fs::metadata(path).map_or(0, |m| m.len());
                    ring.set_file_len(stream, len);
                }
            }
            for follower in &self.all_followers {
                ring.follow(follower.clone());
            }
        }
        let info = entry.info();
        self.table.insert(entry);
        self.persist();
        info
    }
}

/// Refreshes the CPU and memory figures of a running entry: its whole tree, the leader,
/// its descendants and `escaped` (the run's descendants that left it and came to us).
///
/// Not when the current run's figures are younger than `max_age` ([`USAGE_INTERVAL`] for
/// `list` and `info`): a CPU percentage means something over a window, and `list` in a
/// loop should not read `/proc` for every process every time. In a run's first
/// [`USAGE_INTERVAL`] each request samples again (the program is still loading, so a
/// figure from its first milliseconds would stand for a second), against the run's
/// start. Never before exec: a child that still runs the daemon's binary is not sampled,
/// and until its first sample a run shows no figures (not its predecessor's).
fn sample_usage(entry: &mut Entry, now: Instant, escaped: &[u32], max_age: Duration) {
    let Some(run) = entry.lifecycle.run() else {
        entry.usage = Usage::default();
        return;
    };
    let (number, pid, started_at) = (run.number, run.pid, run.since);
    let young = now.saturating_duration_since(started_at) < USAGE_INTERVAL;
    if !usage_due(entry, now, max_age) {
        return;
    }
    if !procstat::has_exec(pid) {
        return;
    }
    let roots: Vec<u32> = std::iter::once(pid)
        .chain(escaped.iter().copied())
        .collect();
    let Some(sample) = procstat::sample_tree(&roots) else {
        return;
    };
    // Since the previous sample, or (first time) since the run started.
    let (since, cpu_before) = entry.cpu_sample.unwrap_or((started_at, Duration::ZERO));
    let wall = now.saturating_duration_since(since).as_secs_f64();
    let cpu = sample.cpu.saturating_sub(cpu_before).as_secs_f64();
    entry.usage = Usage {
        run: number,
        cpu_percent: (wall > 0.0).then(|| (cpu / wall * 1000.0).round() / 10.0),
        memory_bytes: Some(sample.rss_bytes),
        cpu_total: Some(sample.cpu),
    };
    if !young {
        entry.cpu_sample = Some((now, sample.cpu));
    }
}

/// Whether [`sample_usage`] would do anything for `entry` now: it has no run (its
/// figures are cleared), its run is young, or its last sample is of another run or
/// older than `max_age`.
fn usage_due(entry: &Entry, now: Instant, max_age: Duration) -> bool {
    let Some(run) = entry.lifecycle.run() else {
        return true;
    };
    let young = now.saturating_duration_since(run.since) < USAGE_INTERVAL;
    young
        || entry.usage.run != run.number
        || entry
            .cpu_sample
            .is_none_or(|(at, _)| now.saturating_duration_since(at) >= max_age)
}

/// The descendants of run `run` of process `id` among `strays` (those that left its
/// group and came to us).
fn escaped_of(strays: &[Stray], id: u32, run: u64) -> Vec<u32> {
    strays
        .iter()
        .filter(|stray| stray.run == Some((id, run)))
        .map(|stray| stray.pid)
        .collect()
}

/// The restart mode a start asks for: `restart`, else `never` when `autorestart` is
/// false, else `on-failure`.
fn restart_mode(
    restart: Option<velos_proto::RestartMode>,
    autorestart: Option<bool>,
) -> Result<velos_proto::RestartMode, Error> {
    use velos_proto::RestartMode;
    match (restart, autorestart) {
        (Some(RestartMode::Unknown), _) => Err(Error::BadRestartMode),
        (Some(mode), _) => Ok(mode),
        (None, Some(false)) => Ok(RestartMode::Never),
        (None, _) => Ok(RestartMode::OnFailure),
    }
}

/// Whether `text` can name an environment variable: letters, digits and `_`, not
/// starting with a digit.
fn is_variable_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
