//! The supervisor: the one owner of the process table.
//!
//! Connections, exit watchers, kill timers and the signal handler send it a [`Command`];
//! it changes the table and answers on the reply channel that came with the command. It
//! never waits: slow steps run in their own tasks and report back with another command.
//!
//! - A stop sends SIGTERM to the group, arms a timer that sends [`Command::KillTimeout`]
//!   (which sends SIGKILL), and registers a waiter that is woken when the run ends.
//! - Stop, restart, delete and kill resolve their target, start the stops, and a task waits
//!   for every run to end and sends [`Command::Finish`], which completes the request. So
//!   `stop all` stops every process in parallel, and answers when all are gone.
//! - Each run has a watcher task: it waits for the child's exit, ends whatever is left of
//!   its process group, lets the log pipes drain, and sends [`Command::Exited`] tagged with
//!   the run number, so news about an earlier run is ignored.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::FutureExt;
use rustix::process::Signal;
use smol::Task;
use velos_proto::home::{default_name, validate_name};
use velos_proto::{
    Home, LogLine, LogLines, LogReadParams, PingInfo, ProcessInfo, Request, Response, RpcError,
    StartParams, Stream, Target, frame,
};

use crate::error::Error;
use crate::logs::{self, MAX_LINE_BYTES};
use crate::state::{Entry, Exit, ProcessTable, Spec, status_after_exit};
use crate::{orphans, process};

/// The kill timeout when a start request names none.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ended run's watcher waits for its log pipes to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// The most bytes of log lines one `log.read` answer carries, well under the frame limit.
const MAX_LOG_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// The answer to a request.
pub type Reply = Sender<Result<Response, RpcError>>;

/// What the supervisor is asked to do.
pub enum Command {
    /// A client's request, with where to send the answer.
    Request {
        /// The request.
        request: Request,
        /// Where the answer goes.
        reply: Reply,
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
            Command::Exited { id, run, exit } => self.exited(id, run, exit),
            Command::KillTimeout { id, run } => {
                if let Some(entry) = self.table.get(id)
                    && entry.run == run
                    && entry.status == velos_proto::ProcessStatus::Stopping
                    && let Some(pid) = entry.pid
                {
                    process::signal_group(pid, Signal::KILL);
                }
            }
            Command::Finish { after, ids, reply } => self.finish(after, ids, reply),
            Command::Reap => orphans::reap(&self.managed_pids()),
            Command::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.stop_then(After::Exit, &Target::All, None);
                }
            }
        }
    }

    fn request(&mut self, request: Request, reply: Reply) {
        let answer = match request {
            Request::Ping => Ok(Response::Pong(self.ping())),
            Request::List => Ok(Response::Processes(self.list())),
            Request::Start(params) => self
                .start(params)
                .map(Response::Started)
                .map_err(RpcError::from),
            Request::Stop(params) => {
                return self.stop_then(After::Stop, &params.target, Some(reply));
            }
            Request::Restart(params) => {
                if self.shutting_down {
                    Err(Error::ShuttingDown.into())
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
            other => Err(RpcError::new(
                velos_proto::ErrorCode::UnknownMethod,
                format!(
                    "velosd {} cannot answer {}",
                    env!("CARGO_PKG_VERSION"),
                    other.method()
                ),
            )),
        };
        // The client may have gone; nothing to do then.
        let _ = reply.try_send(answer);
    }

    /// Pids that a run's watcher waits for.
    fn managed_pids(&self) -> Vec<u32> {
        self.table.iter().filter_map(|entry| entry.pid).collect()
    }

    fn ping(&self) -> PingInfo {
        PingInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            protocol: frame::VERSION,
            uptime_ms: u64::try_from(self.started_at.elapsed().as_millis()).unwrap_or(u64::MAX),
            processes: u32::try_from(self.table.len()).unwrap_or(u32::MAX),
        }
    }

    fn list(&self) -> Vec<ProcessInfo> {
        self.table.iter().map(Entry::info).collect()
    }

    fn start(&mut self, params: StartParams) -> Result<ProcessInfo, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
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
            program: line.program,
            program_args: line.program_args,
            args: params.args,
            cwd,
            env: params.env,
            kill_timeout: params
                .kill_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_KILL_TIMEOUT),
        };
        let mut entry = Entry::new(self.table.next_id(), name, spec);
        launch(&mut entry, &self.home, &self.commands)?;
        let info = entry.info();
        self.table.insert(entry);
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
    /// when it is not running.
    fn stop(&mut self, id: u32) -> Option<Receiver<()>> {
        let entry = self.table.get_mut(id)?;
        let pid = entry.pid.filter(|_| entry.is_alive())?;
        let (waiter, wait) = async_channel::bounded(1);
        entry.stop_waiters.push(waiter);
        if entry.status == velos_proto::ProcessStatus::Running {
            entry.status = velos_proto::ProcessStatus::Stopping;
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
        entry.status = status_after_exit(entry.status, exit);
        entry.pid = None;
        entry.exit = Some(exit);
        entry.kill_timer = None;
        // Dropping the senders wakes every stop waiting for this run.
        entry.stop_waiters.clear();
    }

    fn finish(&mut self, after: After, ids: Vec<u32>, reply: Option<Reply>) {
        let infos = |table: &ProcessTable| -> Vec<ProcessInfo> {
            ids.iter()
                .filter_map(|&id| table.get(id))
                .map(Entry::info)
                .collect()
        };
        let answer = match after {
            After::Stop => Ok(Response::Processes(infos(&self.table))),
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
                        entry.spec.env = Some(env.clone());
                    }
                    if entry.run > 0 {
                        entry.restarts += 1;
                    }
                    if let Err(error) = launch(entry, &self.home, &self.commands) {
                        entry.status = velos_proto::ProcessStatus::Errored;
                        entry.error = Some(error.to_string());
                    }
                }
                Ok(Response::Processes(infos(&self.table)))
            }
            After::Delete => {
                let removed = infos(&self.table);
                for &id in &ids {
                    if let Some(entry) = self.table.remove(id)
                        && let Some(pid) = entry.pid.filter(|_| entry.is_alive())
                    {
                        // Started again by a racing restart: it is being deleted, so end it.
                        process::signal_group(pid, Signal::KILL);
                    }
                }
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

    fn read_logs(&mut self, params: LogReadParams, reply: Reply) {
        let ids = match self.table.resolve(&params.target) {
            Ok(ids) => ids,
            Err(error) => {
                let _ = reply.try_send(Err(error.into()));
                return;
            }
        };
        let wanted = params.lines as usize;
        let mut snapshots: Vec<Snapshot> = Vec::new();
        let mut warnings = Vec::new();
        for id in ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let ring = logs::lock(&entry.ring);
            let lines = ring
                .last(wanted)
                .map(|line| LogLine {
                    id,
                    name: entry.name.clone(),
                    stream: line.stream,
                    line: line.bytes.to_vec(),
                    partial: line.partial,
                    time_ms: Some(line.time_ms),
                })
                .collect();
            if let Some(error) = &ring.write_error {
                warnings.push(format!("{}: {error}", entry.name));
            }
            snapshots.push(Snapshot {
                id,
                name: entry.name.clone(),
                lines,
                boundaries: ring.file_boundaries(),
                files: [entry.spec.out_log.clone(), entry.spec.err_log.clone()],
            });
        }
        // Older lines come from the files: blocking reads, so off the supervisor's thread.
        smol::spawn(async move {
            let lines = smol::unblock(move || assemble(snapshots, wanted)).await;
            let _ = reply.try_send(Ok(Response::Logs(LogLines { lines, warnings })));
        })
        .detach();
    }
}

/// One process's log lines in memory, and where its files' older lines end.
struct Snapshot {
    id: u32,
    name: String,
    lines: Vec<LogLine>,
    boundaries: [u64; 2],
    files: [PathBuf; 2],
}

/// The last `wanted` lines across snapshots, oldest first: memory first, then older
/// lines from the files (stdout's before stderr's, since the files do not record how
/// the two interleaved), bounded in bytes.
fn assemble(snapshots: Vec<Snapshot>, wanted: usize) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = Vec::new();
    for snapshot in snapshots {
        let missing = wanted.saturating_sub(snapshot.lines.len());
        let mut older: Vec<LogLine> = Vec::new();
        if missing > 0 {
            for (stream, (file, end)) in [Stream::Out, Stream::Err]
                .into_iter()
                .zip(snapshot.files.iter().zip(snapshot.boundaries))
            {
                let read = logs::tail_lines(file, end, missing).unwrap_or_default();
                let last = read.lines.len().saturating_sub(1);
                older.extend(read.lines.into_iter().enumerate().map(|(i, line)| LogLine {
                    id: snapshot.id,
                    name: snapshot.name.clone(),
                    stream,
                    line,
                    partial: i == last && read.last_partial,
                    time_ms: None,
                }));
            }
            older.drain(..older.len().saturating_sub(missing));
        }
        all.extend(older);
        all.extend(snapshot.lines);
    }
    // Across processes, lines read back from files (no time) sort first; a stable sort
    // keeps each process's own order.
    all.sort_by_key(|line| line.time_ms.unwrap_or(0));
    all.drain(..all.len().saturating_sub(wanted));
    let mut bytes = 0;
    let keep_from = all
        .iter()
        .rposition(|line| {
            bytes += line.line.len().min(MAX_LINE_BYTES) + 64;
            bytes > MAX_LOG_REPLY_BYTES
        })
        .map_or(0, |i| i + 1);
    all.drain(..keep_from);
    all
}

/// Starts a run of `entry`: spawns the child, its two log collectors and its watcher.
fn launch(entry: &mut Entry, home: &Home, commands: &Sender<Command>) -> Result<(), Error> {
    let run = entry.run + 1;
    let token = orphans::token(entry.id, run, home.root());
    let id = entry.id.to_string();
    let marks = [
        (orphans::RUN_ENV, token.as_str()),
        ("VELOS_ID", id.as_str()),
        ("VELOS_NAME", entry.name.as_str()),
    ];
    let mut child = process::spawn(&entry.spec, &marks)?;
    let pid = child.id();
    entry.run = run;
    let collectors = [
        (Stream::Out, &entry.spec.out_log),
        (Stream::Err, &entry.spec.err_log),
    ]
    .map(|(stream, path)| {
        let file = logs::LogFile::open(path.clone(), &entry.ring, stream);
        let ring = entry.ring.clone();
        match stream {
            Stream::Out => child
                .stdout
                .take()
                .map(|pipe| smol::spawn(logs::collect(pipe, file, ring, stream))),
            Stream::Err => child
                .stderr
                .take()
                .map(|pipe| smol::spawn(logs::collect(pipe, file, ring, stream))),
        }
    });
    let watched = Run {
        id: entry.id,
        run,
        pid,
        token,
    };
    smol::spawn(watch(child, watched, collectors, commands.clone())).detach();
    entry.status = velos_proto::ProcessStatus::Running;
    entry.pid = Some(pid);
    entry.started_at = Some(Instant::now());
    entry.exit = None;
    entry.error = None;
    Ok(())
}

/// Which run a watcher watches.
struct Run {
    id: u32,
    run: u64,
    pid: u32,
    token: String,
}

/// Waits for one run to end and reports it.
async fn watch(
    mut child: async_process::Child,
    Run {
        id,
        run,
        pid,
        token,
    }: Run,
    collectors: [Option<Task<()>>; 2],
    commands: Sender<Command>,
) {
    let exit = match child.status().await {
        Ok(status) => Exit {
            code: status.code(),
            signal: status.signal(),
        },
        Err(_) => Exit {
            code: None,
            signal: None,
        },
    };
    // Members of the group that outlived the leader would be orphans: end them too, and
    // the descendants that left the group (re-parented to us by now, see `orphans`).
    process::signal_group(pid, Signal::KILL);
    orphans::signal_all(&orphans::escaped(&token, &[]), Signal::KILL);
    // Let the pipes drain so the last lines are in the logs when the exit is reported. A
    // writer that left the group may hold a pipe open, so the wait is bounded, and after
    // it the collectors go on by themselves.
    let [mut out, mut err] = collectors;
    let drained = async {
        if let Some(out) = &mut out {
            out.await;
        }
        if let Some(err) = &mut err {
            err.await;
        }
        true
    }
    .or(async {
        Timer::after(DRAIN_TIMEOUT).await;
        false
    })
    .await;
    if !drained {
        out.into_iter().chain(err).for_each(Task::detach);
    }
    let _ = commands.send(Command::Exited { id, run, exit }).await;
}
