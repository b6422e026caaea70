//! One run of a process: spawn it with its log collectors, and watch it end.
//!
//! [`launch`] spawns the child, a collector task per pipe and a watcher task. The
//! watcher waits for the exit, ends whatever is left of the process group and the
//! descendants that left it, lets the pipes drain (bounded), and reports
//! [`Command::Exited`] tagged with the run number, so news about an earlier run is
//! recognised and ignored.

use std::time::{Duration, Instant};

use async_channel::Sender;
use async_io::Timer;
use futures_lite::FutureExt;
use rustix::process::Signal;
use smol::Task;
use velos_proto::{Home, ProcessStatus, Stream};

use crate::error::Error;
use crate::logfile::{LogFile, Rotation};
use crate::logs;
use crate::state::{Entry, Exit};
use crate::supervisor::Command;
use crate::{orphans, process};

/// How long an ended run's watcher waits for its log pipes to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts a run of `entry`: spawns the child, its two log collectors and its watcher.
pub fn launch(entry: &mut Entry, home: &Home, commands: &Sender<Command>) -> Result<(), Error> {
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
    let rotation = entry.spec.max_log_bytes.map(|max_bytes| Rotation {
        max_bytes,
        keep: entry.spec.log_files,
    });
    let out = LogFile::open(
        entry.spec.out_log.clone(),
        rotation,
        &entry.ring,
        Stream::Out,
    );
    let err = LogFile::open(
        entry.spec.err_log.clone(),
        rotation,
        &entry.ring,
        Stream::Err,
    );
    let collectors = [
        child
            .stdout
            .take()
            .map(|pipe| smol::spawn(logs::collect(pipe, out, entry.ring.clone(), Stream::Out))),
        child
            .stderr
            .take()
            .map(|pipe| smol::spawn(logs::collect(pipe, err, entry.ring.clone(), Stream::Err))),
    ];
    let watched = Run {
        id: entry.id,
        run,
        pid,
        token,
    };
    smol::spawn(watch(child, watched, collectors, commands.clone())).detach();
    entry.status = ProcessStatus::Running;
    entry.pid = Some(pid);
    entry.started_at = Some(Instant::now());
    entry.cpu_sample = None;
    entry.restart_at = None;
    entry.restart_timer = None;
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
