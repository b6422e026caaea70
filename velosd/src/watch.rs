//! `--watch`: a process restarted when files it watches change.
//!
//! Owns, per watched process, a [`Watch`]: a `notify` watcher (inotify on Linux, FSEvents
//! on macOS) with its own thread, and a task that gathers changes and, after
//! `watch_delay` of quiet, sends the supervisor one [`Command::Trigger`] with the paths
//! that changed. It does not decide what a trigger does (the lifecycle does: a reload or
//! a restart, nothing for a stopped app, a start for one errored in watch mode), and it
//! does not decide when a process is watched: the supervisor holds a `Watch` in the entry
//! while the process is not stopped, and dropping it ends both the task and the watcher.
//!
//! The order:
//! 1. Set-up, off the daemon's threads (`smol::unblock`): the watched directories are
//!    walked and each one that is not ignored gets a watch of its own (never one on
//!    `node_modules` or `.git`: those are skipped whole, so they cost no inotify watch).
//!    A watched file is watched through its directory.
//! 2. The watcher's thread filters each event: only creations, writes, deletions, renames
//!    and attribute changes (`touch`) under a watched path that no ignore glob matches
//!    ([`velos_proto::watch`]), and never velos's own home (its logs and state files);
//!    opening or reading a file is no change.
//! 3. The task waits for the first change (no timer while idle: an idle tree costs
//!    nothing), then restarts one timer at each further change; when it fires, one
//!    trigger goes out, and the same line goes to the process's log (stdout, prefixed
//!    `[velos]`). A new directory gets its watches as soon as it is seen.
//!
//! Running out of inotify watches (`fs.inotify.max_user_watches`) or instances leaves
//! what could be watched watched; the reason, with how to raise the limit, goes to
//! `velosd.log`, to `info` (`watch_error`) and as a `watch_error` event.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use ::notify::{RecommendedWatcher, RecursiveMode, Watcher};
use async_channel::{Receiver, Sender};
use futures_lite::FutureExt;
use regex_lite::Regex;
use velos_proto::watch::{BUILTIN_IGNORES, BadGlob, GlobScope, PartGlob, glob_regex};
use velos_proto::{Home, RestartReason, Stream, WatchedCount};

use crate::logs::Logs;
use crate::supervisor::Command;

/// Paths of a change named in its trigger's detail; the rest are counted.
const SHOWN_PATHS: usize = 3;
/// Distinct changed paths remembered between two triggers; past this they are counted
/// as one more each (a `git checkout` of a huge tree stays bounded in memory).
const MAX_REMEMBERED: usize = 100_000;

/// What a process watches, from its start request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// Files and directories, absolute.
    pub paths: Vec<PathBuf>,
    /// The user's ignore globs (on top of [`BUILTIN_IGNORES`]).
    pub ignore: Vec<String>,
    /// Quiet after the last change before the trigger.
    pub delay: Duration,
}

impl WatchSpec {
    /// The watch a start request asks for (`None`: not watched): its paths resolved
    /// against `cwd`, its globs checked.
    pub fn from_params(
        paths: &[String],
        ignore: &[String],
        delay_ms: Option<u64>,
        cwd: &Path,
    ) -> Result<Option<WatchSpec>, BadGlob> {
        if paths.is_empty() {
            return Ok(None);
        }
        velos_proto::watch::check_globs(ignore)?;
        let mut resolved: Vec<PathBuf> = Vec::new();
        for path in paths {
            let path = lexical(&cwd.join(path));
            if !resolved.contains(&path) {
                resolved.push(path);
            }
        }
        Ok(Some(WatchSpec {
            paths: resolved,
            ignore: ignore.to_vec(),
            delay: delay_ms.map_or(velos_proto::watch::DEFAULT_DELAY, Duration::from_millis),
        }))
    }
}

/// `path` with `.` and `..` taken out, without looking at the disk.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What does not count as a change of a process's watched paths.
#[derive(Debug)]
pub struct Ignores {
    roots: Vec<PathBuf>,
    /// Globs without `/`: matched against each part of a path, without a regular
    /// expression (every file of a tree is checked while the watch is set up).
    part: Vec<PartGlob>,
    relative: Option<Regex>,
    absolute: Option<Regex>,
    home: PathBuf,
    logs: PathBuf,
    /// Names directly in the home that lead to a watched path (those are the user's).
    home_keep: HashSet<OsString>,
}

impl Ignores {
    /// The built-in globs, `user`'s, and `home`'s own files, for the watched `roots`.
    pub fn new(roots: &[PathBuf], user: &[String], home: &Home) -> Result<Ignores, BadGlob> {
        let (mut part, mut relative, mut absolute) = (Vec::new(), Vec::new(), Vec::new());
        for glob in BUILTIN_IGNORES
            .iter()
            .copied()
            .chain(user.iter().map(String::as_str))
        {
            let (scope, regex) = glob_regex(glob)?;
            // Each is anchored on its own; joined as alternatives.
            let regex = format!("(?:{regex})");
            match scope {
                GlobScope::Part => part.extend(PartGlob::parse(glob)?),
                GlobScope::Relative => relative.push(regex),
                GlobScope::Absolute => absolute.push(regex),
            }
        }
        let compile = |alternatives: Vec<String>| -> Result<Option<Regex>, BadGlob> {
            if alternatives.is_empty() {
                return Ok(None);
            }
            Regex::new(&alternatives.join("|"))
                .map(Some)
                .map_err(|_| BadGlob {
                    glob: user.join(" "),
                    why: "it does not compile",
                })
        };
        let home_root = home.root().to_path_buf();
        let home_keep = roots
            .iter()
            .filter_map(|root| root.strip_prefix(&home_root).ok())
            .filter_map(|rest| rest.components().next())
            .map(|first| first.as_os_str().to_owned())
            .collect();
        Ok(Ignores {
            roots: roots.to_vec(),
            part,
            relative: compile(relative)?,
            absolute: compile(absolute)?,
            logs: home.logs_dir(),
            home: home_root,
            home_keep,
        })
    }

    /// The watched path `path` is under, when one is (the longest).
    fn root_of(&self, path: &Path) -> Option<&Path> {
        self.roots
            .iter()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.as_os_str().len())
            .map(PathBuf::as_path)
    }

    /// Whether a change of `path` counts: under a watched path, not ignored.
    pub fn counts(&self, path: &Path) -> bool {
        let Some(root) = self.root_of(path) else {
            return false;
        };
        !self.ignored(root, path)
    }

    /// Whether `path` (under `root`) is ignored.
    fn ignored(&self, root: &Path, path: &Path) -> bool {
        if path.starts_with(&self.logs) {
            return true;
        }
        if path.parent() == Some(self.home.as_path())
            && path
                .file_name()
                .is_none_or(|name| !self.home_keep.contains(name))
        {
            return true;
        }
        let relative = match path.strip_prefix(root) {
            // A watched file: its own name.
            Ok(rest) if rest.as_os_str().is_empty() => {
                Path::new(path.file_name().unwrap_or_default())
            }
            Ok(rest) => rest,
            Err(_) => return true,
        };
        if relative
            .components()
            .any(|part| self.part_ignored(part.as_os_str()))
        {
            return true;
        }
        self.path_ignored(relative, path)
    }

    /// Whether `entry`, found in a directory of the tree under `root` that is not ignored
    /// itself, is ignored: only its own name is left to check against the part globs.
    fn entry_ignored(&self, root: &Path, entry: &Path) -> bool {
        if entry.parent() == Some(self.home.as_path()) || entry.starts_with(&self.logs) {
            return self.ignored(root, entry);
        }
        if entry
            .file_name()
            .is_some_and(|name| self.part_ignored(name))
        {
            return true;
        }
        match entry.strip_prefix(root) {
            Ok(relative) => self.path_ignored(relative, entry),
            Err(_) => true,
        }
    }

    /// Whether a part globs matches `part`.
    fn part_ignored(&self, part: &std::ffi::OsStr) -> bool {
        let part = part.to_string_lossy();
        self.part.iter().any(|glob| glob.matches(&part))
    }

    /// Whether a path glob matches `relative` (to its watched directory) or `path`.
    fn path_ignored(&self, relative: &Path, path: &Path) -> bool {
        if let Some(re) = &self.relative
            && re.is_match(&relative.to_string_lossy())
        {
            return true;
        }
        self.absolute
            .as_ref()
            .is_some_and(|re| re.is_match(&path.to_string_lossy()))
    }

    /// `path` as a trigger's detail names it: relative to its watched directory.
    fn shown(&self, path: &Path) -> String {
        let relative = self
            .root_of(path)
            .and_then(|root| path.strip_prefix(root).ok())
            .filter(|rest| !rest.as_os_str().is_empty());
        match relative {
            Some(rest) => rest.to_string_lossy().into_owned(),
            None => path
                .file_name()
                .map_or_else(|| path.to_string_lossy(), |name| name.to_string_lossy())
                .into_owned(),
        }
    }
}

/// What `info` shows of a watch: how much it covers, and what keeps it from seeing
/// every change.
#[derive(Debug, Clone, Default)]
pub struct WatchState {
    /// Directories and files under watch, once set up.
    pub watched: Option<WatchedCount>,
    /// The latest problem, if any.
    pub problem: Option<String>,
}

/// A process's watch, while it lives: dropping it ends the watcher and its task.
pub struct Watch {
    state: Arc<Mutex<WatchState>>,
    _task: smol::Task<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("state", &self.state())
            .finish()
    }
}

impl Watch {
    /// Starts watching `spec` for process `id`, whose log is `logs`; its triggers go to
    /// `commands`.
    pub fn start(
        id: u32,
        spec: &WatchSpec,
        home: &Home,
        commands: Sender<Command>,
        logs: Arc<Logs>,
    ) -> Watch {
        let state = Arc::new(Mutex::new(WatchState::default()));
        let ignores = Ignores::new(&spec.paths, &spec.ignore, home);
        let task = smol::spawn(watch(
            id,
            spec.clone(),
            ignores,
            commands,
            logs,
            state.clone(),
        ));
        Watch { state, _task: task }
    }

    /// How much it covers and what keeps it from seeing every change.
    pub fn state(&self) -> WatchState {
        self.state
            .lock()
            .map_or_else(|_| WatchState::default(), |state| state.clone())
    }
}

/// Adds what a walk found to `state`'s count.
fn count(state: &Mutex<WatchState>, walked: &Walked) {
    if let Ok(mut state) = state.lock() {
        let watched = state.watched.get_or_insert_with(WatchedCount::default);
        watched.directories += walked.directories as u64;
        watched.files += walked.files as u64;
    }
}

/// What the watcher's thread tells the task.
enum Message {
    /// A change of `path` that counts.
    Changed(PathBuf),
    /// Something was created or renamed into place at `path`: when it is a directory, it
    /// needs watches.
    Appeared(PathBuf),
    /// Events were lost (the kernel's queue overflowed): something changed.
    Lost,
    /// The watcher failed.
    Failed(::notify::Error),
}

/// Whether an event of `kind` is a change: created, written, removed, renamed, or its
/// attributes changed. Opening or reading is not.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// The watcher's event handler: filters on its thread, sends what counts.
fn handler(
    ignores: Arc<Ignores>,
    tx: Sender<Message>,
) -> impl Fn(::notify::Result<::notify::Event>) + Send + 'static {
    move |event| {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let _ = tx.try_send(Message::Failed(error));
                return;
            }
        };
        if event.need_rescan() {
            let _ = tx.try_send(Message::Lost);
        }
        if !is_change(&event.kind) {
            return;
        }
        let appeared = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Modify(ModifyKind::Name(_))
                | EventKind::Modify(ModifyKind::Any)
        );
        for path in event.paths {
            if !ignores.counts(&path) {
                continue;
            }
            if appeared {
                let _ = tx.try_send(Message::Appeared(path.clone()));
            }
            let _ = tx.try_send(Message::Changed(path));
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
struct Walked {
    directories: usize,
    files: usize,
    /// The first thing that went wrong.
    problem: Option<String>,
    /// Ran out of watches: stop adding.
    full: bool,
    /// The files found, when asked for (a directory that appeared: what was written in it
    /// before its watch was added counts as changed), at most [`MAX_REMEMBERED`].
    found: Option<Vec<PathBuf>>,
}

/// Adds a watch on every directory under `start` (itself included) that is not ignored;
/// a file is watched through its directory.
fn watch_tree(
    watcher: &Mutex<RecommendedWatcher>,
    ignores: &Ignores,
    start: &Path,
    walked: &mut Walked,
) {
    let Ok(mut watcher) = watcher.lock() else {
        return;
    };
    let meta = match std::fs::symlink_metadata(start) {
        Ok(meta) => meta,
        Err(error) => {
            walked
                .problem
                .get_or_insert_with(|| format!("cannot watch {}: {error}", start.display()));
            return;
        }
    };
    // A symbolic link to a directory is followed only as a watched path itself.
    let is_dir = meta.is_dir() || (meta.is_symlink() && start.is_dir());
    if !is_dir {
        walked.files += 1;
        if let Some(parent) = start.parent() {
            add(&mut watcher, parent, walked);
        }
        return;
    }
    let root = ignores.root_of(start).unwrap_or(start).to_path_buf();
    let mut stack = vec![start.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if walked.full {
            return;
        }
        add(&mut watcher, &dir, walked);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if ignores.entry_ignored(&root, &path) {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                _ => {
                    walked.files += 1;
                    if let Some(found) = &mut walked.found
                        && found.len() < MAX_REMEMBERED
                    {
                        found.push(path);
                    }
                }
            }
        }
    }
}

/// Adds one watch, on `dir` alone.
fn add(watcher: &mut RecommendedWatcher, dir: &Path, walked: &mut Walked) {
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => walked.directories += 1,
        Err(error) => {
            if matches!(error.kind, ::notify::ErrorKind::MaxFilesWatch) {
                walked.full = true;
                walked.problem = Some(out_of_watches(walked.directories));
            } else if !matches!(error.kind, ::notify::ErrorKind::PathNotFound) {
                walked
                    .problem
                    .get_or_insert_with(|| format!("cannot watch {}: {error}", dir.display()));
            }
        }
    }
}

/// The line for running out of inotify watches after `watched` directories.
fn out_of_watches(watched: usize) -> String {
    // The limit of this user namespace (the same as fs.inotify.max_user_watches outside a
    // container).
    let limit = std::fs::read_to_string("/proc/sys/user/max_inotify_watches")
        .or_else(|_| std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches"))
        .map(|text| format!(" (now {})", text.trim()))
        .unwrap_or_default();
    format!(
        "out of inotify watches after {watched} directories: changes elsewhere are missed; \
         raise fs.inotify.max_user_watches{limit}, e.g. 'sudo sysctl \
         fs.inotify.max_user_watches=524288' (and in /etc/sysctl.d/ to keep it), or ignore \
         more with --watch-ignore"
    )
}

/// The line for a watcher that cannot be made at all.
fn no_watcher(error: &::notify::Error) -> String {
    let hint = match &error.kind {
        ::notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => {
            ": out of inotify instances; raise fs.inotify.max_user_instances, e.g. 'sudo \
             sysctl fs.inotify.max_user_instances=1024'"
        }
        _ => "",
    };
    format!("cannot watch files: {error}{hint}")
}

/// Changes gathered since the last trigger.
#[derive(Debug, Default)]
struct Batch {
    shown: Vec<String>,
    seen: HashSet<PathBuf>,
    more: usize,
}

impl Batch {
    fn add(&mut self, path: PathBuf, ignores: &Ignores) {
        if self.seen.contains(&path) {
            return;
        }
        if self.seen.len() >= MAX_REMEMBERED {
            self.more += 1;
            return;
        }
        if self.shown.len() < SHOWN_PATHS {
            self.shown.push(ignores.shown(&path));
        } else {
            self.more += 1;
        }
        self.seen.insert(path);
    }

    fn lost(&mut self) {
        if self.shown.is_empty() {
            self.shown
                .push("(events lost: the kernel's queue overflowed)".to_owned());
        }
    }

    fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// "files changed: src/a.js, src/b.js (+48 more)".
    fn detail(&self) -> String {
        let mut detail = format!("files changed: {}", self.shown.join(", "));
        if self.more > 0 {
            detail.push_str(&format!(" (+{} more)", self.more));
        }
        detail
    }
}

/// A process's watch: set up, then gather changes and send a trigger after each quiet.
async fn watch(
    id: u32,
    spec: WatchSpec,
    ignores: Result<Ignores, BadGlob>,
    commands: Sender<Command>,
    logs: Arc<Logs>,
    state: Arc<Mutex<WatchState>>,
) {
    let report = |text: String| {
        if let Ok(mut state) = state.lock() {
            state.problem = Some(text.clone());
        }
        let commands = commands.clone();
        async move {
            let _ = commands
                .send(Command::WatchProblem { id, problem: text })
                .await;
        }
    };
    let ignores = match ignores {
        Ok(ignores) => Arc::new(ignores),
        Err(error) => return report(error.to_string()).await,
    };
    let (tx, rx) = async_channel::unbounded();
    let watcher =
        match RecommendedWatcher::new(handler(ignores.clone(), tx), ::notify::Config::default()) {
            Ok(watcher) => Arc::new(Mutex::new(watcher)),
            Err(error) => return report(no_watcher(&error)).await,
        };
    let walked = {
        let (watcher, ignores, paths) = (watcher.clone(), ignores.clone(), spec.paths.clone());
        smol::unblock(move || {
            let mut walked = Walked::default();
            for path in &paths {
                watch_tree(&watcher, &ignores, path, &mut walked);
            }
            walked
        })
        .await
    };
    let mut full = walked.full;
    count(&state, &walked);
    if let Some(text) = walked.problem {
        report(text).await;
    }
    let shared = Shared {
        id,
        spec: &spec,
        ignores: &ignores,
        watcher: &watcher,
        commands: &commands,
        logs: &logs,
        state: &state,
    };
    gather(&shared, &rx, &mut full, &report).await;
}

/// What [`gather`] works with.
struct Shared<'a> {
    id: u32,
    spec: &'a WatchSpec,
    ignores: &'a Arc<Ignores>,
    watcher: &'a Arc<Mutex<RecommendedWatcher>>,
    commands: &'a Sender<Command>,
    logs: &'a Logs,
    state: &'a Mutex<WatchState>,
}

/// Waits for changes and sends a trigger after each quiet of `spec.delay`, until the
/// watch is dropped.
async fn gather<F, R>(shared: &Shared<'_>, rx: &Receiver<Message>, full: &mut bool, report: &F)
where
    F: Fn(String) -> R,
    R: std::future::Future<Output = ()>,
{
    let Shared {
        id,
        spec,
        ignores,
        watcher,
        commands,
        logs,
        state,
    } = *shared;
    loop {
        let mut batch = Batch::default();
        // Idle: nothing but this wait, no timer.
        let Ok(first) = rx.recv().await else {
            return;
        };
        let mut timer = async_io::Timer::after(spec.delay);
        let mut next = Some(first);
        loop {
            match next.take() {
                Some(Message::Changed(path)) => batch.add(path, ignores),
                Some(Message::Appeared(path)) if !*full && path.is_dir() => {
                    let (watcher, walk_ignores) = (watcher.clone(), ignores.clone());
                    let mut walked = smol::unblock(move || {
                        let mut walked = Walked {
                            found: Some(Vec::new()),
                            ..Walked::default()
                        };
                        watch_tree(&watcher, &walk_ignores, &path, &mut walked);
                        walked
                    })
                    .await;
                    *full = walked.full;
                    count(state, &walked);
                    for path in walked.found.take().unwrap_or_default() {
                        batch.add(path, ignores);
                    }
                    if walked.full
                        && let Some(text) = walked.problem
                    {
                        report(text).await;
                    }
                }
                Some(Message::Appeared(_)) => {}
                Some(Message::Lost) => batch.lost(),
                Some(Message::Failed(error)) => {
                    if matches!(error.kind, ::notify::ErrorKind::MaxFilesWatch) {
                        *full = true;
                        let watched = state
                            .lock()
                            .ok()
                            .and_then(|state| state.watched)
                            .unwrap_or_default();
                        report(out_of_watches(watched.directories as usize)).await;
                    } else {
                        crate::log(format_args!("watch of process {id}: {error}"));
                    }
                }
                None => {}
            }
            let wait = async { Some(rx.recv().await) }.or(async {
                (&mut timer).await;
                None
            });
            match wait.await {
                Some(Ok(message)) => {
                    if matches!(message, Message::Changed(_)) {
                        timer.set_after(spec.delay);
                    }
                    next = Some(message);
                }
                Some(Err(_)) => return,
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let detail = batch.detail();
        crate::logs::note(logs, Stream::Out, &format!("[velos] watch: {detail}"));
        let trigger = Command::Trigger {
            id,
            reason: RestartReason::Watch,
            detail,
        };
        if commands.send(trigger).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignores(roots: &[&str], user: &[&str]) -> Ignores {
        let roots: Vec<PathBuf> = roots.iter().map(PathBuf::from).collect();
        let user: Vec<String> = user.iter().map(|s| (*s).to_owned()).collect();
        Ignores::new(&roots, &user, &Home::at("/home/u/.velos")).unwrap()
    }

    #[test]
    fn builtin_ignores_cover_tools_editors_and_logs() {
        let ig = ignores(&["/srv/app"], &[]);
        for path in [
            "/srv/app/.git/index",
            "/srv/app/node_modules/x/index.js",
            "/srv/app/target/debug/app",
            "/srv/app/pkg/__pycache__/m.pyc",
            "/srv/app/out.log",
            "/srv/app/src/.app.js.swp",
            "/srv/app/src/app.js~",
            "/srv/app/src/.#app.js",
            "/srv/app/src/4913",
            "/srv/app/a.tmp",
            "/srv/other/app.js",
        ] {
            assert!(!ig.counts(Path::new(path)), "{path}");
        }
        for path in [
            "/srv/app/app.js",
            "/srv/app/src/lib/db.js",
            "/srv/app/logs.js",
        ] {
            assert!(ig.counts(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn user_globs_add_to_the_builtin_ones() {
        let ig = ignores(
            &["/srv/app"],
            &["dist", "src/gen/**", "*.map", "/srv/app/tmp"],
        );
        assert!(!ig.counts(Path::new("/srv/app/dist/a.js")));
        assert!(!ig.counts(Path::new("/srv/app/src/gen/x/y.js")));
        assert!(!ig.counts(Path::new("/srv/app/a.js.map")));
        assert!(!ig.counts(Path::new("/srv/app/tmp/z")));
        assert!(!ig.counts(Path::new("/srv/app/node_modules/q.js")));
        assert!(ig.counts(Path::new("/srv/app/src/genx.js")));
    }

    #[test]
    fn a_watched_directory_whose_own_path_has_an_ignored_part_still_counts() {
        let ig = ignores(&["/build/target/app"], &[]);
        assert!(ig.counts(Path::new("/build/target/app/main.py")));
    }

    #[test]
    fn velos_home_never_counts_but_a_project_inside_it_does() {
        let ig = ignores(&["/home/u/.velos/t/app", "/home/u/.velos"], &[]);
        assert!(!ig.counts(Path::new("/home/u/.velos/logs/app-out.txt")));
        assert!(!ig.counts(Path::new("/home/u/.velos/state.msgpack")));
        assert!(!ig.counts(Path::new("/home/u/.velos/velos.sock")));
        assert!(ig.counts(Path::new("/home/u/.velos/t/app/a.js")));
        assert!(ig.counts(Path::new("/home/u/.velos/t")));
    }

    #[test]
    fn a_watched_file_counts_and_its_neighbours_do_not() {
        let ig = ignores(&["/srv/app/app.js"], &[]);
        assert!(ig.counts(Path::new("/srv/app/app.js")));
        assert!(!ig.counts(Path::new("/srv/app/other.js")));
    }

    #[test]
    fn the_detail_names_the_first_paths_and_counts_the_rest() {
        let ig = ignores(&["/srv/app"], &[]);
        let mut batch = Batch::default();
        for i in 0..50 {
            batch.add(PathBuf::from(format!("/srv/app/src/{i}.js")), &ig);
            batch.add(PathBuf::from(format!("/srv/app/src/{i}.js")), &ig);
        }
        assert_eq!(
            batch.detail(),
            "files changed: src/0.js, src/1.js, src/2.js (+47 more)"
        );
        let mut one = Batch::default();
        one.add(PathBuf::from("/srv/app"), &ig);
        assert_eq!(one.detail(), "files changed: app");
    }

    #[test]
    fn paths_resolve_against_the_working_directory() {
        let spec = WatchSpec::from_params(
            &["src".into(), "../lib/".into(), "/abs".into(), "src".into()],
            &[],
            None,
            Path::new("/srv/app"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            spec.paths,
            [
                PathBuf::from("/srv/app/src"),
                PathBuf::from("/srv/lib"),
                PathBuf::from("/abs")
            ]
        );
        assert_eq!(spec.delay, Duration::from_millis(300));
        assert_eq!(
            WatchSpec::from_params(&[], &[], None, Path::new("/")),
            Ok(None)
        );
        assert!(
            WatchSpec::from_params(&["a".into()], &["[".into()], None, Path::new("/")).is_err()
        );
    }

    #[test]
    fn only_changes_count_not_reads() {
        use ::notify::event::{CreateKind, MetadataKind, RemoveKind};
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any
        ))));
        assert!(is_change(&EventKind::Remove(RemoveKind::Any)));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
    }

    #[test]
    fn running_out_of_watches_names_the_setting() {
        let line = out_of_watches(8000);
        assert!(line.contains("fs.inotify.max_user_watches"), "{line}");
        assert!(line.contains("after 8000 directories"), "{line}");
    }
}
