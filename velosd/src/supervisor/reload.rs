//! `process.reload`: replace each process of the target with a new run, `parallel` at a
//! time, without ever having fewer ready than before.
//!
//! The request resolves its target, refuses at once when a reload of one of its apps is
//! under way, and hands the rollout to a task: for each group of `parallel` processes it
//! sends [`Command::ReloadOne`] and waits for their outcomes. Each process's lifecycle
//! does the work (a replacement run beside the current one; once it is ready, the old run
//! stops gracefully; if it exits or is not ready in time, it is stopped and the old run
//! is untouched) and says when it is over ([`Decision::Reloaded`](crate::lifecycle::Decision)).
//! The first failure ends the rollout: the processes after it are `not_reached`. The
//! task then sends [`Command::ReloadFinished`], which answers the request.

use async_channel::Sender;
use velos_proto::{EventKind, ReloadOutcome, ReloadParams, ReloadResult, Response, RpcError};

use super::{Command, Reply, Supervisor};
use crate::error::Error;
use crate::lifecycle::Event;
use crate::state::{Env, Spec};

/// Where one process's outcome goes.
pub type Waiter = Sender<ReloadOutcome>;

impl Supervisor {
    /// `process.reload`: checks the request and starts the rollout.
    pub(super) fn reload(&mut self, params: ReloadParams, reply: Reply) {
        // New settings (a config file's) are checked for every process before anything
        // starts; each carries its own (its log files, its environment).
        let checked = self.reload_targets(&params).and_then(|ids| {
            let specs = match params.settings {
                Some(settings) => self.specs_for(&params.target, *settings, params.env.as_ref())?,
                None => Vec::new(),
            };
            Ok((ids, specs))
        });
        let (ids, specs) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                let _ = reply.try_send(Err(RpcError::from(error)));
                return;
            }
        };
        let mut specs: std::collections::HashMap<u32, Box<Spec>> = specs
            .into_iter()
            .map(|(id, spec)| (id, Box::new(spec)))
            .collect();
        let mut names: Vec<String> = ids
            .iter()
            .filter_map(|&id| self.table.get(id).map(|entry| entry.name.clone()))
            .collect();
        names.dedup();
        self.reloading.extend(names.iter().cloned());
        // The replacements start with it (or with the new settings, which carry their
        // own); it is remembered for a process only once its replacement took over, so a
        // failed reload leaves the old run's settings alone.
        let env = match specs.is_empty() {
            true => params.env.map(|env| self.envs.borrow_mut().share(env)),
            false => None,
        };
        let parallel = params.parallel.unwrap_or(1).max(1) as usize;
        let commands = self.commands.clone();
        let plan: Vec<(u32, String, Option<Box<Spec>>)> = ids
            .iter()
            .filter_map(|&id| {
                let entry = self.table.get(id)?;
                Some((id, entry.log_name.clone(), specs.remove(&id)))
            })
            .collect();
        smol::spawn(async move {
            let mut outcomes = Vec::with_capacity(plan.len());
            let mut failed = false;
            for group in plan.chunks(parallel) {
                if failed {
                    outcomes.extend(group.iter().map(|(id, name, _)| ReloadOutcome {
                        id: *id,
                        name: name.clone(),
                        result: ReloadResult::NotReached,
                        old_pid: None,
                        new_pid: None,
                        reason: Some("an earlier replacement failed".to_owned()),
                    }));
                    continue;
                }
                let mut answers = Vec::with_capacity(group.len());
                for (id, name, spec) in group {
                    let (waiter, answer) = async_channel::bounded(1);
                    let env = env.clone();
                    let _ = commands
                        .send(Command::ReloadOne {
                            id: *id,
                            env,
                            spec: spec.clone(),
                            waiter,
                        })
                        .await;
                    answers.push((*id, name.clone(), answer));
                }
                for (id, name, answer) in answers {
                    // Closed without an answer: the process was deleted meanwhile.
                    let outcome = answer.recv().await.unwrap_or(ReloadOutcome {
                        id,
                        name,
                        result: ReloadResult::Failed,
                        old_pid: None,
                        new_pid: None,
                        reason: Some("deleted during the reload".to_owned()),
                    });
                    failed |= outcome.result == ReloadResult::Failed;
                    outcomes.push(outcome);
                }
            }
            let _ = commands
                .send(Command::ReloadFinished {
                    names,
                    outcomes,
                    reply,
                })
                .await;
        })
        .detach();
    }

    /// The processes a reload replaces, in id order; refused when the daemon is shutting
    /// down or a reload of one of their apps is under way.
    fn reload_targets(&self, params: &ReloadParams) -> Result<Vec<u32>, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let ids = self.table.resolve(&params.target)?;
        for &id in &ids {
            if let Some(entry) = self.table.get(id)
                && self.reloading.contains(&entry.name)
            {
                return Err(Error::ReloadInProgress(entry.name.clone()));
            }
        }
        Ok(ids)
    }

    /// A reload's turn for process `id`: its lifecycle starts the replacement (or says
    /// there is nothing to replace), with the settings `spec` or the environment `env`
    /// when given.
    pub(super) fn reload_one(
        &mut self,
        id: u32,
        env: Option<Env>,
        spec: Option<Box<Spec>>,
        waiter: Waiter,
    ) {
        let Some(entry) = self.table.get_mut(id) else {
            return; // The waiter, dropped, says it was deleted.
        };
        if self.reload_waiters.contains_key(&id) {
            // A trigger's reload of it is under way.
            let _ = waiter.try_send(ReloadOutcome {
                id,
                name: entry.log_name.clone(),
                result: ReloadResult::Skipped,
                old_pid: entry.lifecycle.pid(),
                new_pid: None,
                reason: Some("a reload of it is already under way".to_owned()),
            });
            return;
        }
        let old_pid = entry.lifecycle.pid();
        let old_group = entry.group.clone();
        // The replacement is spawned while the lifecycle handles the event: with the new
        // settings, which the entry keeps only once the replacement took over.
        let settings = spec.is_some();
        let next = match (spec, env) {
            (Some(spec), _) => Some(spec),
            (None, Some(env)) => {
                let mut spec = Box::new(entry.spec.clone());
                spec.env = Some(env);
                Some(spec)
            }
            (None, None) => None,
        };
        let up = matches!(
            entry.lifecycle.status(),
            velos_proto::ProcessStatus::Running | velos_proto::ProcessStatus::Starting
        );
        let (kept, next) = match next {
            // Nothing to replace (it is skipped): new settings are its own at once, for its
            // next start, as a restart would give them.
            Some(next) if !up && settings => {
                entry.spec = *next;
                self.persist();
                (None, None)
            }
            Some(_) if !up => (None, None),
            Some(next) => (
                Some(std::mem::replace(&mut entry.spec, Spec::clone(&next))),
                Some(next),
            ),
            None => (None, None),
        };
        self.reload_waiters.insert(
            id,
            ReloadWaiter {
                waiter: Some(waiter),
                old_pid,
                old_group,
                next,
            },
        );
        self.apply(id, Event::Reload);
        if let (Some(kept), Some(entry)) = (kept, self.table.get_mut(id)) {
            entry.spec = kept;
        }
    }

    /// The lifecycle of `id` says its reload is over.
    pub(super) fn reloaded(
        &mut self,
        id: u32,
        result: ReloadResult,
        new_pid: Option<u32>,
        reason: Option<String>,
    ) {
        if let Some(entry) = self.table.get_mut(id) {
            entry.reloads.count(result);
        }
        let (Some(waiting), Some(entry)) =
            (self.reload_waiters.remove(&id), self.table.get_mut(id))
        else {
            return;
        };
        if result == ReloadResult::Replaced {
            if let Some(next) = waiting.next {
                entry.spec = *next;
            }
        } else if new_pid.is_some() && entry.lifecycle.pid() == waiting.old_pid {
            // Launching the replacement marked its group as the entry's: the old run's
            // group is the entry's again (what a next daemon recognises and ends).
            entry.group = waiting.old_group;
        }
        self.persist();
        let (Some(entry), Some(waiter)) = (self.table.get(id), waiting.waiter) else {
            return;
        };
        let _ = waiter.try_send(ReloadOutcome {
            id,
            name: entry.log_name.clone(),
            result,
            old_pid: waiting.old_pid,
            new_pid,
            reason,
        });
    }

    /// A reload is over: its apps are free for the next one, and it is answered.
    pub(super) fn reload_finished(
        &mut self,
        names: Vec<String>,
        outcomes: Vec<ReloadOutcome>,
        reply: Reply,
    ) {
        for name in &names {
            self.reloading.remove(name);
        }
        let done = !outcomes.iter().any(|o| o.result == ReloadResult::Failed);
        if done && let Some(last) = outcomes.last() {
            let replaced = outcomes
                .iter()
                .filter(|o| o.result == ReloadResult::Replaced)
                .count();
            let reason = format!("{replaced} of {} replaced", outcomes.len());
            self.emit(last.id, EventKind::ReloadDone, |event| {
                event.reason = Some(reason);
            });
        }
        let _ = reply.try_send(Ok(Response::Reload(outcomes)));
    }
}

/// A process's reload in progress: where its outcome goes and the pid it replaces.
pub struct ReloadWaiter {
    /// Where the outcome goes (none for a reload a trigger began).
    waiter: Option<Waiter>,
    old_pid: Option<u32>,
    /// The old run's group mark, the entry's again if the replacement fails.
    old_group: Option<crate::state::GroupMark>,
    /// The settings the replacement started with, kept once it took over.
    next: Option<Box<Spec>>,
}

impl ReloadWaiter {
    /// The reload of `entry` a trigger began: nobody waits for it, and its replacement
    /// starts with the entry's settings.
    pub fn unasked(entry: &crate::state::Entry) -> ReloadWaiter {
        ReloadWaiter {
            waiter: None,
            old_pid: entry.lifecycle.pid(),
            old_group: entry.group.clone(),
            next: None,
        }
    }
}
