//! Linux (and Android): the system calls other Unix systems lack. `/proc` is in
//! `procfs.rs`, the socket watch in `inotify.rs`.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::pipe::SpliceFlags;
use rustix::process::Signal;

/// Where this process's open descriptors are listed, one entry per descriptor.
pub const FD_DIR: &str = "/proc/self/fd";

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`):
/// they are re-parented to it instead of to init.
pub fn become_subreaper() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(())
}

/// Asks the kernel to send the child SIGTERM when the process that started it (the
/// daemon) dies (`PR_SET_PDEATHSIG`), so it never runs on unsupervised.
#[allow(unsafe_code)]
pub fn end_with_parent(command: &mut std::process::Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; it makes one prctl system call through rustix,
    // which neither allocates nor takes locks.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                .map_err(io::Error::from)
        });
    }
}

/// Asks for SIGTERM when our parent dies (`PR_SET_PDEATHSIG`), which the daemon handles
/// as any SIGTERM: every app stopped gracefully, then exit. False when `parent` is no
/// longer our parent: it died before we asked, and no signal would come.
pub fn stop_with_parent(parent: u32) -> bool {
    if rustix::process::set_parent_process_death_signal(Some(Signal::TERM)).is_err() {
        return true;
    }
    rustix::process::getppid().is_some_and(|pid| pid.as_raw_nonzero().get() as u32 == parent)
}

/// Who the peer of `stream` is, as the kernel recorded it at connect (`SO_PEERCRED`).
pub fn peer(stream: &UnixStream) -> super::Peer {
    use super::Peer;
    let Ok(cred) = peer_credentials(stream) else {
        return Peer::OtherUser { uid: None };
    };
    if cred.uid != rustix::process::getuid().as_raw() {
        Peer::OtherUser {
            uid: Some(cred.uid),
        }
    } else if cred.pid == 0 {
        Peer::HiddenPid
    } else {
        Peer::Us
    }
}

/// `SO_PEERCRED` read as the kernel writes it. rustix's `socket_peercred` types the pid
/// as non-zero, which the 0 given for a peer in a PID namespace we cannot see breaks
/// (it came back as an error, indistinguishable from another user).
#[allow(unsafe_code)]
fn peer_credentials(stream: &UnixStream) -> io::Result<libc::ucred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a writable `ucred` and `len` its size, which is what SO_PEERCRED
    // fills in; the descriptor stays open for the call (borrowed from `stream`).
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// Asks for a pipe of `bytes`; where that is not allowed, the default pipe still works.
pub fn grow_pipe(pipe: &impl std::os::fd::AsFd, bytes: usize) {
    let _ = rustix::pipe::fcntl_setpipe_size(pipe, bytes);
}

/// A pipe of the daemon's own (both ends non-blocking), of `bytes` where allowed: the
/// hop between a child's pipe and its log file (see `logs`).
pub fn private_pipe(bytes: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )?;
    grow_pipe(&write, bytes);
    Ok((read, write))
}

/// Moves at most `len` bytes from the pipe `from` to the pipe `to` without copying them
/// (`splice`: page references move), without blocking: `WouldBlock` when `from` is empty.
/// 0 is the end of `from`.
pub fn splice_pipe(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    Ok(rustix::pipe::splice(from, None, to, None, len, flags)?)
}

/// Moves at most `len` bytes from the pipe `from` into `file` at `offset` (advanced by
/// what moved): one copy, into the page cache. `file` must not be in append mode.
pub fn splice_to_file(
    from: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    len: usize,
) -> io::Result<usize> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    Ok(rustix::pipe::splice(
        from,
        None,
        file,
        Some(offset),
        len,
        flags,
    )?)
}

/// The address in `NOTIFY_SOCKET`: a path, or `@name` in the abstract namespace.
pub fn notify_address(text: &std::ffi::OsStr) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match text.as_bytes().strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name),
        None => std::os::unix::net::SocketAddr::from_pathname(text),
    }
}

/// Sets the mode of the socket at `path` without following a link: through an `O_PATH`
/// descriptor of the socket itself, refused if it is not a socket (any more).
pub fn set_socket_mode(path: &Path, mode: u32) -> io::Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket {
        return Err(io::Error::other(
            "it is no longer the socket just bound (replaced meanwhile)",
        ));
    }
    // fchmod on an O_PATH descriptor is refused; its /proc/self/fd link names the
    // very inode, whatever happens to the path meanwhile.
    use std::os::fd::AsRawFd;
    rustix::fs::chmod(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        Mode::from_raw_mode(mode),
    )?;
    Ok(())
}

/// Swaps the files at `a` and `b` in one step (`renameat2(RENAME_EXCHANGE)`): each name
/// holds a whole file throughout. An error when either is missing or the filesystem
/// cannot swap.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let cwd = rustix::fs::CWD;
    rustix::fs::renameat_with(cwd, a, cwd, b, rustix::fs::RenameFlags::EXCHANGE)?;
    Ok(())
}
