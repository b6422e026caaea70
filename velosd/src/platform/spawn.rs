//! Starting a child without copying the daemon (Linux): `clone(CLONE_VM | CLONE_VFORK)`,
//! as `posix_spawn` does, with the steps `posix_spawn` cannot take (the parent-death
//! signal, the open-files limit).
//!
//! A `fork` copies the daemon's page tables, the child tears the copy down again at exec,
//! and every page the daemon writes afterwards takes a copy-on-write fault: measured here,
//! 1.4–2 ms a spawn from a process of 4 MiB against 0.5–0.7 ms for `posix_spawn`, and 66
//! faults per spawn in the parent. With `CLONE_VM` the child runs in the daemon's memory,
//! on a stack of its own, while the calling thread waits (`CLONE_VFORK`) until the child
//! has exec'd or exited; nothing is copied.
//!
//! Sharing memory decides what the child may do: everything it needs is made beforehand
//! in the parent ([`Plan`]: the program's candidate paths, argv, the environment, all as
//! C strings with their pointer arrays); it makes system calls only, never allocates or
//! takes a lock, and says why it failed by writing the error number into the plan before
//! `_exit`. Signals are blocked in the calling thread across the clone, and the child
//! resets every handler the daemon installed before it unblocks them: a signal arriving
//! between clone and exec (a stop sent to the new group) must not run the daemon's
//! handler in the child.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::sync::{Mutex, OnceLock, PoisonError};

use rustix::process::Rlimit;

use crate::process::{Plan, Spawned};

/// Whether this kernel has `pidfd_open` (Linux 5.3): without it the child's exit cannot
/// be awaited here, and the caller uses the standard library's spawn.
fn has_pidfd() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .is_ok()
    })
}

/// Whether [`spawn`] can be used: the kernel has `pidfd_open` (Linux 5.3), without which
/// the child's exit could not be awaited.
pub fn can_spawn() -> bool {
    has_pidfd()
}

/// The error numbers after which `execvp` goes on to the next directory of `PATH`
/// (`EACCES` too, remembered: it is the error if nothing else works).
const TRY_NEXT: [i32; 6] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ESTALE,
    libc::ENODEV,
    libc::ETIMEDOUT,
    libc::EACCES,
];

/// The child's stack: a small region of its own, below it an inaccessible page so that an
/// overflow faults instead of writing over the daemon's memory. Mapped once; spawns take
/// turns on it (the lock is held until the child has exec'd).
const STACK_BYTES: usize = 64 * 1024;
const GUARD_BYTES: usize = 4096;

struct Stack {
    /// The address just above the region (stacks grow down).
    top: usize,
}

fn stack() -> io::Result<std::sync::MutexGuard<'static, Option<Stack>>> {
    static STACK: Mutex<Option<Stack>> = Mutex::new(None);
    let mut stack = STACK.lock().unwrap_or_else(PoisonError::into_inner);
    if stack.is_none() {
        *stack = Some(map_stack()?);
    }
    Ok(stack)
}

#[allow(unsafe_code)]
fn map_stack() -> io::Result<Stack> {
    // SAFETY: a fresh anonymous mapping that nothing else refers to; the guard page at its
    // bottom is made inaccessible. It is never unmapped (one per daemon).
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            STACK_BYTES + GUARD_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if libc::mprotect(base, GUARD_BYTES, libc::PROT_NONE) != 0 {
            let error = io::Error::last_os_error();
            libc::munmap(base, STACK_BYTES + GUARD_BYTES);
            return Err(error);
        }
        Ok(Stack {
            top: base as usize + GUARD_BYTES + STACK_BYTES,
        })
    }
}

/// What the child reads (pointers into the [`Plan`] and the arrays made from it, all
/// alive until the clone returns), and where it writes why it failed.
struct ChildArgs {
    candidates: *const *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `/bin/sh`, a free slot for the file, then `argv[1..]`: a file without a `#!` line is
    /// run by the shell, as `execvp` runs it.
    sh_argv: *mut *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [RawFd; 3],
    keep: RawFd,
    open_files: Option<Rlimit>,
    /// Set by the child when it could not exec; 0 otherwise.
    error: i32,
}

/// A signal set as the kernel takes it (the C libraries' `sigset_t` is larger, and
/// their `sigfillset` leaves out the signals they use themselves).
type KernelSigset = [u64; 2];
const ALL_SIGNALS: KernelSigset = [u64::MAX; 2];
const NO_SIGNALS: KernelSigset = [0; 2];
/// The size of the kernel's signal set: 64 signals (128 on MIPS).
const KERNEL_SIGSET_BYTES: usize = if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
    16
} else {
    8
};

/// Sets the calling thread's signal mask with `rt_sigprocmask` itself, every signal
/// included; returns the mask it replaced.
#[allow(unsafe_code)]
fn set_signal_mask(mask: &KernelSigset) -> KernelSigset {
    let mut old = NO_SIGNALS;
    // SAFETY: both sets are at least KERNEL_SIGSET_BYTES long and alive across the call.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            mask.as_ptr(),
            old.as_mut_ptr(),
            KERNEL_SIGSET_BYTES,
        );
    }
    old
}

/// Null-terminated pointers to `strings`.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

const SH: &CStr = c"/bin/sh";

#[allow(unsafe_code)]
/// Starts `plan`'s program as a new process group with the parent-death signal SIGTERM.
/// `Err` with exec's error (`NotFound` for a program found nowhere) when the child could
/// not exec. Only where [`can_spawn`] says so.
pub fn spawn(plan: &Plan) -> io::Result<Spawned> {
    let candidates = pointers(&plan.candidates);
    let argv = pointers(&plan.argv);
    let envp = pointers(&plan.envp);
    let mut sh_argv: Vec<*const libc::c_char> = std::iter::once(SH.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .chain(plan.argv.iter().skip(1).map(|s| s.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut args = ChildArgs {
        candidates: candidates.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        sh_argv: sh_argv.as_mut_ptr(),
        cwd: plan.cwd.as_ptr(),
        stdio: plan.stdio,
        keep: plan.keep.unwrap_or(-1),
        open_files: plan.open_files,
        error: 0,
    };
    let stack = stack()?;
    let top = stack.as_ref().map_or(0, |stack| stack.top);
    // SAFETY: `child` runs on its own stack (`top`, held by the lock until the clone
    // returns) in this process's memory while this thread is suspended (CLONE_VFORK); it
    // only reads `args` and what it points at (alive in this frame), writes
    // `args.error` and the free slot of `sh_argv`, and makes system calls (see `child`).
    // Every signal is blocked in this thread across the clone, so the child starts with
    // them blocked; the mask is restored right after. The error number is read before
    // anything else can change it.
    let (pid, clone_error) = unsafe {
        let old = set_signal_mask(&ALL_SIGNALS);
        let pid = libc::clone(
            child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut args).cast::<libc::c_void>(),
        );
        let clone_error = io::Error::last_os_error();
        set_signal_mask(&old);
        (pid, clone_error)
    };
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    let child = rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::other("pid 0"))?;
    // SAFETY: read after the child has exec'd or exited (CLONE_VFORK); a volatile read so
    // that the compiler does not assume the value it stored before the clone.
    let error = unsafe { std::ptr::read_volatile(&raw const args.error) };
    // Kept alive (and unmoved) until here: the child read them.
    drop((candidates, argv, envp, sh_argv));
    if error != 0 {
        // It has exited: collect it, and report why.
        let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
        return Err(io::Error::from_raw_os_error(error));
    }
    match rustix::process::pidfd_open(child, rustix::process::PidfdFlags::empty()) {
        Ok(pidfd) => Ok(Spawned {
            pid: pid.unsigned_abs(),
            pidfd,
        }),
        Err(error) => {
            // Its exit could not be awaited (out of descriptors, say): it does not run.
            let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
            Err(error.into())
        }
    }
}

/// The child: from the clone to exec. Returns only through `_exit`.
#[allow(unsafe_code)]
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` of `spawn`, alive and not otherwise touched
    // while the parent's thread is suspended.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        let error = prepare_and_exec(args);
        std::ptr::write_volatile(
            &raw mut args.error,
            if error == 0 { libc::EIO } else { error },
        );
        libc::_exit(127)
    }
}

/// The calling thread's error number.
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// In the child: signals reset, stdio, working directory, process group, parent-death
/// signal, open-files limit, the kept descriptor, then exec. Returns exec's error.
///
/// # Safety
/// Only in the child of [`spawn`], with `args` as it made them.
#[allow(unsafe_code)]
unsafe fn prepare_and_exec(args: &mut ChildArgs) -> i32 {
    // SAFETY (whole body): system calls on this process's descriptors and on the C strings
    // and pointer arrays `args` points at, which the parent keeps alive; no allocation,
    // no lock.
    unsafe {
        // Handlers the daemon installed are the daemon's: default for each (ignored signals
        // stay ignored, as across any exec), and SIGPIPE back to default as the standard
        // library does for its children. SIGABRT's disposition is left alone: musl takes a
        // lock to change it, and the daemon installs no handler for it.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for signal in 1..65 {
            if matches!(signal, libc::SIGKILL | libc::SIGSTOP | libc::SIGABRT) {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || signal == libc::SIGPIPE {
                libc::sigaction(signal, &dfl, std::ptr::null_mut());
            }
        }
        for (target, &fd) in args.stdio.iter().enumerate() {
            let target = target as RawFd;
            let moved = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if moved < 0 {
                return errno();
            }
        }
        if libc::chdir(args.cwd) != 0 {
            return errno();
        }
        if libc::setpgid(0, 0) != 0 {
            return errno();
        }
        // SIGTERM when the daemon's thread that started it dies (the daemon's threads live
        // as long as it does), so the child never runs on unsupervised.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return errno();
        }
        if let Some(limit) = args.open_files {
            // Lowering a soft limit cannot fail for want of privilege; should it fail, the
            // child runs with the daemon's limit rather than not at all.
            let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, limit);
        }
        if args.keep >= 0 && libc::fcntl(args.keep, libc::F_SETFD, 0) != 0 {
            return errno();
        }
        set_signal_mask(&NO_SIGNALS);
        exec_first(args)
    }
}

/// Tries each candidate path as `execvp` does; returns the error that decides.
///
/// # Safety
/// As [`prepare_and_exec`].
#[allow(unsafe_code)]
unsafe fn exec_first(args: &mut ChildArgs) -> i32 {
    // SAFETY: see `prepare_and_exec`; the arrays are null-terminated, `sh_argv` has its
    // second slot free.
    unsafe {
        let mut denied = false;
        let mut last = libc::ENOENT;
        let mut next = args.candidates;
        while !(*next).is_null() {
            let path = *next;
            next = next.add(1);
            libc::execve(path, args.argv, args.envp);
            let mut error = errno();
            if error == libc::ENOEXEC {
                *args.sh_argv.add(1) = path;
                libc::execve(SH.as_ptr(), args.sh_argv.cast_const(), args.envp);
                error = errno();
            }
            if !TRY_NEXT.contains(&error) {
                return error;
            }
            denied |= error == libc::EACCES;
            last = error;
        }
        if denied { libc::EACCES } else { last }
    }
}
