//! The saved lists: `state.msgpack` after every change, `dump.msgpack` for `velos save`,
//! and bringing either back.
//!
//! During shutdown nothing is written: the list to keep is the one the user wanted
//! running, not the stopped remains (so `velosd --resurrect` after a reboot starts them).

use velos_proto::{ProcessInfo, Saved};

use super::Supervisor;
use crate::error::Error;
use crate::persist::{self, ListEncoder, SavedList};

impl Supervisor {
    /// Brings back the list in `state.msgpack` (for `velosd --resurrect`): the same ids,
    /// names and settings, and those that were running are started again.
    pub(super) fn resurrect_state(&mut self) {
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

    pub(super) fn save(&mut self) -> Result<Saved, Error> {
        let path = self.home.dump_path();
        let bytes = ListEncoder::default().encode(&self.table);
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
    pub(super) fn restore(&mut self, list: SavedList, keep_stopped: bool) -> Vec<u32> {
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
    pub(super) fn persist(&self) {
        if self.shutting_down {
            return;
        }
        let bytes = self.encoder.borrow_mut().encode(&self.table);
        self.state.save(bytes);
    }
}
