//! The saved process list: `state.msgpack`, rewritten on every change, and
//! `dump.msgpack`, written by `velos save`.
//!
//! `state.msgpack` is written by a thread of its own ([`StateWriter`]): the supervisor
//! only encodes the list and hands the bytes over, so a start does not wait for the disk.
//! If lists arrive faster than the disk takes them, only the newest is written. The
//! daemon stops the writer (after its last write) before it exits.
//!
//! Both hold the same thing: each process's id, name, start settings, restart count and
//! whether it should be running. Writes go to a temporary file that then takes the old
//! one's place (`dump.msgpack`: a new file, renamed over it; `state.msgpack`: the file
//! that held the list before, rewritten and swapped with it, see [`rewrite_bytes`]), so a
//! reader (or a daemon killed mid-write) sees the old list or the new one, never half of
//! one. Processes started from one shell share one environment,
//! so environments are stored once each and referred to by index.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use velos_proto::StartParams;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use velos_proto::{LastRestart, ProcessStatus, RestartCounts};

use crate::lifecycle::Exit;
use crate::state::{Env, GroupMark, ProcessTable};

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
    /// Which instance of its app it is.
    #[serde(default, skip_serializing_if = "is_zero")]
    instance: u32,
    /// Start settings, without the environment (see `env`).
    params: StartParams,
    /// Index into `envs`.
    env: Option<usize>,
    running: bool,
    restarts: u32,
    /// Its restarts by reason (a list saved before there were reasons has none: its
    /// restarts count as `crash`).
    #[serde(default)]
    restart_counts: RestartCounts,
    /// Its latest restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_restart: Option<LastRestart>,
    /// How its last run ended.
    #[serde(default)]
    exit_code: Option<i32>,
    /// The signal that ended its last run.
    #[serde(default)]
    signal: Option<i32>,
    /// Its run's process group while it runs: what the next daemon ends if this one dies
    /// (see `orphans::end_leftovers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<GroupMark>,
}

/// The restart counts of a saved process: `counts`, with what `restarts` has more than
/// their sum (a list saved before restarts had reasons) counted as `crash`.
fn counts_of(restarts: u32, mut counts: RestartCounts) -> RestartCounts {
    counts.crash = counts
        .crash
        .saturating_add(restarts.saturating_sub(counts.total()));
    counts
}

fn is_zero(number: &u32) -> bool {
    *number == 0
}

/// One process brought back from a saved list.
#[derive(Debug)]
pub struct Restored {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Which instance of its app it is.
    pub instance: u32,
    /// How to start it (name and environment filled in).
    pub params: StartParams,
    /// Whether it was meant to be running.
    pub running: bool,
    /// Its restarts by reason.
    pub counts: RestartCounts,
    /// Its latest restart.
    pub last_restart: Option<LastRestart>,
    /// How its last run ended, if it ran.
    pub exit: Option<Exit>,
}

impl SavedList {
    /// The processes, environments put back.
    /// The process groups of the runs that were alive when the list was saved.
    pub fn groups(&self) -> Vec<GroupMark> {
        self.processes
            .iter()
            .filter_map(|process| process.group.clone())
            .collect()
    }

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
                    instance: saved.instance,
                    params,
                    running: saved.running,
                    counts: counts_of(saved.restarts, saved.restart_counts),
                    last_restart: saved.last_restart,
                    exit: (saved.exit_code.is_some() || saved.signal.is_some()).then_some(Exit {
                        code: saved.exit_code,
                        signal: saved.signal,
                    }),
                }
            })
            .collect()
    }
}

/// Encodes the table as a [`SavedList`], re-encoding only the processes that changed
/// since the previous call: a start among 500 processes should not pay for the other 499.
///
/// A process's saved form changes only with its run, status, restart count, last exit
/// and environment (the rest of its settings are fixed at start), so those make the key
/// its cached bytes are kept under. Environments are numbered in the order first seen;
/// when one is no longer used by anyone, the numbering starts afresh.
#[derive(Default)]
pub struct ListEncoder {
    envs: Vec<KnownEnv>,
    processes: HashMap<u32, (Key, Vec<u8>)>,
}

/// An environment seen before, and its saved bytes.
type KnownEnv = (Weak<BTreeMap<String, String>>, Vec<u8>);

/// What a process's saved bytes depend on.
type Key = (u64, ProcessStatus, u32, Option<Exit>, Option<usize>);

impl ListEncoder {
    /// The whole list as MessagePack, in the layout of [`SavedList`]. An error (a value
    /// serde cannot encode) gives no bytes at all, never a list with a hole in it.
    pub fn encode(&mut self, table: &ProcessTable) -> Result<Vec<u8>, EncodeError> {
        if self.envs.iter().any(|(env, _)| env.strong_count() == 0) {
            self.envs.clear();
            self.processes.clear();
        }
        self.processes.retain(|id, _| table.get(*id).is_some());
        // First bring the cache up to date, then copy each process's bytes once, straight
        // into the output.
        let mut total = 0;
        for entry in table.iter() {
            let env = match &entry.spec.env {
                Some(env) => Some(self.env_index(env)?),
                None => None,
            };
            let life = &entry.lifecycle;
            let key = (
                life.runs(),
                life.status(),
                life.restarts(),
                life.last_exit(),
                env,
            );
            let cached = self.processes.get(&entry.id).filter(|(old, _)| *old == key);
            total += match cached {
                Some((_, bytes)) => bytes.len(),
                None => {
                    let bytes = encode_value(&SavedProcess {
                        id: entry.id,
                        name: entry.name.clone(),
                        instance: entry.instance,
                        params: entry.spec.params(&entry.name),
                        env,
                        running: life.wants_to_run(),
                        restarts: life.restarts(),
                        restart_counts: life.restart_counts(),
                        last_restart: life.last_restart().map(crate::state::last_restart),
                        exit_code: life.last_exit().and_then(|exit| exit.code),
                        signal: life.last_exit().and_then(|exit| exit.signal),
                        group: entry.group.clone().filter(|_| entry.is_alive()),
                    })?;
                    let len = bytes.len();
                    self.processes.insert(entry.id, (key, bytes));
                    len
                }
            };
        }
        // { "format": FORMAT, "envs": [..], "processes": [..] }, as serde writes SavedList.
        // Writing to a Vec cannot fail, hence the ignored results.
        let mut out = Vec::with_capacity(total + 1024);
        let _ = rmp::encode::write_map_len(&mut out, 3);
        let _ = rmp::encode::write_str(&mut out, "format");
        let _ = rmp::encode::write_uint(&mut out, u64::from(FORMAT));
        let _ = rmp::encode::write_str(&mut out, "envs");
        let _ = rmp::encode::write_array_len(&mut out, len_u32(self.envs.len()));
        for (_, bytes) in &self.envs {
            out.extend_from_slice(bytes);
        }
        let _ = rmp::encode::write_str(&mut out, "processes");
        let _ = rmp::encode::write_array_len(&mut out, len_u32(table.len()));
        for entry in table.iter() {
            if let Some((_, bytes)) = self.processes.get(&entry.id) {
                out.extend_from_slice(bytes);
            }
        }
        Ok(out)
    }

    /// The number of `env` in the list, adding it if new.
    fn env_index(&mut self, env: &Env) -> Result<usize, EncodeError> {
        let known = self
            .envs
            .iter()
            .position(|(weak, _)| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(env)));
        if let Some(index) = known {
            return Ok(index);
        }
        self.envs.push((Arc::downgrade(env), encode_value(&**env)?));
        Ok(self.envs.len() - 1)
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Why a list could not be encoded.
pub type EncodeError = rmp_serde::encode::Error;

/// A value as MessagePack, structs as maps.
fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    rmp_serde::to_vec_named(value)
}

/// Writes `bytes` to `path` atomically (0600): a temporary file, made durable (fsync),
/// then renamed over `path`, and the directory made durable too, so that after a crash
/// or a power cut the path holds the old list or the new one, never half of one.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let mut file = crate::paths::create_fresh_in_home(Path::new(&temporary))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    // The rename is an entry in the directory: durable once the directory is synced.
    sync_parent(path)
}

/// [`write_bytes`] for a file rewritten on every change (`state.msgpack`), without making
/// or deleting a file each time: the file at the temporary name, which the previous save
/// left holding the list before the current one, is rewritten in place, made durable,
/// and swapped with `path` (`platform::exchange`), then the directory made durable. So
/// `path` always holds a whole list, the old one or the new one, as with
/// [`write_bytes`], and the temporary name the one before; where the filesystem cannot
/// swap, it is renamed as [`write_bytes`] does. (On ext4, making and freeing the file's
/// inode was the most expensive part of a save.)
///
/// The reused file is checked as every file of the home is (regular, ours, `O_NOFOLLOW`)
/// and must have no other name; anything else there is replaced by a fresh file.
pub fn rewrite_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let reused = crate::paths::open_in_home(&temporary, std::fs::OpenOptions::new().write(true))
        .ok()
        .filter(|file| file.metadata().is_ok_and(|meta| meta.nlink() == 1));
    let file = match reused {
        Some(file) => {
            file.write_all_at(bytes, 0)?;
            file.set_len(bytes.len() as u64)?;
            file
        }
        None => {
            let mut file = crate::paths::create_fresh_in_home(&temporary)?;
            file.write_all(bytes)?;
            file
        }
    };
    file.sync_all()?;
    drop(file);
    match crate::platform::exchange(&temporary, path) {
        Ok(()) => {}
        // No list yet to swap with, or a filesystem that cannot swap.
        Err(_) => std::fs::rename(&temporary, path)?,
    }
    sync_parent(path)
}

/// Makes the directory entry of `path` durable (fsync of its directory).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Hands encoded lists to the thread that writes `state.msgpack`.
#[derive(Clone)]
pub struct StateWriter {
    lists: std::sync::mpsc::Sender<Option<Vec<u8>>>,
    progress: Arc<Progress>,
}

/// The writer thread, to be stopped once the daemon is done.
pub struct StateWriterThread {
    lists: std::sync::mpsc::Sender<Option<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

/// What the writer thread has done, shared with the supervisor (`daemon.ping`).
#[derive(Default)]
struct Progress {
    /// Why the latest save failed, while it keeps failing (`state_error`).
    failure: Mutex<Option<String>>,
    /// Lists handed to the writer so far.
    queued: AtomicU64,
    /// Lists the writer has dealt with by writing a newer or equal one (`state_pending`
    /// while this is behind `queued`).
    written: AtomicU64,
}

/// How long a failed save waits before it is tried again (unless a newer list comes
/// first, which is tried at once).
const SAVE_RETRY: Duration = Duration::from_secs(1);

impl StateWriter {
    /// Starts the thread writing to `path`; a list already there that cannot be read is
    /// first kept aside (see [`keep_corrupt_aside`]).
    pub fn start(path: PathBuf) -> std::io::Result<(StateWriter, StateWriterThread)> {
        keep_corrupt_aside(&path);
        let (lists, queue) = std::sync::mpsc::channel::<Option<Vec<u8>>>();
        let progress = Arc::<Progress>::default();
        let shared = progress.clone();
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || write_lists(&path, &queue, &shared))?;
        Ok((
            StateWriter {
                lists: lists.clone(),
                progress,
            },
            StateWriterThread { lists, thread },
        ))
    }

    /// Queues an encoded list to be written.
    pub fn save(&self, bytes: Vec<u8>) {
        // Counted before it is sent, so that the writer never gets ahead of the count.
        self.progress.queued.fetch_add(1, Ordering::AcqRel);
        // A stopped writer means the daemon is exiting: nothing to save then.
        let _ = self.lists.send(Some(bytes));
    }

    /// Why saving the list fails, while it does.
    pub fn error(&self) -> Option<String> {
        lock_failure(&self.progress.failure).clone()
    }

    /// Whether a change is not on disk yet (being written, or failing).
    pub fn pending(&self) -> bool {
        self.progress.written.load(Ordering::Acquire) < self.progress.queued.load(Ordering::Acquire)
    }

    /// Reports a list that could not even be encoded (logged the first time); the next
    /// successful save clears it.
    pub fn fail(&self, message: String) {
        let mut failed = lock_failure(&self.progress.failure);
        if failed.as_ref() != Some(&message) {
            crate::log(&message);
        }
        *failed = Some(message);
    }
}

/// The writer thread's loop: writes the newest list, and keeps trying (every
/// [`SAVE_RETRY`]) while that fails; ends after `None`, or when every sender is gone,
/// once it has tried the last list. It survives every error: a failed write is reported
/// in `failure` and in velosd.log, once when it starts failing and once when it works
/// again, and even a panic while writing is caught and counted as a failure.
fn write_lists(path: &Path, queue: &Receiver<Option<Vec<u8>>>, progress: &Progress) {
    let mut pending: Option<Vec<u8>> = None;
    // Lists received so far.
    let mut received_lists = 0;
    loop {
        let mut stop = false;
        let received = match pending {
            None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(_) => queue.recv_timeout(SAVE_RETRY),
        };
        match received {
            Ok(Some(bytes)) => {
                pending = Some(bytes);
                received_lists += 1;
            }
            Ok(None) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Only the newest list matters.
        while let Ok(newer) = queue.try_recv() {
            match newer {
                Some(newer) => {
                    pending = Some(newer);
                    received_lists += 1;
                }
                None => stop = true,
            }
        }
        if let Some(bytes) = &pending {
            let written = std::panic::catch_unwind(AssertUnwindSafe(|| rewrite_bytes(path, bytes)))
                .unwrap_or_else(|_| Err(std::io::Error::other("the writer panicked")));
            let mut failed = lock_failure(&progress.failure);
            match written {
                Ok(()) => {
                    pending = None;
                    progress.written.store(received_lists, Ordering::Release);
                    if failed.take().is_some() {
                        crate::log(format_args!("{} saved again", path.display()));
                    }
                }
                Err(error) => {
                    let message = format!(
                        "cannot save {}: {error}; trying again every {} s",
                        path.display(),
                        SAVE_RETRY.as_secs()
                    );
                    if failed.is_none() {
                        crate::log(&message);
                    }
                    *failed = Some(message);
                }
            }
        }
        if stop {
            return;
        }
    }
}

fn lock_failure(failure: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    // A plain Option cannot be left half-written: a poisoned lock's value is fine.
    failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StateWriterThread {
    /// Writes what is queued (one try), then ends the thread.
    pub fn stop(self) {
        let _ = self.lists.send(None);
        let _ = self.thread.join();
    }
}

/// Renames a `state.msgpack` that does not decode (or has a format this daemon does not
/// know) to `state.msgpack.corrupt-<UTC time>` and logs it, so that the next save does not
/// destroy what may still be recovered by hand.
fn keep_corrupt_aside(path: &Path) {
    let Err(error) = read(path) else {
        return;
    };
    if error.kind() != std::io::ErrorKind::InvalidData {
        // Unreadable for another reason (permissions, say): the next save reports it.
        return;
    }
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{time}"));
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => crate::log(format_args!(
            "{} is corrupt ({error}); kept as {} and replaced by the current list",
            path.display(),
            aside.display()
        )),
        Err(rename) => crate::log(format_args!(
            "{} is corrupt ({error}) and cannot be kept aside ({rename}): the next save replaces it",
            path.display()
        )),
    }
}

/// Reads the list at `path`; `None` when there is none.
pub fn read(path: &Path) -> std::io::Result<Option<SavedList>> {
    let opened = crate::paths::open_in_home(path, std::fs::OpenOptions::new().read(true));
    let bytes = match opened.and_then(|mut file| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map(|_| bytes)
    }) {
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
    use crate::lifecycle::{Event, Lifecycle};
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
            let counts = RestartCounts {
                crash: id,
                ..RestartCounts::default()
            };
            entry.lifecycle = Lifecycle::restored(counts, None, None);
            entry.handle(Event::Spawned {
                run: 1,
                pid: 10 + id,
                now: std::time::Instant::now(),
            });
            table.insert(entry);
        }
        let mut encoder = ListEncoder::default();
        let bytes = encoder.encode(&table).unwrap();
        assert_eq!(encoder.envs.len(), 1, "one environment for both");
        // Encoding again reuses the cached processes and gives the same bytes.
        assert_eq!(encoder.encode(&table).unwrap(), bytes);
        let dir = std::env::temp_dir().join(format!("velosd-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.msgpack");
        write_bytes(&path, &bytes).unwrap();
        let restored = read(&path).unwrap().unwrap().restore();
        assert_eq!(restored.len(), 2);
        assert_eq!((restored[1].id, restored[1].name.as_str()), (3, "worker"));
        assert_eq!(restored[1].params.env.as_ref(), Some(&env));
        assert!(restored[1].running);
        assert_eq!(restored[1].counts.total(), 3);
        // A change to one process shows in the next encoding.
        let counts = RestartCounts {
            crash: 4,
            manual: 5,
            ..RestartCounts::default()
        };
        table.get_mut(3).unwrap().lifecycle = Lifecycle::restored(counts, None, None);
        write_bytes(&path, &encoder.encode(&table).unwrap()).unwrap();
        let restored = read(&path).unwrap().unwrap().restore();
        assert_eq!(restored[0].counts, RestartCounts::default());
        assert_eq!(restored[1].counts, counts);
        assert!(read(&dir.join("none")).unwrap().is_none());
        std::fs::write(&path, b"not msgpack").unwrap();
        assert!(read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rewriting_swaps_in_the_new_list_and_keeps_the_one_before_at_the_temporary_name() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("velosd-rewrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.msgpack");
        let temporary = dir.join("state.msgpack.tmp");
        // A link planted at the temporary name is replaced, never written through.
        let outside = dir.join("outside");
        std::fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, &temporary).unwrap();
        rewrite_bytes(&path, b"first list").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"first list");
        rewrite_bytes(&path, b"second, a longer list").unwrap();
        let reused = std::fs::metadata(&temporary).unwrap().ino();
        rewrite_bytes(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        assert_eq!(std::fs::read(&temporary).unwrap(), b"second, a longer list");
        assert_eq!(
            std::fs::metadata(&path).unwrap().ino(),
            reused,
            "the file that held the list before was rewritten and swapped in"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_value_that_cannot_be_encoded_is_an_error_not_empty_bytes() {
        struct Unencodable;
        impl Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(encode_value(&Unencodable).is_err());
        assert!(encode_value(&[Unencodable]).is_err());
    }
}
