//! Launching one run of a process: spawn it with its log collectors, and watch it end.
//!
//! [`launch`] spawns the child, a collector task per pipe and a watcher task. The
//! watcher waits for the leader's exit and reports it ([`Command::LeaderExited`]); the
//! supervisor answers with an [`Ending`]: the run's escaped descendants and the deadline
//! (it has sent the stop signal where one was due). The watcher then waits until the
//! process group and those descendants are gone, SIGKILLs what is left at the deadline,
//! lets the pipes drain (bounded), and reports [`Command::Exited`] tagged with the run
//! number, so news about an earlier run is recognised and ignored. So a stop returns
//! when the whole tree is gone, not when the leader is.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use async_channel::Sender;
use async_io::Timer;
use futures_lite::FutureExt;
use rustix::process::Signal;
use smol::Task;
use velos_proto::{Home, ReadyMode, Stream};

use crate::error::Error;
use crate::lifecycle::Exit;
use crate::logfile::Rotation;
use crate::logs;
use crate::notify::RunSocket;
use crate::state::{Entry, GroupMark};
use crate::supervisor::Command;
use crate::{orphans, process, procstat, readiness};

/// How long an ended run's watcher waits for its log pipes to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts run number `run` of `entry`: spawns the child, its two log collectors and its
/// watcher. Returns the leader's pid; what the run means for the entry's lifecycle is
/// the caller's to say ([`Event::Spawned`](crate::lifecycle::Event::Spawned)).
pub fn launch(
    entry: &mut Entry,
    run: u64,
    home: &Home,
    commands: &Sender<Command>,
) -> Result<u32, Error> {
    let token = orphans::token(entry.id, run, home.root());
    let id = entry.id.to_string();
    let instance = entry.spec.instance_env(entry.instance);
    let mut marks = vec![
        (orphans::RUN_ENV, token.as_str()),
        ("VELOS_ID", id.as_str()),
        ("VELOS_NAME", entry.name.as_str()),
    ];
    marks.extend(
        instance
            .iter()
            .map(|(var, value)| (var.as_str(), value.as_str())),
    );
    // The run's own notify socket for the `notify` ready mode.
    let notify = match entry.spec.ready {
        Some(ReadyMode::Notify) => Some(RunSocket::bind(home.root(), entry.id, run).map_err(
            |error| {
                Error::Io(format!(
                    "cannot bind the notify socket in {}: {error}",
                    home.root().display()
                ))
            },
        )?),
        _ => None,
    };
    let notify_path = notify
        .as_ref()
        .map(|socket| socket.path().to_string_lossy().into_owned());
    if let Some(path) = &notify_path {
        marks.push(("NOTIFY_SOCKET", path));
    }
    // Opened once, before the spawn: a start whose log file velos would not use is
    // refused rather than run with its output going nowhere.
    let files = match logs::writes_files() {
        true => Some([
            open_log(&entry.spec.out_log)?,
            open_log(&entry.spec.err_log)?,
        ]),
        false => None,
    };
    // Node's IPC channel for the `message` ready mode: the child's end under its number.
    let (ipc, child_end) = match entry.spec.ready {
        Some(ReadyMode::Message) => {
            let (ours, theirs) = readiness::ipc_channel().map_err(|source| Error::Spawn {
                program: entry.spec.program.clone(),
                source,
            })?;
            (Some(ours), Some(theirs))
        }
        _ => (None, None),
    };
    let channel_fd = child_end.as_ref().map(|fd| fd.as_raw_fd().to_string());
    if let Some(fd) = &channel_fd {
        marks.push(("NODE_CHANNEL_FD", fd));
        marks.push(("NODE_CHANNEL_SERIALIZATION_MODE", "json"));
    }
    // Started before the spawn, so that a log probe follows the run's first line.
    let probe = entry.spec.ready.as_ref().and_then(|mode| {
        let timeout = entry.spec.ready_timeout;
        let channels = readiness::Channels { ipc, notify };
        readiness::probe(
            mode,
            (entry.id, run),
            timeout,
            &entry.ring,
            channels,
            commands,
        )
    });
    let child = process::spawn(&entry.spec, &marks, child_end.as_ref())?;
    // The child has its copy now.
    drop(child_end);
    let pid = child.id();
    entry.cpu_sample = None;
    entry.status_text = None;
    entry.group = procstat::status(pid)
        .zip(procstat::boot_id())
        .map(|(status, boot_id)| GroupMark {
            pgid: pid,
            start_ticks: status.start_ticks,
            session: status.session,
            boot_id,
        });
    let rotation = entry.spec.max_log_bytes.map(|max_bytes| Rotation {
        max_bytes,
        keep: entry.spec.log_files,
    });
    // Without files (`--no-log-files`), the collectors keep the lines in memory only (and
    // stamp nothing: the ring has each line's time).
    let stamped = entry.spec.time && logs::writes_files();
    entry.ring.ring().set_stamped(stamped);
    if let Some([out, err]) = files {
        let ring = &entry.ring;
        ring.open(Stream::Out, entry.spec.out_log.clone(), rotation, out);
        ring.open(Stream::Err, entry.spec.err_log.clone(), rotation, err);
    }
    let watched = Watched {
        id: entry.id,
        run,
        pid,
        token,
        logs: entry.ring.clone(),
        stamped,
    };
    smol::spawn(watch(child, watched, probe, commands.clone())).detach();
    Ok(pid)
}

/// A run's log file opened for its collector (see `logfile::open_log`); refused when it
/// is something velos would not write to (a link, a FIFO, another user's file). Other
/// failures (a full disk, a deleted `logs/`) are left to the log writer, which retries.
fn open_log(path: &std::path::Path) -> Result<std::io::Result<(std::fs::File, u64)>, Error> {
    match crate::logfile::open_log(path) {
        Err(error) if crate::paths::is_refused(&error) => {
            Err(Error::Io(format!("cannot use {}: {error}", path.display())))
        }
        opened => Ok(opened),
    }
}

/// Which run a watcher watches.
struct Watched {
    /// The process's id.
    id: u32,
    /// The run's number.
    run: u64,
    /// The leader's pid (and group).
    pid: u32,
    /// The mark in the run's environment that finds its escaped descendants.
    token: String,
    /// Where its output goes.
    logs: std::sync::Arc<logs::Logs>,
    /// Whether its log lines are stamped (`--time`).
    stamped: bool,
}

/// What the supervisor says when a run's leader has exited: what is left to end, and by
/// when (the stop's deadline, or the kill timeout from now when the leader exited by
/// itself and left processes behind; now when nothing is left).
pub struct Ending {
    /// The run's descendants that left its process group, re-parented to the daemon.
    pub escaped: Vec<u32>,
    /// When whatever is still alive gets SIGKILL.
    pub deadline: Instant,
}

/// How long processes get to vanish after SIGKILL (one in uninterruptible sleep may take
/// a moment) before the watcher reports the run over anyway.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// The first and the longest pause between two looks at what is left of a run.
const FIRST_POLL: Duration = Duration::from_millis(5);
const LONGEST_POLL: Duration = Duration::from_millis(100);

/// Starts the run's collectors, then waits for it to end and reports it.
///
/// The collectors start here, when the watcher first runs: after the supervisor has
/// answered the request that launched the run and yielded, so that the answer does not
/// wait behind waking the collectors' thread. What the run writes meanwhile waits in its
/// pipes.
async fn watch(
    mut child: process::Child,
    Watched {
        id,
        run,
        pid,
        token,
        logs,
        stamped,
    }: Watched,
    probe: Option<Task<()>>,
    commands: Sender<Command>,
) {
    let collect = |pipe, stream| logs::spawn_collector(pipe, logs.clone(), stream, stamped);
    let collectors = [
        child.stdout.take().map(|pipe| collect(pipe, Stream::Out)),
        child.stderr.take().map(|pipe| collect(pipe, Stream::Err)),
    ];
    drop(logs);
    let exit = match child.status().await {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            Exit {
                code: status.code(),
                signal: status.signal(),
            }
        }
        Err(_) => Exit {
            code: None,
            signal: None,
        },
    };
    // The leader is gone; what it leaves (the rest of its group, and descendants that
    // left the group) ends under the supervisor's rules: the supervisor signals and
    // names the deadline, this task waits for the tree to empty and escalates.
    // A run whose leader is gone says nothing more about being ready.
    drop(probe);
    let (reply, answer) = async_channel::bounded(1);
    let _ = commands
        .send(Command::LeaderExited {
            id,
            run,
            pid,
            exit,
            reply,
        })
        .await;
    let ending = match answer.recv().await {
        Ok(ending) => ending,
        // No supervisor to ask, or the entry is gone: end everything at once.
        Err(_) => Ending {
            escaped: orphans::with_token(&token),
            deadline: Instant::now(),
        },
    };
    let killed = end_tree(pid, &ending).await;
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
    let _ = commands
        .send(Command::Exited {
            id,
            run,
            exit,
            killed,
        })
        .await;
}

/// Waits until nothing is left of the group `pgid` and of `ending.escaped`; SIGKILLs
/// whatever is still there at `ending.deadline`. Polls with a growing pause: there is
/// no event for "this group is empty", and most groups are empty at the first look.
/// Says whether anything had to be SIGKILLed.
async fn end_tree(pgid: u32, ending: &Ending) -> bool {
    let alive = || {
        process::group_exists(pgid)
            || ending
                .escaped
                .iter()
                .any(|&pid| process::exists(pid) || process::group_exists(pid))
    };
    let mut pause = FIRST_POLL;
    let mut killed_at: Option<Instant> = None;
    while alive() {
        let now = Instant::now();
        let wake = match killed_at {
            None if now >= ending.deadline => {
                process::signal_group(pgid, Signal::KILL);
                orphans::signal_all(&ending.escaped, Signal::KILL);
                killed_at = Some(now);
                now + pause
            }
            None => ending.deadline.min(now + pause),
            Some(at) if now.saturating_duration_since(at) >= KILL_GRACE => {
                crate::log(format_args!(
                    "process group {pgid} still has members {KILL_GRACE:?} after SIGKILL; \
                     reporting the run over anyway"
                ));
                return true;
            }
            Some(_) => now + pause,
        };
        Timer::at(wake).await;
        pause = (pause * 2).min(LONGEST_POLL);
    }
    killed_at.is_some()
}
