//! Unix systems other than Linux (macOS, the BSDs): no subreaper, no parent-death signal,
//! no `/proc`, no inotify. The process group is velos's reach here: these fallbacks find
//! no children, environments or figures, so callers signal groups and report no CPU or
//! memory; a daemon killed with SIGKILL leaves its children to the next daemon's
//! clean-up of the groups `state.msgpack` names.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::procstat::{Sample, Status};

/// Where this process's open descriptors are listed, one entry per descriptor.
pub const FD_DIR: &str = "/dev/fd";

/// No child subreaper here: orphaned descendants go to init.
pub fn become_subreaper() -> io::Result<()> {
    Ok(())
}

/// No parent-death signal here: the next daemon's clean-up is the reach.
pub fn end_with_parent(_command: &mut std::process::Command) {}

/// No parent-death signal here: the daemon outlives a runtime killed with SIGKILL.
pub fn stop_with_parent(_parent: u32) -> bool {
    true
}

/// No pidfd here to await a child's exit: children start through the standard library.
pub fn can_spawn() -> bool {
    false
}

/// Never called (see [`can_spawn`]).
pub fn spawn(_plan: &crate::process::Plan) -> io::Result<crate::process::Spawned> {
    Err(io::ErrorKind::Unsupported.into())
}

/// `getpeereid` through std's peer credentials is not stable yet, so the 0600 socket in
/// the 0700 home is the check: every peer that got that far counts as us.
pub fn peer(_stream: &UnixStream) -> super::Peer {
    super::Peer::Us
}

/// Pipes keep their system's size.
pub fn grow_pipe(_pipe: &impl std::os::fd::AsFd, _bytes: usize) {}

/// No `splice` here: the collectors read and write.
pub fn private_pipe(_bytes: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No `splice` here (see [`private_pipe`]).
pub fn splice_pipe(_from: BorrowedFd<'_>, _to: BorrowedFd<'_>, _len: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// No `splice` here (see [`private_pipe`]).
pub fn splice_to_file(
    _from: BorrowedFd<'_>,
    _file: BorrowedFd<'_>,
    _offset: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The address in `NOTIFY_SOCKET`: a path (no abstract namespace here).
pub fn notify_address(text: &std::ffi::OsStr) -> io::Result<std::os::unix::net::SocketAddr> {
    if text.to_string_lossy().starts_with('@') {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract socket names exist on Linux only",
        ));
    }
    std::os::unix::net::SocketAddr::from_pathname(text)
}

/// Sets the mode of the socket at `path` by path (no `O_PATH` here); the caller has
/// checked the home it lies in.
pub fn set_socket_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// No `/proc`: no children can be listed.
pub fn children(_pid: u32) -> Vec<u32> {
    Vec::new()
}

/// No `/proc`: no processes can be listed.
pub fn pids() -> Vec<u32> {
    Vec::new()
}

/// No `/proc`: no environment can be read.
pub fn environ(_pid: u32) -> Option<Vec<u8>> {
    None
}

/// No `/proc`: nothing to tell, so every process counts as running its own program.
pub fn has_exec(_pid: u32) -> bool {
    true
}

/// No `/proc`: no boot id.
pub fn boot_id() -> Option<String> {
    None
}

/// No `/proc`: no figures.
pub fn sample(_pid: u32) -> Option<Sample> {
    None
}

/// No `/proc`: nothing known.
pub fn status(_pid: u32) -> Option<Status> {
    None
}

/// Used where the hard limit of open files is "unlimited", which the kernel refuses as a
/// soft limit (macOS caps it at `OPEN_MAX`).
pub fn max_open_files() -> u64 {
    10_240
}

/// No inotify here: the watch never fires, and `velos kill` (or SIGTERM to the pid in
/// `velos.pid`) is the way out of a deleted socket.
pub struct NameWatch;

impl NameWatch {
    /// Watches nothing.
    pub fn new(_dir: &Path, _name: &std::ffi::OsStr) -> io::Result<NameWatch> {
        Ok(NameWatch)
    }

    /// Never resolves.
    pub async fn changed(&mut self) {
        std::future::pending().await
    }
}

/// No way to swap two files in one step here: the caller renames instead.
pub fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}
