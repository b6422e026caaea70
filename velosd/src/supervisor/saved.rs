//! The saved lists: `state.msgpack` after every change, `dump.msgpack` for `velos save`,
//! and bringing either back.
//!
//! During shutdown nothing is written: the list to keep is the one the user wanted
//! running, not the stopped remains (so `velosd --resurrect` after a reboot starts them).
//!
//! `daemon.save` refuses to write an empty list over a dump that holds processes unless
//! asked with `force` (as PM2 does): after a crash or `velos kill`, the next command
//! starts an empty daemon, and one habitual `velos save` would erase the snapshot.
//! `daemon.resurrect` reads `dump.msgpack`, or `state.msgpack` when nothing was saved.
//! Every saved process comes back, stopped ones as stopped entries. One whose run cannot
//! start stays in the list, errored with the reason; one whose entry cannot be made at
//! all (its script is gone) is answered as errored without an entry, and stays in the
//! file for the next try.

use std::collections::HashMap;

use velos_proto::{ProcessInfo, ProcessStatus, Saved, StartParams};

use super::Supervisor;
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::memory_limit::DEFAULT_WINDOW;
use crate::persist::{self, ListEncoder, SavedList};

/// What bringing back a saved list did.
#[derive(Default)]
pub(super) struct Restored {
    /// The entries added (started, stopped as saved, or errored when a run could not start).
    pub ids: Vec<u32>,
    /// The processes that could not be added, as errored infos with the reason.
    pub refused: Vec<ProcessInfo>,
}

impl Supervisor {
    /// Brings back the list in `state.msgpack` (for `velosd --resurrect`): the same ids,
    /// names and settings, and those that were running are started again.
    pub(super) fn resurrect_state(&mut self) {
        let path = self.home.state_path();
        match persist::read(&path) {
            Ok(Some(list)) => {
                let restored = self.restore(list);
                crate::log(format_args!(
                    "resurrected {} process(es) from {}",
                    restored.ids.len(),
                    path.display()
                ));
                for refused in &restored.refused {
                    crate::log(format_args!(
                        "cannot bring back '{}': {}",
                        refused.name,
                        refused.error.as_deref().unwrap_or_default()
                    ));
                }
            }
            Ok(None) => crate::log(format_args!("nothing to resurrect: no {}", path.display())),
            Err(error) => crate::log(format_args!("cannot resurrect: {error}")),
        }
    }

    pub(super) fn save(&mut self, force: bool) -> Result<Saved, Error> {
        let path = self.home.dump_path();
        if self.table.len() == 0 && !force {
            // An unreadable dump is not a reason to keep it: saving replaces it.
            let saved = persist::read(&path)
                .ok()
                .flatten()
                .map_or(0, |list| list.restore().len());
            if saved > 0 {
                return Err(Error::WouldEraseDump {
                    path: path.to_string_lossy().into_owned(),
                    saved,
                });
            }
        }
        let bytes = ListEncoder::default()
            .encode(&self.table)
            .map_err(|e| Error::Io(format!("cannot encode the process list: {e}")))?;
        persist::write_bytes(&path, &bytes)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(Saved {
            path: path.to_string_lossy().into_owned(),
            processes: u32::try_from(self.table.len()).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn resurrect_dump(&mut self) -> Result<Vec<ProcessInfo>, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        // Nothing saved with `velos save`: the list the daemon keeps on every change.
        let mut list = None;
        for path in [self.home.dump_path(), self.home.state_path()] {
            list = persist::read(&path)
                .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
            if list.is_some() {
                break;
            }
        }
        let restored = self.restore(list.ok_or(Error::NothingSaved)?);
        self.persist();
        let mut answer = self.infos(&restored.ids);
        answer.extend(restored.refused);
        Ok(answer)
    }

    /// Adds the processes of `list` whose names are free, with their saved ids where
    /// those are free too, and starts those that were running; stopped ones come back as
    /// stopped entries.
    pub(super) fn restore(&mut self, list: SavedList) -> Restored {
        let mut restored = Restored::default();
        let saved = list.restore();
        // Apps of several instances label their log lines `name:K`.
        let mut counts: HashMap<String, usize> = HashMap::new();
        for saved in &saved {
            *counts.entry(saved.name.clone()).or_default() += 1;
        }
        for saved in saved {
            if self.table.has_instance(&saved.name, saved.instance) {
                continue;
            }
            let id = if self.table.get(saved.id).is_none() {
                saved.id
            } else {
                self.table.next_id()
            };
            let labelled = saved.instance > 0 || counts.get(&saved.name).is_some_and(|n| *n > 1);
            // The instances of an app share its listening sockets: bound once, by the
            // first one brought back.
            let shared = self
                .table
                .instances(&saved.name)
                .first()
                .and_then(|&(_, id)| self.table.get(id))
                .and_then(|entry| entry.spec.listen.clone());
            let mut params = saved.params.clone();
            if shared.is_some() {
                params.listen.clear();
            }
            let mut entry = match self.new_entry(id, params, saved.instance) {
                Ok(mut entry) => {
                    if shared.is_some() {
                        entry.spec.listen = shared;
                    }
                    entry.with_instance(saved.instance, labelled)
                }
                Err(error) => {
                    let reason = format!("not brought back: {error}");
                    restored
                        .refused
                        .push(refused_info(id, saved.name, &saved.params, reason));
                    continue;
                }
            };
            entry.lifecycle = Lifecycle::restored(
                saved.counts,
                saved.last_restart.and_then(crate::state::restarted),
                saved.exit,
            );
            let decisions = if saved.running {
                self.launch_new(&mut entry)
            } else {
                Vec::new()
            };
            self.insert(entry);
            self.execute(id, decisions);
            restored.ids.push(id);
        }
        restored
    }

    /// Asks for the current list to be written to `state.msgpack`, once the batch of
    /// commands at hand is handled (`settle`): `stop all` of thousands encodes the list a
    /// few times, not once per exit.
    pub(super) fn persist(&self) {
        self.persist_pending.set(true);
    }

    /// Writes the list if [`Supervisor::persist`] asked for it. Not during shutdown: the
    /// list to keep is the one the user wanted running, not the stopped remains.
    pub(super) fn write_state(&self) {
        if !self.persist_pending.take() || self.shutting_down {
            return;
        }
        match self.encoder.borrow_mut().encode(&self.table) {
            Ok(bytes) => self.state.save(bytes),
            // The file on disk keeps the last list that encoded; ping reports the failure.
            Err(error) => self
                .state
                .fail(format!("cannot encode the process list: {error}")),
        }
    }
}

/// A saved process that could not be brought back, as the answer shows it: errored, with
/// the reason, its settings as saved.
fn refused_info(id: u32, name: String, params: &StartParams, reason: String) -> ProcessInfo {
    ProcessInfo {
        id,
        name,
        status: ProcessStatus::Errored,
        script: params.script.clone(),
        interpreter: params.interpreter.clone(),
        args: params.args.clone(),
        cwd: params.cwd.clone().unwrap_or_default(),
        kill_timeout_ms: params.kill_timeout_ms.unwrap_or_default(),
        error: Some(reason),
        autorestart: params.autorestart.unwrap_or(true),
        max_restarts: params.max_restarts.unwrap_or_default(),
        min_uptime_ms: params.min_uptime_ms.unwrap_or_default(),
        max_log_bytes: params.max_log_bytes,
        max_memory_bytes: params.max_memory_bytes,
        max_memory_for_ms: params.max_memory_bytes.map(|_| {
            params
                .max_memory_for_ms
                .unwrap_or(crate::state::millis(DEFAULT_WINDOW))
        }),
        log_files: params.log_files.unwrap_or_default(),
        ..ProcessInfo::default()
    }
}
