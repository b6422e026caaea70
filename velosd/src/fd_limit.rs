//! The daemon's limit of open files, raised at start, and how many processes it allows.
//!
//! A daemon started from a shell keeps that shell's soft `RLIMIT_NOFILE`, often 1024,
//! while each managed process holds [`FDS_PER_PROCESS`] descriptors of the daemon's (two
//! pipes, two log files, one pidfd): at 1024 that is about 190 processes. So at start the
//! soft limit is raised to the hard limit, as systemd and PM2 do. The children do not keep
//! the raised limit: they start with the soft limit the daemon was started with
//! ([`for_children`], applied between fork and exec), since a program that uses `select()`
//! breaks on descriptors above 1024 (systemd keeps 1024 soft for services for that reason).
//! `daemon.ping` reports the limit and the number of processes it allows (`velos ping`
//! prints them), and velosd.log says so at start.

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors the daemon holds for each process it manages.
pub const FDS_PER_PROCESS: u64 = 5;
/// Descriptors kept for the daemon itself and its clients (the socket, the epoll and
/// signal machinery, connections).
pub const RESERVED_FDS: u64 = 64;
/// The limit in force, once [`raise`] has run.
static LIMIT: OnceLock<u64> = OnceLock::new();
/// The limits the daemon was started with, when [`raise`] changed them.
static ORIGINAL: OnceLock<Rlimit> = OnceLock::new();

/// Raises the soft limit to the hard one (logging what it did) and remembers the result.
pub fn raise() {
    let before = getrlimit(Resource::Nofile);
    // "Unlimited" is refused as a soft limit for open files: the kernel's own cap instead.
    let target = before
        .maximum
        .unwrap_or_else(crate::platform::max_open_files);
    let mut limit = before.current.unwrap_or(target);
    if limit < target {
        let raised = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                let _ = ORIGINAL.set(before);
                crate::log(format_args!(
                    "open files limit raised from {limit} to {target}: room for about {} processes",
                    max_processes(target)
                ));
                limit = target;
            }
            Err(error) => crate::log(format_args!(
                "cannot raise the open files limit from {limit} to {target} ({error}): room for about {} processes",
                max_processes(limit)
            )),
        }
    }
    let _ = LIMIT.set(limit);
}

/// The open-files limits a child is to start with: those the daemon was started with, if
/// [`raise`] changed them (`None`: the child keeps the daemon's, which are those).
pub fn for_children() -> Option<Rlimit> {
    ORIGINAL.get().copied()
}

/// The soft limit of open files, if [`raise`] has run.
pub fn limit() -> Option<u64> {
    LIMIT.get().copied()
}

/// About how many processes `limit` descriptors let the daemon manage.
pub fn max_processes(limit: u64) -> u32 {
    u32::try_from(limit.saturating_sub(RESERVED_FDS) / FDS_PER_PROCESS).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_count_leaves_room_for_the_daemon_and_its_clients() {
        assert_eq!(max_processes(1024), 192);
        assert_eq!(max_processes(RESERVED_FDS), 0);
        assert_eq!(max_processes(10), 0);
        assert_eq!(max_processes(u64::MAX), u32::MAX);
    }
}
