//! The saved process list: `state.msgpack`, rewritten on every change, and
//! `dump.msgpack`, written by `velos save`.
//!
//! `state.msgpack` is written by a thread of its own ([`StateWriter`]): the supervisor
//! only encodes the list and hands the bytes over, so a start does not wait for the disk.
//! If lists arrive faster than the disk takes them, only the newest is written. The
//! daemon stops the writer (after its last write) before it exits.
//!
//! Both hold the same thing: each process's id, name, start settings, restart count and
//! whether it should be running. Writes go to a temporary file that is then renamed
//! over the old one, so a reader (or a daemon killed mid-write) sees the old list or the
//! new one, never half of one. Processes started from one shell share one environment,
//! so environments are stored once each and referred to by index.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use velos_proto::StartParams;

use std::sync::Arc;

use crate::state::{Env, Exit, ProcessTable};

/// Bumped when the layout changes in a way older daemons cannot read.
const FORMAT: u32 = 1;

/// A process list as saved.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedList {
    format: u32,
    envs: Vec<Env>,
    processes: Vec<SavedProcess>,
}

/// One process as saved.
#[derive(Debug, Serialize, Deserialize)]
struct SavedProcess {
    id: u32,
    name: String,
    /// Start settings, without the environment (see `env`).
    params: StartParams,
    /// Index into `envs`.
    env: Option<usize>,
    running: bool,
    restarts: u32,
    /// How its last run ended.
    #[serde(default)]
    exit_code: Option<i32>,
    /// The signal that ended its last run.
    #[serde(default)]
    signal: Option<i32>,
}

/// One process brought back from a saved list.
#[derive(Debug)]
pub struct Restored {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// How to start it (name and environment filled in).
    pub params: StartParams,
    /// Whether it was meant to be running.
    pub running: bool,
    /// Its restart count.
    pub restarts: u32,
    /// How its last run ended, if it ran.
    pub exit: Option<Exit>,
}

impl SavedList {
    /// The list of everything in `table`.
    pub fn of(table: &ProcessTable) -> SavedList {
        let mut list = SavedList {
            format: FORMAT,
            ..SavedList::default()
        };
        for entry in table.iter() {
            let params = entry.spec.params(&entry.name);
            // Shared environments are one allocation: compare addresses, copy nothing.
            let env = entry.spec.env.as_ref().map(|env| {
                list.envs
                    .iter()
                    .position(|known| Arc::ptr_eq(known, env))
                    .unwrap_or_else(|| {
                        list.envs.push(env.clone());
                        list.envs.len() - 1
                    })
            });
            list.processes.push(SavedProcess {
                id: entry.id,
                name: entry.name.clone(),
                params,
                env,
                running: entry.wants_to_run(),
                restarts: entry.restarts,
                exit_code: entry.exit.and_then(|exit| exit.code),
                signal: entry.exit.and_then(|exit| exit.signal),
            });
        }
        list
    }

    /// The processes, environments put back.
    pub fn restore(self) -> Vec<Restored> {
        let envs = self.envs;
        self.processes
            .into_iter()
            .map(|saved| {
                let mut params = saved.params;
                params.env = saved
                    .env
                    .and_then(|i| envs.get(i))
                    .map(|env| BTreeMap::clone(env));
                params.name = Some(saved.name.clone());
                Restored {
                    id: saved.id,
                    name: saved.name,
                    params,
                    running: saved.running,
                    restarts: saved.restarts,
                    exit: (saved.exit_code.is_some() || saved.signal.is_some()).then_some(Exit {
                        code: saved.exit_code,
                        signal: saved.signal,
                    }),
                }
            })
            .collect()
    }
}

/// Writes `list` to `path` atomically (0600).
pub fn write(path: &Path, list: &SavedList) -> std::io::Result<()> {
    write_bytes(path, &encode(list)?)
}

/// The list as MessagePack.
pub fn encode(list: &SavedList) -> std::io::Result<Vec<u8>> {
    rmp_serde::to_vec_named(list).map_err(std::io::Error::other)
}

/// Writes `bytes` to `path` atomically (0600): a temporary file, then a rename.
fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// Hands encoded lists to the thread that writes `state.msgpack`.
#[derive(Clone)]
pub struct StateWriter {
    lists: std::sync::mpsc::Sender<Option<Vec<u8>>>,
}

/// The writer thread, to be stopped once the daemon is done.
pub struct StateWriterThread {
    lists: std::sync::mpsc::Sender<Option<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

impl StateWriter {
    /// Starts the thread writing to `path`.
    pub fn start(path: PathBuf) -> std::io::Result<(StateWriter, StateWriterThread)> {
        let (lists, queue) = std::sync::mpsc::channel::<Option<Vec<u8>>>();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                while let Ok(Some(mut bytes)) = queue.recv() {
                    let mut stop = false;
                    // Only the newest list matters.
                    while let Ok(newer) = queue.try_recv() {
                        match newer {
                            Some(newer) => bytes = newer,
                            None => stop = true,
                        }
                    }
                    if let Err(error) = write_bytes(&path, &bytes) {
                        crate::log(format_args!("cannot save {}: {error}", path.display()));
                    }
                    if stop {
                        return;
                    }
                }
            })?;
        Ok((
            StateWriter {
                lists: lists.clone(),
            },
            StateWriterThread { lists, thread },
        ))
    }

    /// Queues `list` to be written.
    pub fn save(&self, list: &SavedList) {
        match encode(list) {
            // A stopped writer means the daemon is exiting: nothing to save then.
            Ok(bytes) => {
                let _ = self.lists.send(Some(bytes));
            }
            Err(error) => crate::log(format_args!("cannot encode the process list: {error}")),
        }
    }
}

impl StateWriterThread {
    /// Writes what is queued, then ends the thread.
    pub fn stop(self) {
        let _ = self.lists.send(None);
        let _ = self.thread.join();
    }
}

/// Reads the list at `path`; `None` when there is none.
pub fn read(path: &Path) -> std::io::Result<Option<SavedList>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let list: SavedList = rmp_serde::from_slice(&bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if list.format != FORMAT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: format {} is not {FORMAT}", path.display(), list.format),
        ));
    }
    Ok(Some(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Entry;
    use crate::state::tests::spec;

    #[test]
    fn lists_round_trip_and_share_environments() {
        let mut table = ProcessTable::default();
        let env = BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]);
        let shared = Arc::new(env.clone());
        for (id, name) in [(0, "api"), (3, "worker")] {
            let mut spec = spec();
            spec.env = Some(shared.clone());
            let mut entry = Entry::new(id, name.into(), spec);
            entry.status = velos_proto::ProcessStatus::Running;
            entry.restarts = id;
            table.insert(entry);
        }
        let list = SavedList::of(&table);
        assert_eq!(list.envs.len(), 1, "one environment for both");
        let dir = std::env::temp_dir().join(format!("velosd-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.msgpack");
        write(&path, &list).unwrap();
        let restored = read(&path).unwrap().unwrap().restore();
        assert_eq!(restored.len(), 2);
        assert_eq!((restored[1].id, restored[1].name.as_str()), (3, "worker"));
        assert_eq!(restored[1].params.env.as_ref(), Some(&env));
        assert!(restored[1].running);
        assert_eq!(restored[1].restarts, 3);
        assert!(read(&dir.join("none")).unwrap().is_none());
        std::fs::write(&path, b"not msgpack").unwrap();
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
