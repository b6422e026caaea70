//! The supervisor: the one owner of the process table.
//!
//! Connections, exit watchers, timers and the signal handler send it a [`Command`]; it
//! changes the table and answers on the reply channel that came with the command. It
//! never waits: slow steps run in their own tasks and report back with another command.
//!
//! - A stop sends SIGTERM to the group, arms a timer that sends [`Command::KillTimeout`]
//!   (which sends SIGKILL), and registers a waiter that is woken when the run ends.
//! - Stop, restart, delete and kill resolve their target, start the stops, and a task waits
//!   for every run to end and sends [`Command::Finish`], which completes the request. So
//!   `stop all` stops every process in parallel, and answers when all are gone.
//! - An unexpected exit of a process with autorestart arms a timer (backoff: 100 ms,
//!   doubling, at most 15 s; back to the start once a run lasted `min_uptime`) that sends
//!   [`Command::AutoRestart`]; after `max_restarts` quick failures in a row it gives up and
//!   the process is `errored`. Stop and delete cancel a pending restart.
//! - Every change is written to `state.msgpack` (see `persist`), except during shutdown,
//!   so that the list saved is the one the user wanted running, not the stopped remains.
//! - Event subscribers get a [`ProcessEvent`] for each start, exit, restart, give-up,
//!   stop and delete; a subscriber that does not keep up misses events, never the daemon.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use rustix::process::Signal;
use velos_proto::home::{default_name, validate_name};
use velos_proto::{
    EventKind, Home, LogLines, LogReadParams, PingInfo, ProcessEvent, ProcessInfo, ProcessStatus,
    Request, Response, RpcError, Saved, StartParams, Stream, Target, frame,
};

use crate::error::Error;
use crate::logread::{Snapshot, assemble};
use crate::logs::{self, FOLLOW_QUEUE, FollowItem, Follower, rotated_path};
use crate::persist::{self, SavedList};
use crate::run::launch;
use crate::state::{Entry, EnvPool, Exit, ProcessTable, Spec, Usage, backoff, status_after_exit};
use crate::{process, procstat};

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

/// The answer to a request.
pub type Reply = Sender<Result<Response, RpcError>>;

/// What a `log.follow` request gets: the lines so far, and the stream of new ones.
pub type FollowReply = Sender<Result<(LogLines, Receiver<FollowItem>), RpcError>>;

/// What the supervisor is asked to do.
pub enum Command {
    /// A client's request, with where to send the answer.
    Request {
        /// The request.
        request: Request,
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
    /// A run ended.
    Exited {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
        /// How.
        exit: Exit,
    },
    /// A stop's kill timeout passed.
    KillTimeout {
        /// Which process.
        id: u32,
        /// Which run.
        run: u64,
    },
    /// A backoff delay passed: start the process again.
    AutoRestart {
        /// Which process.
        id: u32,
        /// The run that exited.
        run: u64,
    },
    /// Every stop a request started has ended: complete the request.
    Finish {
        /// What to do now.
        after: After,
        /// The processes it is about.
        ids: Vec<u32>,
        /// Where the answer goes, if anyone waits for one.
        reply: Option<Reply>,
    },
    /// SIGTERM or SIGINT: stop everything and exit.
    Shutdown,
    /// SIGCHLD: collect exited children that no watcher waits for.
    Reap,
    /// `velosd --resurrect`: bring back `state.msgpack`.
    Resurrect,
}

/// What a request does once its processes have stopped.
pub enum After {
    /// `process.stop`: answer with their state.
    Stop,
    /// `process.restart`: start them again, with a new environment if given.
    Restart(Option<BTreeMap<String, String>>),
    /// `process.delete`: remove them.
    Delete,
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
    subscribers: Vec<Sender<ProcessEvent>>,
    /// Followers of every process, added to each process started later too.
    all_followers: Vec<Sender<FollowItem>>,
    /// One copy of each distinct environment (a `RefCell` so that checking a start
    /// request can stay a `&self` method).
    envs: std::cell::RefCell<EnvPool>,
}

impl Supervisor {
    /// A supervisor with an empty table. `commands` is the sending side of its own inbox
    /// (handed to the tasks it starts); `exit` tells the daemon to exit.
    pub fn new(home: Home, commands: Sender<Command>, exit: Sender<()>) -> Supervisor {
        Supervisor {
            home,
            table: ProcessTable::default(),
            commands,
            exit,
            shutting_down: false,
            started_at: Instant::now(),
            subscribers: Vec::new(),
            all_followers: Vec::new(),
            envs: std::cell::RefCell::default(),
        }
    }

    /// Brings back the list in `state.msgpack` (for `velosd --resurrect`): the same ids,
    /// names and settings, and those that were running are started again.
    fn resurrect_state(&mut self) {
        let path = self.home.state_path();
        match persist::read(&path) {
            Ok(Some(list)) => {
                let restored = self.restore(list, true);
                crate::log(format_args!(
                    "resurrected {} process(es) from {}",
                    restored.len(),
                    path.display()
                ));
            }
            Ok(None) => crate::log(format_args!("nothing to resurrect: no {}", path.display())),
            Err(error) => crate::log(format_args!("cannot resurrect: {error}")),
        }
    }

    /// Handles commands until every sender is gone.
    pub async fn run(mut self, inbox: Receiver<Command>) {
        while let Ok(command) = inbox.recv().await {
            self.handle(command);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Request { request, reply } => self.request(request, reply),
            Command::Follow { params, reply } => {
                let _ = reply.try_send(self.follow(params).map_err(RpcError::from));
            }
            Command::Subscribe { reply } => {
                let (tx, rx) = async_channel::bounded(EVENT_QUEUE);
                self.subscribers.push(tx);
                let _ = reply.try_send(rx);
            }
            Command::Exited { id, run, exit } => self.exited(id, run, exit),
            Command::KillTimeout { id, run } => {
                if let Some(entry) = self.table.get(id)
                    && entry.run == run
                    && entry.status == ProcessStatus::Stopping
                    && let Some(pid) = entry.pid
                {
                    process::signal_group(pid, Signal::KILL);
                }
            }
            Command::AutoRestart { id, run } => self.auto_restart(id, run),
            Command::Finish { after, ids, reply } => self.finish(after, ids, reply),
            Command::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.stop_then(After::Exit, &Target::All, None);
                }
            }
            Command::Reap => self.reap(),
            Command::Resurrect => self.resurrect_state(),
        }
    }

    /// Ends our children left by runs that are over, and collects the exited ones.
    fn reap(&self) {
        let managed: Vec<u32> = self.table.iter().filter_map(|entry| entry.pid).collect();
        crate::orphans::reap(self.home.root(), &managed, |id, run| {
            self.table
                .get(id)
                .is_none_or(|entry| entry.run != run || !entry.is_alive())
        });
    }

    fn request(&mut self, request: Request, reply: Reply) {
        let answer = match request {
            Request::Ping => Ok(Response::Pong(self.ping())),
            Request::List => {
                let ids: Vec<u32> = self.table.iter().map(|entry| entry.id).collect();
                Ok(Response::Processes(self.infos(&ids)))
            }
            Request::Info(params) => self.info(&params.target).map(Response::Info),
            Request::Start(params) => self.start(params).map(Response::Started),
            Request::Stop(params) => {
                return self.stop_then(After::Stop, &params.target, Some(reply));
            }
            Request::Restart(params) => {
                if self.shutting_down {
                    Err(Error::ShuttingDown)
                } else {
                    return self.stop_then(After::Restart(params.env), &params.target, Some(reply));
                }
            }
            Request::Delete(params) => {
                return self.stop_then(After::Delete, &params.target, Some(reply));
            }
            Request::Kill => {
                self.shutting_down = true;
                return self.stop_then(After::Kill, &Target::All, Some(reply));
            }
            Request::LogRead(params) => return self.read_logs(params, reply),
            Request::LogFlush(params) => self.flush(&params.target).map(Response::Processes),
            Request::Save => self.save().map(Response::Saved),
            Request::Resurrect => self.resurrect_dump().map(Response::Processes),
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
        }
    }

    /// The processes `ids`, with fresh CPU and memory figures.
    fn infos(&mut self, ids: &[u32]) -> Vec<ProcessInfo> {
        let now = Instant::now();
        for &id in ids {
            if let Some(entry) = self.table.get_mut(id) {
                sample_usage(entry, now);
            }
        }
        ids.iter()
            .filter_map(|&id| self.table.get(id))
            .map(Entry::info)
            .collect()
    }

    fn info(&mut self, target: &Target) -> Result<ProcessInfo, Error> {
        if *target == Target::All {
            return Err(Error::NeedsOne("process.info"));
        }
        let ids = self.table.resolve(target)?;
        Ok(self.infos(&ids).remove(0))
    }

    fn start(&mut self, params: StartParams) -> Result<ProcessInfo, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let id = self.table.next_id();
        let entry = self.new_entry(id, params)?;
        let info = self.insert_and_launch(entry, true)?;
        self.persist();
        Ok(info)
    }

    /// Checks a start request and makes the entry it describes (not yet in the table).
    fn new_entry(&self, id: u32, params: StartParams) -> Result<Entry, Error> {
        let script = PathBuf::from(&params.script);
        if !script.is_absolute() {
            return Err(Error::RelativeScript(params.script));
        }
        let name = match params.name {
            Some(name) => {
                validate_name(&name)?;
                name
            }
            None => {
                let stem = default_name(&script).unwrap_or_default();
                validate_name(&stem).map_err(|reason| Error::BadDefaultName {
                    stem: stem.clone(),
                    reason,
                })?;
                stem
            }
        };
        if self.table.has_name(&name) {
            return Err(Error::AlreadyExists(name));
        }
        if !script.is_file() {
            return Err(Error::ScriptNotFound(params.script));
        }
        let line = process::command_line(&script, params.interpreter.as_deref())?;
        let cwd = match params.cwd {
            Some(cwd) => PathBuf::from(cwd),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        };
        if !cwd.is_dir() {
            return Err(Error::BadCwd(cwd.to_string_lossy().into_owned()));
        }
        let spec = Spec {
            out_log: self.home.log_path(&name, Stream::Out),
            err_log: self.home.log_path(&name, Stream::Err),
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
            autorestart: params.autorestart.unwrap_or(true),
            max_restarts: params.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
            min_uptime: params
                .min_uptime_ms
                .map_or(DEFAULT_MIN_UPTIME, Duration::from_millis),
            max_log_bytes: params.max_log_bytes.filter(|max| *max > 0),
            log_files: params.log_files.unwrap_or(DEFAULT_LOG_FILES),
        };
        Ok(Entry::new(id, name, spec))
    }

    /// Adds `entry` to the table, starting it first when `run`. A failed start adds
    /// nothing.
    fn insert_and_launch(&mut self, mut entry: Entry, run: bool) -> Result<ProcessInfo, Error> {
        if run {
            launch(&mut entry, &self.home, &self.commands)?;
        }
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
            for tx in &self.all_followers {
                ring.follow(Follower::new(tx.clone()));
            }
        }
        let info = entry.info();
        let (id, pid) = (entry.id, entry.pid);
        self.table.insert(entry);
        if run {
            self.emit(id, EventKind::Started, |event| event.pid = pid);
        }
        Ok(info)
    }

    /// Stops every process `target` names, then completes `after` once all have ended.
    fn stop_then(&mut self, after: After, target: &Target, reply: Option<Reply>) {
        let ids = match self.table.resolve(target) {
            Ok(ids) => ids,
            Err(error) => {
                if let Some(reply) = reply {
                    let _ = reply.try_send(Err(error.into()));
                }
                return;
            }
        };
        let waits: Vec<Receiver<()>> = ids.iter().filter_map(|&id| self.stop(id)).collect();
        let commands = self.commands.clone();
        smol::spawn(async move {
            for wait in waits {
                // Err(closed) is the signal: the run ended and dropped its waiters.
                let _ = wait.recv().await;
            }
            let _ = commands.send(Command::Finish { after, ids, reply }).await;
        })
        .detach();
    }

    /// Starts stopping one process; the receiver closes when its run has ended. `None`
    /// when it is not running. A pending automatic restart is cancelled.
    fn stop(&mut self, id: u32) -> Option<Receiver<()>> {
        let entry = self.table.get_mut(id)?;
        if entry.status == ProcessStatus::Waiting {
            entry.restart_timer = None;
            entry.restart_at = None;
            entry.status = ProcessStatus::Stopped;
            self.emit(id, EventKind::Stopped, |_| {});
            return None;
        }
        let pid = entry.pid.filter(|_| entry.is_alive())?;
        let (waiter, wait) = async_channel::bounded(1);
        entry.stop_waiters.push(waiter);
        if entry.status == ProcessStatus::Running {
            entry.status = ProcessStatus::Stopping;
            process::signal_group(pid, Signal::TERM);
            let (commands, run, timeout) =
                (self.commands.clone(), entry.run, entry.spec.kill_timeout);
            entry.kill_timer = Some(smol::spawn(async move {
                Timer::after(timeout).await;
                let _ = commands.send(Command::KillTimeout { id, run }).await;
            }));
        }
        Some(wait)
    }

    fn exited(&mut self, id: u32, run: u64, exit: Exit) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if entry.run != run {
            return;
        }
        let before = entry.status;
        let pid = entry.pid.take();
        entry.status = status_after_exit(before, exit);
        entry.exit = Some(exit);
        entry.kill_timer = None;
        // Dropping the senders wakes every stop waiting for this run.
        entry.stop_waiters.clear();
        self.emit(id, EventKind::Exited, |event| {
            event.pid = pid;
            event.exit_code = exit.code;
            event.signal = exit.signal;
        });
        // Its escaped descendants' own children may have come to us while the run was
        // still counted as live; now that it is over, they go too.
        self.reap();
        if before == ProcessStatus::Stopping {
            self.emit(id, EventKind::Stopped, |_| {});
        } else if self.table.get(id).map(|e| e.status) == Some(ProcessStatus::Errored) {
            self.schedule_restart(id);
        }
        self.persist();
    }

    /// After an unexpected exit: arm the backoff timer, or give up.
    fn schedule_restart(&mut self, id: u32) {
        if self.shutting_down {
            return;
        }
        let commands = self.commands.clone();
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if !entry.spec.autorestart {
            return;
        }
        let lasted = entry.started_at.map_or(Duration::ZERO, |at| at.elapsed());
        if lasted >= entry.spec.min_uptime {
            entry.quick_failures = 0;
        }
        entry.quick_failures += 1;
        if entry.quick_failures > entry.spec.max_restarts {
            let reason = format!(
                "exited {} times in a row within {} of starting; not restarting it (see 'velos logs {}')",
                entry.quick_failures,
                humantime::format_duration(entry.spec.min_uptime),
                entry.name
            );
            entry.error = Some(reason.clone());
            self.emit(id, EventKind::Errored, |event| event.reason = Some(reason));
            return;
        }
        let delay = backoff(entry.quick_failures);
        let run = entry.run;
        entry.status = ProcessStatus::Waiting;
        entry.restart_at = Some(Instant::now() + delay);
        entry.restart_timer = Some(smol::spawn(async move {
            Timer::after(delay).await;
            let _ = commands.send(Command::AutoRestart { id, run }).await;
        }));
        let delay_ms = crate::state::millis(delay);
        self.emit(id, EventKind::Restarting, |event| {
            event.restart_in_ms = Some(delay_ms);
        });
    }

    fn auto_restart(&mut self, id: u32, run: u64) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if entry.run != run || entry.status != ProcessStatus::Waiting || self.shutting_down {
            return;
        }
        entry.restarts += 1;
        self.relaunch(id);
        self.persist();
    }

    /// Starts a stopped process again; a failure leaves it `errored` with the reason.
    fn relaunch(&mut self, id: u32) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        match launch(entry, &self.home, &self.commands) {
            Ok(()) => {
                let pid = entry.pid;
                self.emit(id, EventKind::Started, |event| event.pid = pid);
            }
            Err(error) => {
                let reason = error.to_string();
                entry.status = ProcessStatus::Errored;
                entry.restart_timer = None;
                entry.error = Some(reason.clone());
                self.emit(id, EventKind::Errored, |event| event.reason = Some(reason));
            }
        }
    }

    fn finish(&mut self, after: After, ids: Vec<u32>, reply: Option<Reply>) {
        let answer = match after {
            After::Stop => Ok(Response::Processes(self.infos(&ids))),
            After::Restart(env) => {
                for &id in &ids {
                    let Some(entry) = self.table.get_mut(id) else {
                        continue;
                    };
                    // Another request started it again meanwhile: it is running, as asked.
                    if entry.is_alive() {
                        continue;
                    }
                    if let Some(env) = &env {
                        entry.spec.env = Some(self.envs.borrow_mut().share(env.clone()));
                    }
                    if entry.run > 0 {
                        entry.restarts += 1;
                    }
                    entry.quick_failures = 0;
                    self.relaunch(id);
                }
                self.persist();
                Ok(Response::Processes(self.infos(&ids)))
            }
            After::Delete => {
                let removed = self.infos(&ids);
                for &id in &ids {
                    self.emit(id, EventKind::Deleted, |_| {});
                    if let Some(entry) = self.table.remove(id)
                        && let Some(pid) = entry.pid.filter(|_| entry.is_alive())
                    {
                        // Started again by a racing restart: it is being deleted, so end it.
                        process::signal_group(pid, Signal::KILL);
                    }
                }
                self.persist();
                Ok(Response::Processes(removed))
            }
            After::Kill => Ok(Response::Killed),
            After::Exit => {
                let _ = self.exit.try_send(());
                return;
            }
        };
        if let Some(reply) = reply {
            let _ = reply.try_send(answer);
        }
    }

    /// The snapshots of the lines in memory of `target`, and warnings about its files.
    fn snapshots(
        &self,
        target: &Target,
        wanted: usize,
    ) -> Result<(Vec<Snapshot>, Vec<String>), Error> {
        let mut snapshots = Vec::new();
        let mut warnings = Vec::new();
        for id in self.table.resolve(target)? {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let ring = logs::lock(&entry.ring);
            if let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            snapshots.push(Snapshot::take(entry, &ring, wanted));
        }
        Ok((snapshots, warnings))
    }

    fn read_logs(&mut self, params: LogReadParams, reply: Reply) {
        let wanted = params.lines as usize;
        let (snapshots, warnings) = match self.snapshots(&params.target, wanted) {
            Ok(found) => found,
            Err(error) => {
                let _ = reply.try_send(Err(error.into()));
                return;
            }
        };
        // Older lines come from the files: blocking reads, so off the supervisor's thread.
        smol::spawn(async move {
            let lines = smol::unblock(move || assemble(snapshots, wanted)).await;
            let _ = reply.try_send(Ok(Response::Logs(LogLines { lines, warnings })));
        })
        .detach();
    }

    /// `log.follow`: the last lines now (from memory; following is about what comes),
    /// and a follower registered on every process the target names. Registering under
    /// the same lock as the snapshot means no line falls between the two.
    fn follow(&mut self, params: LogReadParams) -> Result<(LogLines, Receiver<FollowItem>), Error> {
        let ids = self.table.resolve(&params.target)?;
        let (tx, rx) = async_channel::bounded(FOLLOW_QUEUE);
        let wanted = params.lines as usize;
        let mut lines = Vec::new();
        let mut warnings = Vec::new();
        for id in ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            if let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            lines.push(Snapshot::take(entry, &ring, wanted));
            ring.follow(Follower::new(tx.clone()));
        }
        if params.target == Target::All {
            self.all_followers.retain(|tx| !tx.is_closed());
            self.all_followers.push(tx);
        }
        let lines = assemble_in_memory(lines, wanted);
        Ok((LogLines { lines, warnings }, rx))
    }

    fn flush(&mut self, target: &Target) -> Result<Vec<ProcessInfo>, Error> {
        let ids = self.table.resolve(target)?;
        for &id in &ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let mut ring = logs::lock(&entry.ring);
            for path in [&entry.spec.out_log, &entry.spec.err_log] {
                // Truncated in place: the collector's append-mode handle writes on at 0.
                if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
                    let _ = file.set_len(0);
                }
                for back in 1..=u64::from(entry.spec.log_files).max(1) {
                    let _ = std::fs::remove_file(rotated_path(path, back));
                }
            }
            ring.flushed();
        }
        Ok(self.infos(&ids))
    }

    fn save(&mut self) -> Result<Saved, Error> {
        let path = self.home.dump_path();
        let list = SavedList::of(&self.table);
        persist::write(&path, &list)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(Saved {
            path: path.to_string_lossy().into_owned(),
            processes: u32::try_from(self.table.len()).unwrap_or(u32::MAX),
        })
    }

    fn resurrect_dump(&mut self) -> Result<Vec<ProcessInfo>, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let path = self.home.dump_path();
        let list = persist::read(&path)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?
            .ok_or(Error::NothingSaved)?;
        let ids = self.restore(list, false);
        self.persist();
        Ok(self.infos(&ids))
    }

    /// Adds the processes of `list` whose names are free, with their saved ids where
    /// those are free too, and starts those that were running. With `keep_stopped`,
    /// stopped ones come back as stopped entries; otherwise only running ones return
    /// (as PM2's resurrect does).
    fn restore(&mut self, list: SavedList, keep_stopped: bool) -> Vec<u32> {
        let mut ids = Vec::new();
        for saved in list.restore() {
            if (!saved.running && !keep_stopped) || self.table.has_name(&saved.name) {
                continue;
            }
            let id = if self.table.get(saved.id).is_none() {
                saved.id
            } else {
                self.table.next_id()
            };
            let mut entry = match self.new_entry(id, saved.params) {
                Ok(entry) => entry,
                Err(error) => {
                    crate::log(format_args!("cannot bring back '{}': {error}", saved.name));
                    continue;
                }
            };
            entry.restarts = saved.restarts;
            entry.exit = saved.exit;
            if let Err(error) = self.insert_and_launch(entry, saved.running) {
                crate::log(format_args!("cannot start '{}' again: {error}", saved.name));
                continue;
            }
            ids.push(id);
        }
        ids
    }

    /// Writes the current list to `state.msgpack`. Not during shutdown: the list to keep
    /// is the one the user wanted running, not the stopped remains.
    fn persist(&self) {
        if self.shutting_down {
            return;
        }
        let path = self.home.state_path();
        if let Err(error) = persist::write(&path, &SavedList::of(&self.table)) {
            crate::log(format_args!("cannot save {}: {error}", path.display()));
        }
    }

    /// Tells every subscriber about `kind` happening to process `id`.
    fn emit(&mut self, id: u32, kind: EventKind, fill: impl FnOnce(&mut ProcessEvent)) {
        self.subscribers.retain(|tx| !tx.is_closed());
        if self.subscribers.is_empty() {
            return;
        }
        let Some(entry) = self.table.get(id) else {
            return;
        };
        let mut event = ProcessEvent {
            kind,
            id,
            name: entry.name.clone(),
            pid: None,
            exit_code: None,
            signal: None,
            restarts: entry.restarts,
            restart_in_ms: None,
            reason: None,
            time_ms: logs::now_ms(),
        };
        fill(&mut event);
        for tx in &self.subscribers {
            // A full queue: this subscriber misses the event rather than the daemon waiting.
            let _ = tx.try_send(event.clone());
        }
    }
}

/// The last `wanted` lines in memory across snapshots, in arrival order.
fn assemble_in_memory(snapshots: Vec<Snapshot>, wanted: usize) -> Vec<velos_proto::LogLine> {
    let mut lines: Vec<_> = snapshots
        .into_iter()
        .flat_map(Snapshot::into_lines)
        .collect();
    lines.sort_by_key(|line| line.time_ms.unwrap_or(0));
    lines.drain(..lines.len().saturating_sub(wanted));
    lines
}

/// Refreshes the CPU and memory figures of a running entry.
///
/// At most once per [`USAGE_INTERVAL`] per process: a CPU percentage means something over
/// a window, and `list` in a loop should not read `/proc` for every process every time.
fn sample_usage(entry: &mut Entry, now: Instant) {
    let Some(pid) = entry.pid.filter(|_| entry.is_alive()) else {
        entry.usage = Usage::default();
        return;
    };
    if let Some((at, _)) = entry.cpu_sample
        && now.saturating_duration_since(at) < USAGE_INTERVAL
    {
        return;
    }
    let Some(sample) = procstat::sample(pid) else {
        return;
    };
    // Since the previous sample, or (first time) since the run started.
    let (since, cpu_before) = entry
        .cpu_sample
        .or(entry.started_at.map(|at| (at, Duration::ZERO)))
        .unwrap_or((now, Duration::ZERO));
    let wall = now.saturating_duration_since(since).as_secs_f64();
    let cpu = sample.cpu.saturating_sub(cpu_before).as_secs_f64();
    entry.usage = Usage {
        cpu_percent: (wall > 0.0).then(|| (cpu / wall * 1000.0).round() / 10.0),
        memory_bytes: Some(sample.rss_bytes),
    };
    entry.cpu_sample = Some((now, sample.cpu));
}
