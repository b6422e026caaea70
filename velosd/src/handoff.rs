//! Handing an app's listening sockets to a run, between fork and exec, as systemd's
//! socket activation does (`sd_listen_fds(3)`).
//!
//! `sd_listen_fds` trusts the descriptors only when `LISTEN_PID` is the process's own pid,
//! which exists only after fork. `std::process::Command` builds the child's environment
//! before it forks, and the daemon is multi-threaded, so the child may make only
//! async-signal-safe calls (no allocation, no locks). So everything is prepared in the
//! parent ([`Exec`]): the program resolved on the child's `PATH`, argv, the environment
//! with a `LISTEN_PID=` entry of fixed room, and the arrays of pointers to them. The
//! child, in the last `pre_exec` hook (after the standard library has set up stdio, the
//! working directory and the process group, and after the other hooks), only:
//! 1. moves the sockets to descriptors 3, 4, … (`dup2`, which leaves the copies without
//!    close-on-exec; the daemon's own stay close-on-exec),
//! 2. writes its pid's digits into the `LISTEN_PID=` entry,
//! 3. fills the pointer arrays and calls `execve` itself, retrying with `/bin/sh` on
//!    `ENOEXEC` as `execvp` does. If exec fails, the hook returns the error, which the
//!    standard library reports to the parent as a failed spawn.
//!
//! Runs of apps without `--listen` never come here, and never see `LISTEN_*` variables
//! (they are removed from what they inherit).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::listen::{FIRST_FD, Listeners, VARIABLES};

/// Where the pid goes: `LISTEN_PID=` and room for the longest pid and its NUL.
const PID_PREFIX: &[u8] = b"LISTEN_PID=";
const PID_ROOM: usize = 21;

/// When nobody set `PATH`, where a bare program name is looked for (as glibc's `execvp`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Makes `command` exec through the listeners' hand-over. Reads the command's program,
/// arguments, working directory and environment changes, so it must be the last change
/// made to `command`, and its hook the last one. `inherit` says whether the run starts
/// from the daemon's environment (the command's changes on top) or from only what the
/// command sets (`env_clear`).
#[allow(unsafe_code)]
pub fn prepare(
    command: &mut Command,
    listeners: &Arc<Listeners>,
    inherit: bool,
) -> std::io::Result<()> {
    let mut env: BTreeMap<OsString, OsString> = if inherit {
        std::env::vars_os().collect()
    } else {
        BTreeMap::new()
    };
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => env.insert(key.to_owned(), value.to_owned()),
            None => env.remove(key),
        };
    }
    for key in VARIABLES {
        env.remove(OsStr::new(key));
    }
    for (key, value) in listeners.variables() {
        env.insert(key.into(), value.into());
    }
    let cwd = command.get_current_dir().map(Path::to_path_buf);
    let program = resolve(command.get_program(), env.get(OsStr::new("PATH")), cwd)?;
    let mut argv = vec![cstring(command.get_program().as_bytes())?];
    for arg in command.get_args() {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut environment = Vec::with_capacity(env.len());
    for (key, value) in &env {
        let mut entry = key.clone().into_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        environment.push(cstring(&entry)?);
    }
    let mut pid_entry = PID_PREFIX.to_vec();
    pid_entry.resize(PID_PREFIX.len() + PID_ROOM, 0);
    let exec = Exec {
        argv_ptrs: vec![0; argv.len() + 1],
        sh_ptrs: vec![0; argv.len() + 2],
        env_ptrs: vec![0; environment.len() + 2],
        program: cstring(program.as_os_str().as_bytes())?,
        sh: cstring(b"/bin/sh")?,
        argv,
        environment,
        pid_entry,
        fds: listeners.sockets().iter().map(|s| s.raw_fd()).collect(),
        _listeners: listeners.clone(),
    };
    let mut exec = exec;
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-
    // safe calls are allowed. `Exec::run` makes only fcntl, dup2, getpid and execve
    // calls, writes into buffers allocated here in the parent (within their length,
    // never growing them), and neither allocates nor takes a lock. The descriptors it
    // copies stay open in the parent while the command exists (`_listeners`).
    unsafe {
        command.pre_exec(move || exec.run());
    }
    Ok(())
}

/// A string for exec, refused if it holds a NUL byte (as `Command` refuses it).
fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// The file exec should run: `program` itself when it holds a `/`, else the first
/// executable file of that name in `path`'s directories (relative ones against the run's
/// working directory), as `execvp` would find it. Not found is `NotFound`, as from exec.
fn resolve(
    program: &OsStr,
    path: Option<&OsString>,
    cwd: Option<PathBuf>,
) -> std::io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let base = cwd.unwrap_or_default();
    let path = path.map_or(OsStr::new(DEFAULT_PATH), OsString::as_os_str);
    for dir in std::env::split_paths(path) {
        // An empty entry means the working directory, as in execvp.
        let candidate = base.join(dir).join(program);
        let executable = std::fs::metadata(&candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0);
        if executable {
            return Ok(candidate);
        }
    }
    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
}

/// Everything the child needs to exec, made in the parent. Pointers are kept as `usize`
/// (the same size as a pointer on every Unix Rust supports) so that the hook is `Send`
/// and `Sync`; they are written in the child, after the last change to what they point
/// at.
struct Exec {
    program: CString,
    argv: Vec<CString>,
    environment: Vec<CString>,
    pid_entry: Vec<u8>,
    sh: CString,
    argv_ptrs: Vec<usize>,
    sh_ptrs: Vec<usize>,
    env_ptrs: Vec<usize>,
    fds: Vec<RawFd>,
    /// Keeps the daemon's descriptors open until the command is gone.
    _listeners: Arc<Listeners>,
}

impl Exec {
    /// In the child: sockets to 3.., `LISTEN_PID`, exec. Returns only on failure.
    #[allow(unsafe_code)]
    fn run(&mut self) -> std::io::Result<()> {
        let count = RawFd::try_from(self.fds.len()).unwrap_or(RawFd::MAX - FIRST_FD);
        // SAFETY (whole block): plain system calls on descriptors this process holds and
        // on buffers owned by `self`, which outlive the calls; see `prepare`.
        unsafe {
            // A source already inside 3..3+count (only if the reservation of those numbers
            // failed) would be overwritten by another's dup2: move it above first.
            for fd in &mut self.fds {
                if (FIRST_FD..FIRST_FD + count).contains(fd) {
                    let moved = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, FIRST_FD + count);
                    if moved < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    *fd = moved;
                }
            }
            for (target, &fd) in (FIRST_FD..).zip(&self.fds) {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            write_pid(&mut self.pid_entry, libc::getpid());
            for (slot, entry) in self.env_ptrs.iter_mut().zip(&self.environment) {
                *slot = entry.as_ptr() as usize;
            }
            let pid_slot = self.environment.len();
            self.env_ptrs[pid_slot] = self.pid_entry.as_ptr() as usize;
            self.env_ptrs[pid_slot + 1] = 0;
            for (slot, arg) in self.argv_ptrs.iter_mut().zip(&self.argv) {
                *slot = arg.as_ptr() as usize;
            }
            let last = self.argv.len();
            self.argv_ptrs[last] = 0;
            let envp = self.env_ptrs.as_ptr().cast::<*const libc::c_char>();
            libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr().cast::<*const libc::c_char>(),
                envp,
            );
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOEXEC) {
                // A file without a #! line: a shell script, as execvp runs it.
                self.sh_ptrs[0] = self.sh.as_ptr() as usize;
                self.sh_ptrs[1] = self.program.as_ptr() as usize;
                for (slot, arg) in self.sh_ptrs[2..].iter_mut().zip(&self.argv[1..]) {
                    *slot = arg.as_ptr() as usize;
                }
                let last = self.sh_ptrs.len() - 1;
                self.sh_ptrs[last] = 0;
                libc::execve(
                    self.sh.as_ptr(),
                    self.sh_ptrs.as_ptr().cast::<*const libc::c_char>(),
                    envp,
                );
            }
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Writes `pid`'s decimal digits and a NUL after the `LISTEN_PID=` prefix of `entry`,
/// without allocating.
fn write_pid(entry: &mut [u8], pid: libc::pid_t) {
    let mut digits = [0u8; PID_ROOM];
    let mut n = u64::try_from(pid).unwrap_or(0);
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 || len == PID_ROOM - 1 {
            break;
        }
    }
    let start = PID_PREFIX.len();
    for i in 0..len {
        entry[start + i] = digits[len - 1 - i];
    }
    entry[start + len] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_digits_fill_the_room_without_garbage() {
        let mut entry = PID_PREFIX.to_vec();
        entry.resize(PID_PREFIX.len() + PID_ROOM, 0xff);
        write_pid(&mut entry, 4_194_304);
        let text = std::ffi::CStr::from_bytes_until_nul(&entry).unwrap();
        assert_eq!(text.to_str().unwrap(), "LISTEN_PID=4194304");
        write_pid(&mut entry, 7);
        let text = std::ffi::CStr::from_bytes_until_nul(&entry).unwrap();
        assert_eq!(text.to_str().unwrap(), "LISTEN_PID=7");
    }

    #[test]
    fn programs_resolve_as_execvp_finds_them() {
        let path = OsString::from("/nonexistent:/bin:/usr/bin");
        let sh = resolve(OsStr::new("sh"), Some(&path), None).unwrap();
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{}", sh.display());
        assert_eq!(
            resolve(OsStr::new("./run"), Some(&path), None).unwrap(),
            PathBuf::from("./run")
        );
        let missing = resolve(OsStr::new("no-such-program-velos"), Some(&path), None);
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
