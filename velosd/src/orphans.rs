//! Descendants that leave their process group, and children a dead daemon left behind.
//!
//! Signalling a process group reaches every process that stayed in it. A descendant that
//! calls `setsid` (a double-forking daemon) leaves the group, and a group signal no longer
//! reaches it. On Linux velos still finds it:
//!
//! - Every run gets `VELOS_RUN=<id>:<run>:<daemon pid>:<home>` in its environment, which
//!   its descendants inherit across fork and exec.
//! - The daemon is a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants are
//!   re-parented to it instead of to init. [`strays`] lists the daemon's children that it
//!   did not start, with the run each one's token names: when a run's leader exits, its
//!   strays get the stop signal and the kill timeout like the rest of the group (the
//!   supervisor and `launch.rs` do that). Their own children are re-parented to the daemon
//!   when they die; on SIGCHLD, [`reap`] ends every stray whose token names a run that is over,
//!   and collects the exited ones, so no descendant and no zombie stays behind (init in
//!   a container often reaps nobody). At shutdown, [`end_ours`] sweeps `/proc` for
//!   anything still carrying one of this daemon's tokens.
//! - Each child gets `PR_SET_PDEATHSIG(SIGTERM)` (in `process.rs`), so a daemon killed with
//!   SIGKILL does not leave it running unsupervised; and [`leftovers`] lets the next
//!   daemon on the same home find whatever the dead one left (grandchildren included)
//!   and end it. [`end_leftovers`] also ends the process groups the dead daemon's
//!   `state.msgpack` names, when [`plausibly_ours`] says they are still the ones it
//!   started: that reaches a group member that cleared its environment.
//!
//! Out of reach: a descendant that clears its environment *and* leaves the group. On
//! macOS none of this exists; the process group is the reach there.

use std::collections::HashSet;
use std::path::Path;

use crate::state::GroupMark;

use rustix::process::{Pid, Signal};

/// The environment variable carrying a run's token.
pub const RUN_ENV: &str = "VELOS_RUN";

/// The token of one run of one process under this daemon.
pub fn token(id: u32, run: u64, home: &Path) -> String {
    format!("{id}:{run}:{}:{}", std::process::id(), home.display())
}

/// Makes this process the reaper of its orphaned descendants, where the system has
/// child subreapers (see `platform`).
pub fn become_subreaper() {
    if let Err(error) = crate::platform::become_subreaper() {
        crate::log(format_args!(
            "cannot become a child subreaper ({error}): escaped descendants will be re-parented to init"
        ));
    }
}

/// A child of ours that velos did not start: a descendant of some run, re-parented to us
/// when its parent died (or one that left its group and was found so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stray {
    /// Its pid.
    pub pid: u32,
    /// The process id and run its token names, when the token is one of this daemon's.
    pub run: Option<(u32, u64)>,
}

/// Our children other than `leaders` (the runs velos started, whose watchers wait for
/// them), each with the run its `VELOS_RUN` token names. One read of our children list,
/// and an environment read only for the strays, which are few: so a batch of exits costs
/// one pass however many processes velos runs.
pub fn strays(home: &Path, leaders: &HashSet<u32>) -> Vec<Stray> {
    let ours = format!(":{}:{}", std::process::id(), home.display());
    children()
        .into_iter()
        .filter(|pid| !leaders.contains(pid))
        .map(|pid| Stray {
            pid,
            run: token_of(pid).and_then(|token| parse_token(&token, &ours)),
        })
        .collect()
}

/// Our children whose environment holds exactly `VELOS_RUN=<token>`. Reads the
/// environment of every child: for the rare case where the supervisor cannot be asked.
pub fn with_token(token: &str) -> Vec<u32> {
    let wanted = format!("{RUN_ENV}={token}");
    children()
        .into_iter()
        .filter(|pid| has_env(*pid, |entry| entry == wanted.as_bytes()))
        .collect()
}

/// Processes left by an earlier daemon of `home`: their token names the home but a
/// daemon pid other than ours (we hold the lock, so that daemon is gone).
pub fn leftovers(home: &Path) -> Vec<u32> {
    let prefix = format!("{RUN_ENV}=");
    let suffix = format!(":{}", home.display());
    let ours = format!(":{}:{}", std::process::id(), home.display());
    scan(|entry| {
        entry.starts_with(prefix.as_bytes())
            && entry.ends_with(suffix.as_bytes())
            && !entry.ends_with(ours.as_bytes())
    })
}

/// How long leftovers of a dead daemon get between SIGTERM and SIGKILL.
const LEFTOVER_KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends what an earlier daemon of `home` left running: what carries its tokens, and the
/// process groups its `state.msgpack` names that are still the ones it started (a member
/// that cleared its environment has no token, but stays in its group): SIGTERM, then
/// SIGKILL to whatever is still there after [`LEFTOVER_KILL_TIMEOUT`]. Runs once, at
/// start-up.
pub async fn end_leftovers(home: std::path::PathBuf) {
    let found = leftovers(&home);
    let groups = saved_groups(&home);
    if found.is_empty() && groups.is_empty() {
        return;
    }
    if !found.is_empty() {
        crate::log(format_args!(
            "ending {} process(es) left running by a daemon that died: {found:?}",
            found.len()
        ));
    }
    for (pgid, members) in &groups {
        crate::log(format_args!(
            "ending process group {pgid} (pids {members:?}) left running by a daemon that died"
        ));
        crate::process::signal_group(*pgid, Signal::TERM);
    }
    signal_all(&found, Signal::TERM);
    // Bounded polling, once, at start-up: there is no event for "these are gone".
    let groups_left = || {
        groups
            .iter()
            .filter(|(pgid, _)| !crate::process::group_members(*pgid).is_empty())
            .map(|(pgid, _)| *pgid)
            .collect::<Vec<u32>>()
    };
    let deadline = std::time::Instant::now() + LEFTOVER_KILL_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if leftovers(&home).is_empty() && groups_left().is_empty() {
            return;
        }
        async_io::Timer::after(std::time::Duration::from_millis(50)).await;
    }
    signal_all(&leftovers(&home), Signal::KILL);
    // A group that still has members is the same group: its number cannot be taken by
    // another while it has any.
    for pgid in groups_left() {
        crate::process::signal_group(pgid, Signal::KILL);
    }
}

/// The groups in `home`'s `state.msgpack` that are still what the dead daemon started,
/// with their live members.
fn saved_groups(home: &Path) -> Vec<(u32, Vec<u32>)> {
    let state = velos_proto::Home::at(home).state_path();
    let Ok(Some(list)) = crate::persist::read(&state) else {
        return Vec::new();
    };
    let boot_id = crate::procstat::boot_id();
    let own_session = rustix::process::getsid(None)
        .ok()
        .map(|sid| sid.as_raw_nonzero().get().unsigned_abs());
    list.groups()
        .into_iter()
        .filter_map(|mark| {
            let members: Vec<(u32, crate::procstat::Status)> =
                crate::process::group_members(mark.pgid)
                    .into_iter()
                    .filter_map(|pid| Some((pid, crate::procstat::status(pid)?)))
                    .collect();
            if plausibly_ours(&mark, boot_id.as_deref(), own_session, &members) {
                Some((mark.pgid, members.into_iter().map(|(pid, _)| pid).collect()))
            } else {
                if !members.is_empty() {
                    crate::log(format_args!(
                        "process group {} is no longer the one velos started; left alone",
                        mark.pgid
                    ));
                }
                None
            }
        })
        .collect()
}

/// Whether the live `members` of the group `mark` names make it the group velos started:
/// the same boot, and its leader alive with the start time saved, or (the leader gone)
/// every member in the saved session (not ours: a daemon run in a terminal shares the
/// terminal's) and started no earlier than the leader. A group's number is not given to
/// another group while it has members, so a group that passes this is the saved one.
pub fn plausibly_ours(
    mark: &GroupMark,
    boot_id: Option<&str>,
    own_session: Option<u32>,
    members: &[(u32, crate::procstat::Status)],
) -> bool {
    if boot_id != Some(mark.boot_id.as_str()) || members.is_empty() {
        return false;
    }
    if let Some((_, leader)) = members.iter().find(|(pid, _)| *pid == mark.pgid) {
        return leader.start_ticks == mark.start_ticks && leader.session == mark.session;
    }
    own_session != Some(mark.session)
        && members.iter().all(|(_, status)| {
            status.pgid == mark.pgid
                && status.session == mark.session
                && status.start_ticks >= mark.start_ticks
        })
}

/// Sends `signal` to each pid and to the process group it leads, if it leads one (a
/// descendant that called `setsid` took its own children into its new group).
pub fn signal_all(pids: &[u32], signal: Signal) {
    for &pid in pids {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            // ESRCH: it ended meanwhile, or leads no group: as wanted either way.
            let _ = rustix::process::kill_process(pid, signal);
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }
}

/// Ends every stray whose run is over by `run_is_over(id, run)`, and collects every stray
/// that has exited. Called on SIGCHLD and after a run ends: a descendant's death
/// re-parents its children to us first.
pub fn reap(strays: &[Stray], run_is_over: impl Fn(u32, u64) -> bool) {
    for stray in strays {
        if let Some((id, run)) = stray.run
            && run_is_over(id, run)
        {
            signal_all(&[stray.pid], Signal::KILL);
        }
        if let Some(pid) = i32::try_from(stray.pid).ok().and_then(Pid::from_raw) {
            // Not exited yet (None) or not ours any more (ECHILD): nothing to do.
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
    }
}

/// Ends everything still carrying one of this daemon's tokens, until nothing does (at
/// most a second). Called once every process has stopped, before the daemon exits.
pub fn end_ours(home: &Path) {
    let ours = format!(":{}:{}", std::process::id(), home.display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let found =
            scan(|entry| entry.starts_with(RUN_ENV.as_bytes()) && entry.ends_with(ours.as_bytes()));
        if found.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        signal_all(&found, Signal::KILL);
        reap(&strays(home, &HashSet::new()), |_, _| true);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The `VELOS_RUN` value in `pid`'s environment.
fn token_of(pid: u32) -> Option<String> {
    let environ = crate::platform::environ(pid)?;
    let prefix = format!("{RUN_ENV}=");
    environ
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .and_then(|value| String::from_utf8(value.to_vec()).ok())
}

/// The process id and run of a token whose daemon part is `ours` (`:<pid>:<home>`).
fn parse_token(token: &str, ours: &str) -> Option<(u32, u64)> {
    let head = token.strip_suffix(ours)?;
    let (id, run) = head.split_once(':')?;
    Some((id.parse().ok()?, run.parse().ok()?))
}

/// The pids of this process's children.
fn children() -> Vec<u32> {
    crate::platform::children(std::process::id())
}

/// Pids (other than ours) with an environment entry that `matches`.
fn scan(matches: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    let me = std::process::id();
    crate::platform::pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| has_env(pid, &matches))
        .collect()
}

/// Whether `pid`'s environment has an entry that `matches`. Unreadable (gone, or another
/// user's) means no.
fn has_env(pid: u32, matches: impl Fn(&[u8]) -> bool) -> bool {
    crate::platform::environ(pid).is_some_and(|environ| environ.split(|&b| b == 0).any(matches))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn escaped_children_are_found_by_token_and_leftovers_skip_ours() {
        let home = Path::new("/tmp/velosd-orphans-test");
        let mine = token(7, 1, home);
        let stranger = format!("3:1:999999999:{}", home.display());
        let mut ours = std::process::Command::new("sleep")
            .arg("30")
            .env(RUN_ENV, &mine)
            .spawn()
            .unwrap();
        let mut old = std::process::Command::new("sleep")
            .arg("30")
            .env(RUN_ENV, &stranger)
            .spawn()
            .unwrap();
        // spawn() returns once exec has begun; the kernel sets up the new environment a
        // moment later.
        for pid in [ours.id(), old.id()] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while crate::platform::environ(pid).is_none_or(|e| e.is_empty()) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no environment for {pid}"
                );
                std::thread::yield_now();
            }
        }
        // Our own children; the test harness has other threads' children too, so look for
        // these two.
        let found = strays(home, &HashSet::new());
        assert!(found.contains(&Stray {
            pid: ours.id(),
            run: Some((7, 1))
        }));
        assert!(found.contains(&Stray {
            pid: old.id(),
            run: None
        }));
        let leaders = HashSet::from([ours.id()]);
        assert!(!strays(home, &leaders).iter().any(|s| s.pid == ours.id()));
        assert_eq!(leftovers(home), [old.id()]);
        let suffix = format!(":{}:{}", std::process::id(), home.display());
        assert_eq!(token_of(old.id()), Some(stranger.clone()));
        assert_eq!(parse_token(&mine, &suffix), Some((7, 1)));
        assert_eq!(parse_token(&stranger, &suffix), None);
        ours.kill().unwrap();
        old.kill().unwrap();
        ours.wait().unwrap();
        old.wait().unwrap();
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::procstat::Status;

    fn mark() -> GroupMark {
        GroupMark {
            pgid: 100,
            start_ticks: 5000,
            session: 90,
            boot_id: "boot".into(),
        }
    }

    fn member(pgid: u32, session: u32, start_ticks: u64) -> Status {
        Status {
            pgid,
            session,
            start_ticks,
            zombie: false,
        }
    }

    #[test]
    fn only_the_saved_group_is_taken_for_ours() {
        let mark = mark();
        let boot = Some("boot");
        // The leader alive, as started.
        let leader = (100, member(100, 90, 5000));
        assert!(plausibly_ours(&mark, boot, Some(1), &[leader]));
        // Another boot, or no members: no.
        assert!(!plausibly_ours(&mark, Some("other"), Some(1), &[leader]));
        assert!(!plausibly_ours(&mark, boot, Some(1), &[]));
        // The pid reused by a later process: not ours.
        let stranger = (100, member(100, 90, 7000));
        assert!(!plausibly_ours(&mark, boot, Some(1), &[stranger]));
        // The leader gone, a member of its session started after it: ours.
        let child = (101, member(100, 90, 5100));
        assert!(plausibly_ours(&mark, boot, Some(1), &[child]));
        // ... unless the session is our own (a daemon run in a terminal shares it), or
        // another session, or the member is older than the leader.
        assert!(!plausibly_ours(&mark, boot, Some(90), &[child]));
        assert!(!plausibly_ours(
            &mark,
            boot,
            Some(1),
            &[(101, member(100, 91, 5100))]
        ));
        assert!(!plausibly_ours(
            &mark,
            boot,
            Some(1),
            &[(101, member(100, 90, 4000))]
        ));
    }
}
