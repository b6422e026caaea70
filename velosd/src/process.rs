//! Launching one child and signalling its process group.
//!
//! How a script runs, in order: an explicit interpreter; a file with the executable bit
//! runs directly (the kernel reads its `#!` line); a `#!` line without the executable
//! bit is read here and its interpreter run; otherwise the extension picks one
//! (`.js .mjs .cjs` node, `.py` python3, `.sh` sh, `.rb` ruby). Scripts and arguments
//! go to exec as they are, never through a shell.
//!
//! Each child leads its own process group (pgid = pid), has stdin from /dev/null and
//! stdout/stderr on pipes. Stopping signals the whole group, which reaches the
//! grandchildren that stayed in it.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use async_io::Async;
use rustix::process::{Pid, Signal, WaitOptions};

use crate::error::Error;
use crate::state::Spec;

/// What exec gets: the program and the arguments before the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The interpreter velos chose or was given, if any.
    pub interpreter: Option<String>,
    /// The program handed to exec.
    pub program: String,
    /// Arguments before the user's.
    pub program_args: Vec<String>,
}

/// Decides how to run `script` (which must exist).
pub fn command_line(script: &Path, interpreter: Option<&str>) -> Result<CommandLine, Error> {
    let script_arg = script.to_string_lossy().into_owned();
    let with = |interpreter: &str| CommandLine {
        interpreter: Some(interpreter.to_owned()),
        program: interpreter.to_owned(),
        program_args: vec![script_arg.clone()],
    };
    if let Some(interpreter) = interpreter.filter(|i| !i.is_empty()) {
        return Ok(with(interpreter));
    }
    let metadata =
        std::fs::metadata(script).map_err(|_| Error::ScriptNotFound(script_arg.clone()))?;
    if !metadata.is_file() {
        return Err(Error::ScriptNotFound(script_arg));
    }
    if metadata.permissions().mode() & 0o111 != 0 {
        return Ok(CommandLine {
            interpreter: None,
            program: script_arg,
            program_args: Vec::new(),
        });
    }
    if let Some(line) = shebang_line(script) {
        return Ok(line);
    }
    let extension = script.extension().and_then(|e| e.to_str()).unwrap_or("");
    let interpreter = match extension {
        "js" | "mjs" | "cjs" => "node",
        "py" => "python3",
        "sh" => "sh",
        "rb" => "ruby",
        _ => return Err(Error::UnknownInterpreter(script_arg)),
    };
    Ok(with(interpreter))
}

/// How the `#!` line of `script` runs it, if it has one.
fn shebang_line(script: &Path) -> Option<CommandLine> {
    let shebang = read_shebang(script)?;
    let mut words = shebang.splitn(2, [' ', '\t']);
    let program = words.next().unwrap_or_default().to_owned();
    // Like the kernel: everything after the interpreter is one argument.
    let mut program_args: Vec<String> = words
        .next()
        .map(str::trim)
        .filter(|arg| !arg.is_empty())
        .map(str::to_owned)
        .into_iter()
        .collect();
    program_args.push(script.to_string_lossy().into_owned());
    (!program.is_empty()).then(|| CommandLine {
        interpreter: Some(shebang.clone()),
        program,
        program_args,
    })
}

impl CommandLine {
    /// `args` for the interpreter, placed before the script (`node --inspect app.js`).
    /// A script that runs directly gets its `#!` line's interpreter run by velos instead,
    /// so that the arguments reach it; a program without one has no interpreter for them.
    pub fn with_interpreter_args(
        mut self,
        script: &Path,
        args: &[String],
    ) -> Result<CommandLine, Error> {
        if args.is_empty() {
            return Ok(self);
        }
        if self.interpreter.is_none() {
            self = shebang_line(script).ok_or_else(|| {
                Error::NoInterpreterForArgs(script.to_string_lossy().into_owned())
            })?;
        }
        // The script is the last of the program's arguments.
        let at = self.program_args.len().saturating_sub(1);
        self.program_args.splice(at..at, args.iter().cloned());
        Ok(self)
    }
}

/// The text after `#!` on the first line, if the file starts with one.
fn read_shebang(script: &Path) -> Option<String> {
    let mut head = [0; 256];
    let mut file = File::open(script).ok()?;
    let n = file.read(&mut head).ok()?;
    let head = &head[..n];
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// A run's leader as it was started: its pid, its output pipes, and how its exit is
/// awaited.
pub struct Child {
    pid: u32,
    /// Its stdout, for a collector.
    pub stdout: Option<Pipe>,
    /// Its stderr, for a collector.
    pub stderr: Option<Pipe>,
    exit: ExitWait,
}

/// A child's output pipe (the daemon's end, non-blocking).
pub type Pipe = Box<dyn ChildPipe>;

/// What a collector reads from (see `logs::spawn_collector`).
pub trait ChildPipe: futures_lite::AsyncRead + AsFd + Unpin + Send {}

impl<T: futures_lite::AsyncRead + AsFd + Unpin + Send> ChildPipe for T {}

/// How a child's exit is awaited.
enum ExitWait {
    /// A pidfd, readable once it has exited (children [`crate::platform::spawn`] started).
    Pidfd(Async<OwnedFd>),
    /// The standard library's spawn, through async-process.
    Std(async_process::Child),
}

impl Child {
    /// The leader's pid.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the leader to exit and collects it.
    pub async fn status(&mut self) -> std::io::Result<ExitStatus> {
        match &mut self.exit {
            ExitWait::Std(child) => child.status().await,
            ExitWait::Pidfd(pidfd) => loop {
                let pid = i32::try_from(self.pid)
                    .ok()
                    .and_then(Pid::from_raw)
                    .ok_or_else(|| std::io::Error::other("no such pid"))?;
                if let Some((_, status)) = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG)?
                {
                    return Ok(ExitStatus::from_raw(status.as_raw()));
                }
                pidfd.readable().await?;
            },
        }
    }
}

/// Everything a child does between clone and exec, prepared in the parent (see
/// `platform::spawn`).
pub struct Plan {
    /// The paths exec tries in order (the program itself when it holds a `/`, else one per
    /// directory of the child's `PATH`), as `execvp` searches.
    pub candidates: Vec<CString>,
    /// The arguments, the program as given first.
    pub argv: Vec<CString>,
    /// The whole environment, `KEY=VALUE` each.
    pub envp: Vec<CString>,
    /// The working directory.
    pub cwd: CString,
    /// The descriptors that become 0, 1 and 2.
    pub stdio: [RawFd; 3],
    /// A descriptor kept open across exec under its number (close-on-exec cleared).
    pub keep: Option<RawFd>,
    /// The open-files limit to start with (the daemon's own when `None`).
    pub open_files: Option<rustix::process::Rlimit>,
}

/// A child `platform::spawn` started: its pid, and a pidfd readable once it exits.
pub struct Spawned {
    /// The child's pid (its process group too).
    pub pid: u32,
    /// `pidfd_open(pid)`.
    pub pidfd: OwnedFd,
}

/// Starts the process described by `spec` with its stdout and stderr piped, and `marks`
/// added to its environment. `inherit` is a descriptor the child keeps, under its
/// number (the daemon's copies are close-on-exec, so no other child gets it).
///
/// Where the system allows (`platform::can_spawn`), the child is started without copying
/// the daemon; a run that listens on sockets (`handoff`) and other systems go through
/// the standard library. Both do the same: a new process group, stdin from /dev/null, the
/// parent-death signal, the daemon's original open-files limit, and `execvp`'s search of
/// the child's `PATH` (a file without a `#!` line run by `/bin/sh`).
pub fn spawn(
    spec: &Spec,
    marks: &[(&str, &str)],
    inherit: Option<&OwnedFd>,
) -> Result<Child, Error> {
    if spec.listen.is_none() && crate::platform::can_spawn() {
        return spawn_light(spec, marks, inherit).map_err(|source| diagnose(spec, source));
    }
    spawn_std(spec, marks, inherit)
}

/// [`spawn`] through `platform::spawn`.
fn spawn_light(
    spec: &Spec,
    marks: &[(&str, &str)],
    inherit: Option<&OwnedFd>,
) -> std::io::Result<Child> {
    let envp = environment(spec, marks)?;
    let path = envp
        .iter()
        .find_map(|entry| entry.to_bytes().strip_prefix(b"PATH="))
        .map(<[u8]>::to_vec);
    let candidates = candidates(&spec.program, path.as_deref())?;
    let mut argv = Vec::with_capacity(1 + spec.program_args.len() + spec.args.len());
    for arg in std::iter::once(&spec.program)
        .chain(&spec.program_args)
        .chain(&spec.args)
    {
        argv.push(c_string(arg.as_bytes())?);
    }
    let cwd = c_string(spec.cwd.as_os_str().as_bytes())?;
    let (out_read, out_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (err_read, err_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let plan = Plan {
        candidates,
        argv,
        envp,
        cwd,
        stdio: [
            dev_null()?.as_raw_fd(),
            out_write.as_raw_fd(),
            err_write.as_raw_fd(),
        ],
        keep: inherit.map(AsRawFd::as_raw_fd),
        open_files: crate::fd_limit::for_children(),
    };
    let Spawned { pid, pidfd } = crate::platform::spawn(&plan)?;
    // The child has its copies.
    drop((out_write, err_write));
    let stdout: Pipe = Box::new(Async::new(File::from(out_read))?);
    let stderr: Pipe = Box::new(Async::new(File::from(err_read))?);
    Ok(Child {
        pid,
        stdout: Some(stdout),
        stderr: Some(stderr),
        exit: ExitWait::Pidfd(Async::new(pidfd)?),
    })
}

/// `/dev/null`, opened once (read-only, close-on-exec): every child's stdin.
fn dev_null() -> std::io::Result<&'static OwnedFd> {
    static NULL: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd);
    }
    let fd: OwnedFd = File::open("/dev/null")?.into();
    Ok(NULL.get_or_init(|| fd))
}

/// A string for exec, refused if it holds a NUL byte (as `Command` refuses it).
fn c_string(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// The child's environment: `spec`'s (the daemon's own when it has none), then
/// `PYTHONUNBUFFERED` where [`unbuffered_python`] says so, then `marks`; never the
/// socket-activation variables, which come from velos only (`handoff`). Sorted by name,
/// one entry per name, as the standard library builds it.
fn environment(spec: &Spec, marks: &[(&str, &str)]) -> std::io::Result<Vec<CString>> {
    let mut env: BTreeMap<OsString, OsString> = match &spec.env {
        Some(env) => env
            .iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect(),
        None => std::env::vars_os().collect(),
    };
    if unbuffered_python(spec) {
        env.insert(PYTHONUNBUFFERED.into(), "1".into());
    }
    for (key, value) in marks {
        env.insert((*key).into(), (*value).into());
    }
    for key in crate::listen::VARIABLES {
        env.remove(std::ffi::OsStr::new(key));
    }
    env.into_iter()
        .map(|(key, value)| {
            let mut entry = key.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c_string(&entry)
        })
        .collect()
}

/// Where a bare program name is looked for when the child has no `PATH` (as glibc's
/// `execvp`, and `handoff`).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The paths exec tries for `program`: itself when it holds a `/`, else `dir/program` for
/// each directory of `path` (an empty one means the working directory, as in `execvp`).
fn candidates(program: &str, path: Option<&[u8]>) -> std::io::Result<Vec<CString>> {
    if program.contains('/') {
        return Ok(vec![c_string(program.as_bytes())?]);
    }
    if program.is_empty() {
        return Ok(Vec::new());
    }
    path.unwrap_or(DEFAULT_PATH)
        .split(|&b| b == b':')
        .map(|dir| {
            let mut candidate = dir.to_vec();
            if !dir.is_empty() {
                candidate.push(b'/');
            }
            candidate.extend_from_slice(program.as_bytes());
            c_string(&candidate)
        })
        .collect()
}

/// [`spawn`] through the standard library (and async-process to await the exit).
fn spawn_std(
    spec: &Spec,
    marks: &[(&str, &str)],
    inherit: Option<&OwnedFd>,
) -> Result<Child, Error> {
    let mut command = std::process::Command::new(&spec.program);
    command
        .args(&spec.program_args)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .process_group(0);
    if let Some(env) = &spec.env {
        command.env_clear().envs(env.iter());
    }
    if unbuffered_python(spec) {
        command.env(PYTHONUNBUFFERED, "1");
    }
    command.envs(marks.iter().copied());
    // Socket activation comes from velos only, for the apps that asked for it.
    for key in crate::listen::VARIABLES {
        command.env_remove(key);
    }
    // SIGTERM when the daemon dies (say, from SIGKILL), where the system has a
    // parent-death signal, so the child never runs on unsupervised; the next daemon ends
    // whatever else the dead one left (see `orphans`).
    crate::platform::end_with_parent(&mut command);
    restore_open_files_limit(&mut command);
    if let Some(fd) = inherit {
        keep_across_exec(&mut command, fd.as_raw_fd());
    }
    // Last: it reads the whole command and execs it itself.
    if let Some(listeners) = &spec.listen {
        crate::handoff::prepare(&mut command, listeners, spec.env.is_none())
            .map_err(|source| diagnose(spec, source))?;
    }
    // Stdio is set on the async command: the conversion cannot see std's settings.
    let mut child = async_process::Command::from(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| diagnose(spec, source))?;
    Ok(Child {
        pid: child.id(),
        stdout: child.stdout.take().map(|pipe| Box::new(pipe) as Pipe),
        stderr: child.stderr.take().map(|pipe| Box::new(pipe) as Pipe),
        exit: ExitWait::Std(child),
    })
}

/// What makes Python write its output as it goes instead of in 8 KiB blocks.
const PYTHONUNBUFFERED: &str = "PYTHONUNBUFFERED";

/// Whether `spec` is a `.py` script run by the python3 velos chose (no `--interpreter`,
/// no `#!` line) whose environment does not say `PYTHONUNBUFFERED` itself: then its
/// output reaches the logs as it is written, and is not lost in a buffer on stop.
fn unbuffered_python(spec: &Spec) -> bool {
    let chosen = spec.requested_interpreter.is_none()
        && spec.interpreter.as_deref() == Some("python3")
        && spec.script.extension().is_some_and(|ext| ext == "py");
    let set = match &spec.env {
        Some(env) => env.contains_key(PYTHONUNBUFFERED),
        None => std::env::var_os(PYTHONUNBUFFERED).is_some(),
    };
    chosen && !set
}

/// The cause of a failed spawn as the user can act on it. exec's ENOENT covers a missing
/// working directory, a missing program, and a `#!` line naming a missing interpreter
/// (or one with a carriage return from CRLF line ends): each is checked for here.
fn diagnose(spec: &Spec, source: std::io::Error) -> Error {
    if source.kind() != std::io::ErrorKind::NotFound {
        return Error::Spawn {
            program: spec.program.clone(),
            source,
        };
    }
    if !spec.cwd.is_dir() {
        return Error::CwdGone(spec.cwd.to_string_lossy().into_owned());
    }
    // The interpreter of the script's #! line matters when velos did not choose one: the
    // kernel reads it (executable script), or velos took it from there.
    if spec.requested_interpreter.is_none()
        && let Some(line) = raw_shebang(&spec.script)
    {
        let interpreter = line
            .trim_start_matches([' ', '\t'])
            .split([' ', '\t'])
            .next()
            .unwrap_or_default();
        let script = spec.script.to_string_lossy().into_owned();
        if interpreter.ends_with('\r') {
            return Error::CrlfShebang {
                script,
                interpreter: interpreter.to_owned(),
            };
        }
        let bare = interpreter.trim_end_matches('\r');
        if !bare.is_empty() && !Path::new(bare).exists() {
            return Error::MissingInterpreter {
                script,
                interpreter: bare.to_owned(),
            };
        }
    }
    Error::Spawn {
        program: spec.program.clone(),
        source,
    }
}

/// The first line of `script` after `#!`, exactly as written (a carriage return kept),
/// if it starts with one.
fn raw_shebang(script: &Path) -> Option<String> {
    let mut head = [0; 256];
    let n = File::open(script).ok()?.read(&mut head).ok()?;
    let rest = head[..n].strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    String::from_utf8(line.to_vec()).ok()
}

/// Lets the child keep descriptor `fd` across exec (it is close-on-exec in the daemon).
#[allow(unsafe_code)]
fn keep_across_exec(command: &mut std::process::Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; it makes one fcntl(F_SETFD) system call through
    // rustix on a descriptor number copied in beforehand, and neither allocates nor takes
    // locks. The descriptor is open in the child: fork copied it, and only exec closes it.
    unsafe {
        command.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Into::into)
        });
    }
}

/// Gives the child the open-files limit the daemon was started with, not the one it raised
/// for itself (see `fd_limit`): programs that use `select()` break above 1024.
#[allow(unsafe_code)]
fn restore_open_files_limit(command: &mut std::process::Command) {
    let Some(limit) = crate::fd_limit::for_children() else {
        return;
    };
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; it makes one setrlimit (prlimit64) system call
    // through rustix with a value copied in beforehand, and neither allocates nor takes
    // locks. Lowering a soft limit cannot fail for want of privilege; should it fail, the
    // child runs with the daemon's limit rather than not at all.
    unsafe {
        command.pre_exec(move || {
            let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, limit);
            Ok(())
        });
    }
}

/// Whether any process (a zombie not yet collected included) is in the group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    i32::try_from(pgid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pgid| rustix::process::test_kill_process_group(pgid).is_ok())
}

/// Whether `pid` exists (a zombie not yet collected included).
pub fn exists(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// The live (not zombie) members of the group `pgid`, from a scan of every process
/// (see `platform`; none where processes cannot be listed). Only for the rare case of a
/// group that outlived its leader: it reads every process's status.
pub fn group_members(pgid: u32) -> Vec<u32> {
    if !group_exists(pgid) {
        return Vec::new();
    }
    let mut members: Vec<u32> = crate::platform::pids()
        .into_iter()
        .filter(|&pid| {
            crate::procstat::status(pid).is_some_and(|status| status.pgid == pgid && !status.zombie)
        })
        .collect();
    members.sort_unstable();
    members
}

/// Those of `pids` that are not in the group `pgid` (or whose group cannot be read): a
/// signal to the group already reached the others, and a second stop signal is one too
/// many (many servers take it as "quit now").
pub fn outside_group(pids: &[u32], pgid: u32) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|&pid| crate::procstat::status(pid).is_none_or(|status| status.pgid != pgid))
        .collect()
}

/// Sends `signal` to every process in the group `pgid`. A group that is already gone is
/// not an error.
pub fn signal_group(pgid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return;
    };
    // ESRCH: nobody left in the group, which is what the caller wanted anyway.
    let _ = rustix::process::kill_process_group(pid, signal);
}

/// The signal `text` names: `SIGINT`, `INT` or a number (see
/// [`velos_proto::parse_signal`]). The error is one line for the user.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let number = velos_proto::parse_signal(text)?;
    Signal::from_named_raw(number).ok_or_else(|| format!("signal {number} cannot be sent"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "velosd-process-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn python_run_by_velos_is_unbuffered_unless_the_user_says() {
        let mut spec = crate::state::tests::spec();
        spec.script = "/srv/app.py".into();
        spec.interpreter = Some("python3".into());
        spec.env = Some(Default::default());
        assert!(unbuffered_python(&spec));
        spec.env = Some(std::sync::Arc::new(
            [(PYTHONUNBUFFERED.to_owned(), "0".to_owned())].into(),
        ));
        assert!(!unbuffered_python(&spec), "the user's value stays");
        spec.env = Some(Default::default());
        spec.requested_interpreter = Some("python3".into());
        assert!(
            !unbuffered_python(&spec),
            "--interpreter is the user's choice"
        );
        spec.requested_interpreter = None;
        spec.interpreter = Some("/usr/bin/env python3".into());
        assert!(
            !unbuffered_python(&spec),
            "a #! line is the script's choice"
        );
        assert!(!unbuffered_python(&crate::state::tests::spec()), "node");
    }

    #[test]
    fn interpreters_follow_the_contract() {
        let dir = scratch();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let js = write("app.js", "console.log(1)", 0o644);
        assert_eq!(command_line(&js, None).unwrap().program, "node");
        let py = write("app.py", "print(1)", 0o644);
        assert_eq!(command_line(&py, None).unwrap().program, "python3");
        let exe = write("run.js", "#!/bin/sh\necho", 0o755);
        let line = command_line(&exe, None).unwrap();
        assert_eq!(
            (line.program.as_str(), line.interpreter),
            (exe.to_str().unwrap(), None)
        );
        let shebang = write("tool", "#!/usr/bin/env python3 -u\nprint(1)", 0o644);
        let line = command_line(&shebang, None).unwrap();
        assert_eq!(line.program, "/usr/bin/env");
        assert_eq!(line.program_args, ["python3 -u", shebang.to_str().unwrap()]);
        let data = write("data.bin", "xx", 0o644);
        assert!(matches!(
            command_line(&data, None),
            Err(Error::UnknownInterpreter(_))
        ));
        let forced = command_line(&data, Some("cat")).unwrap();
        assert_eq!(forced.program, "cat");
        assert!(matches!(
            command_line(&dir.join("missing.js"), None),
            Err(Error::ScriptNotFound(_))
        ));
        assert!(matches!(
            command_line(&dir, None),
            Err(Error::ScriptNotFound(_))
        ));

        // Interpreter arguments go before the script; an executable script's #! line is
        // run by velos so that they reach its interpreter.
        let args = ["--inspect".to_owned(), "-r".to_owned()];
        let line = command_line(&js, None)
            .unwrap()
            .with_interpreter_args(&js, &args)
            .unwrap();
        assert_eq!(line.program, "node");
        assert_eq!(line.program_args, ["--inspect", "-r", js.to_str().unwrap()]);
        let line = command_line(&exe, None)
            .unwrap()
            .with_interpreter_args(&exe, &args)
            .unwrap();
        assert_eq!(line.program, "/bin/sh");
        assert_eq!(
            line.program_args,
            ["--inspect", "-r", exe.to_str().unwrap()]
        );
        let binary = write("binary", "\x7fELF", 0o755);
        assert!(matches!(
            command_line(&binary, None)
                .unwrap()
                .with_interpreter_args(&binary, &args),
            Err(Error::NoInterpreterForArgs(_))
        ));
        let same = command_line(&binary, None)
            .unwrap()
            .with_interpreter_args(&binary, &[])
            .unwrap();
        assert_eq!(same.program, binary.to_str().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
