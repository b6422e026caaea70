//! Everything velosd does differently per operating system, behind one set of functions.
//!
//! The rest of the daemon calls `platform::…` and contains no `cfg(target_os)`. Each
//! system gets sibling files chosen here, and nowhere else:
//!
//! - `linux.rs` (Linux and Android): the daemon is a child subreaper, each child gets
//!   `PR_SET_PDEATHSIG`, the socket's peer is checked with `SO_PEERCRED`, pipes are
//!   enlarged, busy log pipes go to their files through `splice`, the socket's name is
//!   watched with inotify (`inotify.rs`), `procfs.rs` reads `/proc` for process
//!   trees, environments, start times and CPU and memory figures, and `spawn.rs` starts
//!   children without copying the daemon (`CLONE_VM | CLONE_VFORK`);
//! - `other.rs` (macOS, the BSDs): none of that exists. Process groups are the reach: the
//!   fallbacks find no children, no environments and no figures, and watch nothing, so
//!   the callers fall back to signalling groups;
//! - `glibc.rs` (Linux with glibc): malloc's thresholds and trimming (see `memory`);
//!   other allocators need nothing, and get the no-ops below.
//!
//! Both `linux.rs` and `other.rs` define the same names with the same signatures; a
//! function missing from one fails the build on that system, not at run time.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod inotify;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod procfs;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod spawn;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use self::{
    inotify::NameWatch,
    linux::*,
    procfs::*,
    spawn::{can_spawn, spawn},
};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod other;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub use self::other::*;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub use self::glibc::{fix_malloc_thresholds, trim_malloc_heaps};

/// Other allocators (musl, macOS, the BSDs) do not keep what they were given back:
/// nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn fix_malloc_thresholds() {}

/// Other allocators return free pages by themselves: nothing to trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_malloc_heaps() {}

/// Who is on the other end of a client connection, as far as the system tells
/// ([`peer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A process of our uid that we can see.
    Us,
    /// A process of another uid (or one the system would not describe): it is told
    /// nothing.
    OtherUser {
        /// Its uid, when known.
        uid: Option<u32>,
    },
    /// A process of our uid in a PID namespace we cannot see into (a `velos` on the host
    /// against the daemon of a container's runtime): the kernel gives its pid as 0. The
    /// pids we speak of (in `list`, the pid file) mean nothing to it, and signals it
    /// would send by them would reach the wrong processes: it is refused, and told why.
    HiddenPid,
}
