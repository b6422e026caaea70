//! Carrying out what the lifecycles decide (`crate::lifecycle`), and the requests that
//! wait for them.
//!
//! [`Supervisor::apply`] hands an event to one process's lifecycle and executes its
//! decisions in order: spawn (then feed back how it went), signal, arm or cancel the
//! process's one timer, report events, answer the requests waiting, remove the entry.
//! The timer handles and the waiting requests live here, keyed by the process's id: the
//! lifecycle only says when a timer is due and when the waiters are answered.
//!
//! A stop, restart or delete tells each process's lifecycle what was asked, with a
//! waiter for its answer; a task collects the answers in the request's order and sends
//! [`Command::Finish`], which answers the request.

use std::collections::BTreeMap;
use std::time::Instant;

use async_channel::Sender;
use rustix::process::Signal;
use velos_proto::{
    ProcessInfo, ProcessStatus, Response, RestartParams, RestartReason, StartParams, Target,
};

use super::{After, Command, Reply, Supervisor, escaped_of, logfiles};
use crate::error::Error;
use crate::launch::{Ending, launch};
use crate::lifecycle::{Attempt, Cause, Decision, Event, Exit, Report, Then, Timer};
use crate::orphans::{self, Stray};
use crate::{logs, process};

impl Supervisor {
    /// Moves the lifecycle of process `id` on by `event` and carries out its decisions.
    pub(super) fn apply(&mut self, id: u32, event: Event) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        let decisions = entry.handle(event);
        self.execute(id, decisions);
    }

    /// Carries out `decisions` of the lifecycle of process `id`, in order.
    pub(super) fn execute(&mut self, id: u32, decisions: Vec<Decision>) {
        self.persist();
        for decision in decisions {
            self.carry_out(id, decision);
        }
        // Its schedule is armed while it should run, and only then.
        self.sync_cron(id);
        self.sync_watch(id);
    }

    /// Starts or ends the file watch of process `id` as its state asks: watched while
    /// it is not stopped (running, starting, waiting for a restart, or errored and
    /// waiting for a change); a stopped or deleted process watches nothing.
    pub(super) fn sync_watch(&mut self, id: u32) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        let wanted =
            entry.spec.watch.as_ref().filter(|_| {
                !self.shutting_down && entry.lifecycle.status() != ProcessStatus::Stopped
            });
        match (wanted, entry.watch.is_some()) {
            (Some(spec), false) => {
                entry.watch = Some(crate::watch::Watch::start(
                    id,
                    spec,
                    &self.home,
                    self.commands.clone(),
                    entry.ring.clone(),
                ));
            }
            (None, true) => entry.watch = None,
            _ => {}
        }
    }

    /// A process's watch cannot see every change: the daemon's log and the event
    /// subscribers are told (`info` shows it from the watch itself).
    pub(super) fn watch_problem(&mut self, id: u32, problem: String) {
        let Some(entry) = self.table.get(id) else {
            return;
        };
        crate::log(format_args!("'{}' (id {id}) watch: {problem}", entry.name));
        self.emit(id, velos_proto::EventKind::WatchError, |event| {
            event.reason = Some(problem);
        });
    }

    fn carry_out(&mut self, id: u32, decision: Decision) {
        match decision {
            Decision::Spawn { run, attempt } => {
                let Some(entry) = self.table.get_mut(id) else {
                    return;
                };
                if attempt == Attempt::Replacement {
                    // A reload a trigger began has nobody waiting, but the old run's group
                    // is still to be given back if the replacement fails.
                    self.reload_waiters
                        .entry(id)
                        .or_insert_with(|| super::reload::ReloadWaiter::unasked(entry));
                }
                let now = Instant::now();
                let launched = launch(entry, run, &self.home, &self.commands);
                let event = match (launched, attempt) {
                    (Ok(pid), Attempt::Replacement) => {
                        self.leaders.insert(pid);
                        Event::ReplacementSpawned { run, pid, now }
                    }
                    (Ok(pid), _) => {
                        self.leaders.insert(pid);
                        entry.killed = false;
                        Event::Spawned { run, pid, now }
                    }
                    (Err(error), Attempt::Replacement) => Event::ReplacementSpawnFailed {
                        reason: error.to_string(),
                    },
                    (Err(error), attempt) => Event::SpawnFailed {
                        attempt,
                        reason: error.to_string(),
                        now,
                    },
                };
                self.apply(id, event);
            }
            Decision::SignalGroup { pgid, signal } => {
                // SIGKILL is decided only at a stop's deadline (unless it is the stop
                // signal itself): the stop had to use it.
                if signal == Signal::KILL
                    && let Some(entry) = self.table.get_mut(id)
                    && entry.spec.kill_signal != Signal::KILL
                {
                    entry.killed = true;
                }
                process::signal_group(pgid, signal);
            }
            Decision::SignalStrays { pgid, pids, signal } => {
                orphans::signal_all(&process::outside_group(&pids, pgid), signal);
            }
            // Decided only on a leader's exit, whose handler answers the watcher.
            Decision::EndTree { .. } => {}
            Decision::ArmTimer { at, timer } => {
                let command = Command::Timer { id, timer };
                let commands = self.commands.clone();
                let task = smol::spawn(async move {
                    async_io::Timer::at(at).await;
                    let _ = commands.send(command).await;
                });
                self.timers.insert((id, timer.is_replacement()), task);
            }
            Decision::CancelTimer => {
                self.timers.remove(&(id, false));
            }
            Decision::CancelSecondTimer => {
                self.timers.remove(&(id, true));
            }
            Decision::Reloaded {
                result,
                new_pid,
                reason,
            } => self.reloaded(id, result, new_pid, reason),
            Decision::Report(report) => self.report(id, report),
            Decision::Log(text) => {
                if let Some(entry) = self.table.get(id) {
                    crate::log(format_args!("'{}' (id {id}) {text}", entry.name));
                }
            }
            Decision::Answer => {
                let (Some(waiters), Some(entry)) = (self.waiters.remove(&id), self.table.get(id))
                else {
                    return;
                };
                let info = entry.info();
                for waiter in waiters {
                    // A request whose client left has nobody to tell.
                    let _ = waiter.try_send(info.clone());
                }
            }
            Decision::Remove { logs: remove_logs } => {
                self.timers.remove(&(id, false));
                self.timers.remove(&(id, true));
                // A reload waiting for it learns it is gone when its channel closes.
                self.reload_waiters.remove(&id);
                self.waiters.remove(&id);
                if let Some(entry) = self.table.remove(id) {
                    logs::lock(&entry.ring).deleted();
                    if remove_logs {
                        logfiles::remove(&self.home.logs_dir(), &entry.name, entry.instance);
                    }
                }
            }
        }
    }

    /// A restart trigger for process `id` (see [`Command::Trigger`]).
    pub(super) fn trigger(&mut self, id: u32, reason: RestartReason, detail: String) {
        if self.shutting_down {
            return;
        }
        let Some(entry) = self.table.get(id) else {
            return;
        };
        // A restart sends the stop signal to the run's strays too.
        let escaped = match entry.lifecycle.run() {
            Some(run) if entry.lifecycle.needs_members(run.number) => {
                let strays = orphans::strays(self.home.root(), &self.leaders);
                escaped_of(&strays, id, run.number)
            }
            _ => Vec::new(),
        };
        self.apply(
            id,
            Event::Trigger {
                cause: Cause::new(reason, detail),
                escaped,
                now: Instant::now(),
            },
        );
    }

    /// A timer of process `id` is due.
    pub(super) fn timer_due(&mut self, id: u32, timer: Timer) {
        let event = match timer {
            Timer::Kill { run } => Event::KillDeadline { run },
            Timer::Restart { run } => {
                if self.shutting_down {
                    return;
                }
                Event::RestartDue { run }
            }
            Timer::SecondKill { run } => Event::KillDeadline { run },
            Timer::ReadyDeadline { run } | Timer::Replacement { run } => {
                let alive = self.table.get(id).is_some_and(|entry| {
                    entry.lifecycle.needs_members(run)
                        || (timer.is_replacement() && entry.lifecycle.is_live_run(run))
                });
                let strays = if alive {
                    orphans::strays(self.home.root(), &self.leaders)
                } else {
                    Vec::new()
                };
                Event::ReadyDeadline {
                    run,
                    escaped: escaped_of(&strays, id, run),
                    now: Instant::now(),
                }
            }
        };
        self.apply(id, event);
    }

    /// Tells the event subscribers.
    fn report(&mut self, id: u32, report: Report) {
        let Report {
            kind,
            pid,
            exit,
            restart_in,
            reason,
            restart_reason,
        } = report;
        self.emit(id, kind, |event| {
            event.pid = pid;
            event.exit_code = exit.and_then(|exit| exit.code);
            event.signal = exit.and_then(|exit| exit.signal);
            event.restart_in_ms = restart_in.map(crate::state::millis);
            event.reason = reason;
            event.restart_reason = restart_reason;
        });
    }

    /// The leader (`pid`) of run `run` of `id` exited: its lifecycle says what is left to
    /// end and by when, which goes to the run's watcher on `reply`. News about a run that
    /// is not current gets no answer, which tells the watcher to end everything at once.
    pub(super) fn leader_exited(
        &mut self,
        id: u32,
        run: u64,
        pid: u32,
        exit: Exit,
        reply: &Sender<Ending>,
        strays: &[Stray],
    ) {
        self.leaders.remove(&pid);
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        // Reading the group's members reads all of /proc: only when the lifecycle needs it.
        let members = if entry.lifecycle.needs_members(run) {
            process::group_members(pid)
        } else {
            Vec::new()
        };
        let decisions = entry.handle(Event::LeaderExited {
            run,
            exit,
            escaped: escaped_of(strays, id, run),
            members,
            now: Instant::now(),
        });
        self.persist();
        for decision in decisions {
            match decision {
                Decision::EndTree { escaped, deadline } => {
                    let _ = reply.try_send(Ending { escaped, deadline });
                }
                other => self.carry_out(id, other),
            }
        }
    }

    /// Run `run` of `id` is over: its leader and everything it left are gone.
    /// `killed`: what was left at the deadline got SIGKILL.
    pub(super) fn exited(&mut self, id: u32, run: u64, exit: Exit, killed: bool) {
        // Its escaped descendants' own children may have come to us while the run was
        // still counted as live; now that it is over, they go too.
        self.reap_pending = true;
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        if entry.lifecycle.run().is_some_and(|live| live.number == run) {
            entry.group = None;
            entry.killed |= killed;
        }
        self.apply(
            id,
            Event::Exited {
                run,
                exit,
                now: Instant::now(),
            },
        );
    }

    /// `process.restart`: with `env`, the processes start with that environment; with
    /// `settings`, the one process the target names starts with those instead of the
    /// remembered ones.
    pub(super) fn restart(&mut self, params: RestartParams, reply: Reply) {
        let RestartParams {
            target,
            env,
            settings,
        } = params;
        if let Some(settings) = settings {
            if let Err(error) = self.replace_settings(&target, *settings, env.as_ref()) {
                let _ = reply.try_send(Err(error.into()));
                return;
            }
        } else if let Some(env) = env
            && let Ok(ids) = self.table.resolve(&target)
        {
            let env = self.envs.borrow_mut().share(env);
            for id in ids {
                if let Some(entry) = self.table.get_mut(id) {
                    entry.spec.env = Some(env.clone());
                }
            }
        }
        self.stop_then(
            Then::Restart,
            After::Answer(Response::Restart),
            &target,
            Some(reply),
        );
    }

    /// Gives the one app `target` names the spec `settings` describe (see
    /// [`Supervisor::specs_for`]).
    fn replace_settings(
        &mut self,
        target: &Target,
        settings: StartParams,
        env: Option<&BTreeMap<String, String>>,
    ) -> Result<(), Error> {
        let specs = self.specs_for(target, settings, env)?;
        for (id, spec) in specs {
            if let Some(entry) = self.table.get_mut(id) {
                entry.spec = spec;
            }
        }
        // The saved list brings back what it runs with now.
        self.persist();
        Ok(())
    }

    /// The spec `settings` describe (checked as a start is) for each process of the one
    /// app `target` names, changing nothing yet. Their environment, when absent, is `env`,
    /// or else the one each has; each keeps its log files and the sockets it listens on
    /// (`--listen`).
    pub(super) fn specs_for(
        &self,
        target: &Target,
        mut settings: StartParams,
        env: Option<&BTreeMap<String, String>>,
    ) -> Result<Vec<(u32, crate::state::Spec)>, Error> {
        let ids = self.table.resolve(target)?;
        let names: std::collections::BTreeSet<&str> = ids
            .iter()
            .filter_map(|&id| self.table.get(id))
            .map(|entry| entry.name.as_str())
            .collect();
        let [name] = names.into_iter().collect::<Vec<_>>()[..] else {
            return Err(Error::SettingsForOne(target.to_string()));
        };
        let name = name.to_owned();
        if settings.env.is_none() {
            settings.env = env.cloned();
        }
        let keep_env = settings.env.is_none();
        // The sockets it listens on are held while it exists: they stay as they are.
        settings.listen = Vec::new();
        // Every instance of the app gets the settings; each keeps its log files.
        let mut specs = Vec::with_capacity(ids.len());
        for &id in &ids {
            let Some(current) = self.table.get(id) else {
                continue;
            };
            let (_, mut spec) = self.spec_of(settings.clone(), 0, |new| {
                if new != name {
                    return Err(Error::SettingsForAnother {
                        process: name.clone(),
                        given: new.to_owned(),
                    });
                }
                Ok(())
            })?;
            if keep_env {
                spec.env = current.spec.env.clone();
            }
            spec.listen = current.spec.listen.clone();
            spec.out_log = current.spec.out_log.clone();
            spec.err_log = current.spec.err_log.clone();
            specs.push((id, spec));
        }
        Ok(specs)
    }

    /// Tells every process `target` names that it is to stop and then `then`; completes
    /// `after` once each has answered.
    pub(super) fn stop_then(
        &mut self,
        then: Then,
        after: After,
        target: &Target,
        reply: Option<Reply>,
    ) {
        let ids = match self.table.resolve(target) {
            Ok(ids) => ids,
            Err(error) => {
                if let Some(reply) = reply {
                    let _ = reply.try_send(Err(error.into()));
                }
                return;
            }
        };
        self.stop_ids(then, after, ids, reply);
    }

    /// [`Supervisor::stop_then`] for the processes `ids`, in that order.
    pub(super) fn stop_ids(
        &mut self,
        then: Then,
        after: After,
        ids: Vec<u32>,
        reply: Option<Reply>,
    ) {
        // One look at our children for every process the request stops.
        let running = ids.iter().any(|&id| {
            self.table
                .get(id)
                .is_some_and(|entry| entry.lifecycle.status() == ProcessStatus::Running)
        });
        let strays = if running {
            orphans::strays(self.home.root(), &self.leaders)
        } else {
            Vec::new()
        };
        let now = Instant::now();
        let mut answers = Vec::with_capacity(ids.len());
        for &id in &ids {
            let Some(entry) = self.table.get(id) else {
                continue;
            };
            let escaped = entry
                .lifecycle
                .run()
                .map(|run| escaped_of(&strays, id, run.number))
                .unwrap_or_default();
            // Nothing of it runs: whatever this request does, it sends no SIGKILL.
            let alive = entry.is_alive();
            let (waiter, answer) = async_channel::bounded(1);
            self.waiters.entry(id).or_default().push(waiter);
            answers.push((answer, alive));
            self.apply(id, Event::Asked { then, escaped, now });
        }
        let commands = self.commands.clone();
        smol::spawn(async move {
            let mut infos = Vec::with_capacity(answers.len());
            for (answer, alive) in answers {
                // Err(closed): the entry went without an answer (the daemon is ending).
                if let Ok(mut info) = answer.recv().await {
                    // In the answer, `killed` says whether this request had to use SIGKILL
                    // (the list keeps saying how the last run ended).
                    info.killed &= alive;
                    infos.push(info);
                }
            }
            let _ = commands
                .send(Command::Finish {
                    after,
                    infos,
                    reply,
                })
                .await;
        })
        .detach();
    }

    /// Completes a stop, restart, delete or kill once each of its processes answered.
    pub(super) fn finish(&mut self, after: After, infos: Vec<ProcessInfo>, reply: Option<Reply>) {
        let answer = match after {
            After::Answer(response) => response(infos),
            After::Scaled(name) => Response::Scale(self.app_infos(&name)),
            After::Kill => Response::Kill,
            After::Exit => {
                let _ = self.exit.try_send(());
                return;
            }
        };
        if let Some(reply) = reply {
            let _ = reply.try_send(Ok(answer));
        }
    }
}
