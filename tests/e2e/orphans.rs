//! No orphans, no zombies (issue 3, promise 5): whatever a process starts ends with it.
//!
//! `escapes.py` leaves its process group in the ways real programs do: a grandchild that
//! stays in the group, one that cleared its environment, and a double-forked one in a
//! session of its own (with a worker child of its own), every one of them ignoring SIGTERM.
//! After stop, delete, `velos kill`, daemon SIGTERM, and a run that ends by itself, none of
//! them may survive, and no zombie may stay with the daemon as its parent.
//!
//! How velos reaches them (Linux), and so what these tests rely on:
//! - The process group: every child leads its own; stop signals the group, and when the
//!   leader exits, whatever is left of the group gets SIGTERM (unless a stop sent it
//!   already) and SIGKILL at the kill timeout. This reaches a descendant that cleared its
//!   environment, as long as it stayed in the group.
//! - The run token: every run gets `VELOS_RUN=<id>:<run>:<daemon pid>:<home>`, which
//!   descendants inherit. The daemon is a child subreaper, so a descendant whose parent
//!   exits is re-parented to the daemon instead of init; when the run's leader exits, the
//!   daemon's children carrying the token are ended like the group (SIGTERM, SIGKILL at
//!   the kill timeout), each with the group it leads.
//! - Reaping: re-parented orphans that exit are reaped by the daemon on SIGCHLD.
//!
//! - The saved group: `state.msgpack` records each run's process group (with its leader's
//!   start time and session), and the daemon after a SIGKILLed one ends the groups that
//!   are still the ones velos started, reaching a member that cleared its environment.
//!
//! Out of reach, and so not tested: a descendant that clears its environment *and* leaves
//! the group (no token to find it by, no group to signal). On macOS there is no subreaper
//! and no token scan; the process group is the whole reach there.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;
use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, pid_alive, signal_pid, wait_gone, wait_until};

/// How a test ends the process.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Stop,
    Delete,
    Kill,
    DaemonSigterm,
}

#[test]
fn stop_ends_every_descendant_including_those_that_left_the_group() {
    every_descendant_ends_on(Ending::Stop);
}

#[test]
fn delete_ends_every_descendant_including_those_that_left_the_group() {
    every_descendant_ends_on(Ending::Delete);
}

#[test]
fn velos_kill_ends_every_descendant_including_those_that_left_the_group() {
    every_descendant_ends_on(Ending::Kill);
}

#[test]
fn daemon_sigterm_ends_every_descendant_including_those_that_left_the_group() {
    every_descendant_ends_on(Ending::DaemonSigterm);
}

#[track_caller]
fn every_descendant_ends_on(ending: Ending) {
    let home = TestHome::new();
    let (reported, daemon) = start_escapes(&home, "escapes", "stay");
    let leader = reported.pid("leader");
    assert_left_the_group(&reported, daemon);

    match ending {
        Ending::Stop => {
            home.velos(&["stop", "escapes"]).success();
            assert_eq!(home.get("escapes").status, "stopped");
        }
        Ending::Delete => {
            home.velos(&["delete", "escapes"]).success();
            assert_eq!(home.find("escapes"), None, "delete left the entry");
        }
        Ending::Kill => {
            home.velos(&["kill"]).success();
        }
        Ending::DaemonSigterm => {
            signal_pid(daemon, Signal::TERM);
            wait_gone(daemon, "the daemon after SIGTERM");
        }
    }
    assert!(
        !pid_alive(leader),
        "the leader {leader} survived {ending:?}"
    );
    wait_all_gone(&reported, &format!("{ending:?}"));
    if matches!(ending, Ending::Stop | Ending::Delete) {
        wait_no_zombies_of(daemon);
        wait_until(WAIT, "only the daemon to carry this home", || {
            let left: Vec<i32> = home.processes();
            if left == [daemon] {
                Ok(())
            } else {
                Err(format!("daemon {daemon}; processes: {}", describe(&left)))
            }
        });
    } else {
        wait_until(WAIT, "no process to carry this home", || {
            let left = home.processes();
            if left.is_empty() {
                Ok(())
            } else {
                Err(describe(&left))
            }
        });
    }
}

#[test]
fn a_run_that_ends_by_itself_takes_its_escaped_descendants_with_it() {
    let home = TestHome::new();
    // The leader exits 0 as soon as it has written the pid file.
    let (reported, daemon) = start_escapes(&home, "exits", "exit");
    wait_all_gone(&reported, "the run's own end");
    wait_no_zombies_of(daemon);
}

#[test]
fn a_child_that_exits_while_being_stopped_leaves_nothing_behind() {
    let home = TestHome::new();
    let pids_file = home.path().join("pids");
    // SIGTERM makes it double-fork a clean-up helper (which ignores SIGTERM) and exit 0.
    // The helper is part of the run, so it gets the rest of the kill timeout, then SIGKILL.
    home.velos(&[
        "start",
        &fixture("escapes.py"),
        "--name",
        "cleaner",
        "--kill-timeout",
        "1s",
        "--",
        path_arg(&pids_file),
        "term-exits",
    ])
    .success();
    home.wait_log("cleaner", Stream::Out, "ready");
    let leader = home.wait_running("cleaner").pid.expect("running has a pid");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");

    let stop = home.velos(&["stop", "cleaner"]);
    stop.success();
    assert!(
        stop.elapsed < Duration::from_secs(4),
        "stop took {:?}: the helper should get SIGKILL at the 1s kill timeout\n{stop}",
        stop.elapsed
    );
    let reported = Reported::read(&pids_file).unwrap_or_else(|| {
        panic!(
            "the SIGTERM handler wrote no {} before the stop returned",
            pids_file.display()
        )
    });
    reported.record(&home);
    assert_eq!(reported.pid("leader"), leader);
    let proc = home.get("cleaner");
    assert_eq!(
        (proc.status.as_str(), proc.exit_code),
        ("stopped", Some(0)),
        "{proc:?}"
    );
    wait_all_gone(&reported, "a stop the child answered by exiting");
    wait_no_zombies_of(daemon);
}

#[test]
fn orphans_re_parented_to_the_daemon_are_reaped_not_left_as_zombies() {
    let home = TestHome::new();
    // Ten double-forked orphans that exit as soon as their first parent has gone.
    let (reported, daemon) = start_escapes(&home, "orphans", "zombies");
    let orphans = reported.role("orphan");
    assert_eq!(orphans.len(), 10, "{reported:?}");
    for (pid, new_parent) in &orphans {
        assert_eq!(
            *new_parent,
            Some(daemon),
            "orphan {pid} was re-parented to {new_parent:?}, not to the daemon {daemon} \
             (a child subreaper)"
        );
    }
    // Each exits right after reporting; then it must leave the process table, not stay
    // behind as the daemon's zombie.
    wait_until(WAIT, "the exited orphans to be reaped", || {
        let children = children_of(daemon);
        let left: Vec<i32> = orphans
            .iter()
            .map(|&(pid, _)| pid)
            .filter(|pid| children.contains(pid))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(describe(&left))
        }
    });
    wait_no_zombies_of(daemon);
    // Reaping the orphans left the managed child alone.
    let leader = reported.pid("leader");
    assert!(pid_alive(leader), "the leader {leader} died");
    assert_eq!(home.get("orphans").status, "running");
}

/// Starts `escapes.py MODE` as `name`; returns what it reported and the daemon's pid.
#[track_caller]
fn start_escapes(home: &TestHome, name: &str, mode: &str) -> (Reported, i32) {
    let pids_file = home.path().join(format!("{name}.pids"));
    home.velos(&[
        "start",
        &fixture("escapes.py"),
        "--name",
        name,
        "--kill-timeout",
        "300ms",
        "--",
        path_arg(&pids_file),
        mode,
    ])
    .success();
    let reported = wait_until(WAIT, &format!("{}", pids_file.display()), || {
        Reported::read(&pids_file)
    });
    reported.record(home);
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    (reported, daemon)
}

/// Checks that `escapes.py stay` really did leave the group in every way it claims.
#[track_caller]
fn assert_left_the_group(reported: &Reported, daemon: i32) {
    let leader = reported.pid("leader");
    for (role, pid) in reported.all() {
        assert!(
            pid_alive(pid),
            "{role} {pid} is not running: {}",
            describe(&[pid])
        );
    }
    for role in ["grandchild", "bare"] {
        let pid = reported.pid(role);
        assert_eq!(stat(pid).map(|s| s.pgid), Some(leader), "{role} {pid}");
    }
    // `bare` is reported when forked, before it execs with an empty environment: wait for
    // the exec rather than catch it in between on a loaded machine.
    let bare = reported.pid("bare");
    wait_until(WAIT, "bare to exec with an empty environment", || {
        let environ = std::fs::read(format!("/proc/{bare}/environ")).unwrap_or_default();
        if environ.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "bare {bare} has an environment: {:?}",
                String::from_utf8_lossy(&environ)
            ))
        }
    });
    for role in ["escaped", "worker"] {
        let pid = reported.pid(role);
        let pgid = stat(pid).map(|s| s.pgid);
        assert!(
            pgid.is_some() && pgid != Some(leader),
            "{role} {pid} did not leave the group {leader}: {}",
            describe(&[pid])
        );
    }
    let escaped = reported.pid("escaped");
    assert_eq!(
        stat(escaped).map(|s| s.ppid),
        Some(daemon),
        "the escaped process {escaped} was not re-parented to the daemon {daemon} \
         (a child subreaper): {}",
        describe(&[escaped])
    );
}

/// Waits until every process `reported` names is gone (zombies count as gone: they have
/// exited; whether someone reaps them is checked apart).
#[track_caller]
fn wait_all_gone(reported: &Reported, after: &str) {
    wait_until(
        WAIT,
        &format!("every process escapes.py started to be gone after {after}"),
        || {
            let alive = reported.alive();
            if alive.is_empty() {
                Ok(())
            } else {
                Err(format!("still running:\n{}", alive.join("\n")))
            }
        },
    );
}

/// Waits until no zombie has `daemon` as its parent.
#[track_caller]
pub fn wait_no_zombies_of(daemon: i32) {
    wait_until(
        WAIT,
        &format!("no zombie to have the daemon {daemon} as parent"),
        || {
            let zombies = zombies_of(daemon);
            if zombies.is_empty() {
                Ok(())
            } else {
                Err(describe(&zombies))
            }
        },
    );
}

/// The pids in state Z whose parent is `parent`.
pub fn zombies_of(parent: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.state == 'Z' && s.ppid == parent))
        .collect()
}

/// The pids whose parent is `parent`, zombies included.
fn children_of(parent: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and parentheses.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgid })
}

/// `pid (state, ppid, pgid) command line` for each pid, for failure messages.
pub fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                .unwrap_or_default();
            match stat(pid) {
                Some(s) => format!(
                    "{pid} (state {}, ppid {}, pgid {}) {}",
                    s.state,
                    s.ppid,
                    s.pgid,
                    cmdline.trim()
                ),
                None => format!("{pid} (gone)"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A path as a command-line argument.
pub fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// What `escapes.py` wrote to its pid file: `role pid [ppid]` lines.
///
/// Dropping it SIGKILLs the `bare` process if it is still the `sleep 3601` it was: it has
/// no environment, so the harness's clean-up (which finds processes by `VELOS_HOME`)
/// cannot.
#[derive(Debug)]
pub struct Reported {
    lines: Vec<(String, i32, Option<i32>)>,
}

impl Reported {
    /// Reads the file; `None` until it is there.
    pub fn read(path: &Path) -> Option<Reported> {
        let text = std::fs::read_to_string(path).ok()?;
        let lines = text
            .lines()
            .map(|line| {
                let mut words = line.split_whitespace();
                let role = words.next()?.to_owned();
                let pid = words.next()?.parse().ok()?;
                let ppid = words.next().and_then(|ppid| ppid.parse().ok());
                Some((role, pid, ppid))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Reported { lines })
    }

    /// The pid of the one process with `role`.
    #[track_caller]
    pub fn pid(&self, role: &str) -> i32 {
        match self.role(role).as_slice() {
            [(pid, _)] => *pid,
            other => panic!("expected one {role} in {self:?}, got {other:?}"),
        }
    }

    /// Every process with `role`, with its reported parent if any.
    pub fn role(&self, role: &str) -> Vec<(i32, Option<i32>)> {
        self.lines
            .iter()
            .filter(|(name, _, _)| name == role)
            .map(|&(_, pid, ppid)| (pid, ppid))
            .collect()
    }

    /// Every process still alive, one `role: description` each.
    pub fn alive(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|&(_, pid)| pid_alive(pid))
            .map(|(role, pid)| format!("{role}: {}", describe(&[pid])))
            .collect()
    }

    /// Every process, by role.
    pub fn all(&self) -> Vec<(String, i32)> {
        self.lines
            .iter()
            .map(|(role, pid, _)| (role.clone(), *pid))
            .collect()
    }

    /// Has the harness kill them all when the test ends.
    pub fn record(&self, home: &TestHome) {
        for (_, pid) in self.all() {
            home.record(pid);
        }
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        let by_role: BTreeMap<&str, i32> = self
            .lines
            .iter()
            .map(|(role, pid, _)| (role.as_str(), *pid))
            .collect();
        if let Some(&bare) = by_role.get("bare") {
            let cmdline = std::fs::read(format!("/proc/{bare}/cmdline")).unwrap_or_default();
            if cmdline == b"sleep\x003601\x00" {
                signal_pid(bare, Signal::KILL);
            }
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_group_member_without_the_token_is_ended_by_the_next_daemon() {
    let home = TestHome::new();
    let pid_file = home.path().join("bare.pid");
    home.velos(&[
        "start",
        &fixture("bare_child.sh"),
        "--name",
        "bare",
        "--",
        pid_file.to_str().expect("UTF-8 path"),
    ])
    .success();
    let bare: i32 = wait_until(WAIT, "the bare child's pid file", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    home.record(bare);
    let leader = home.wait_running("bare").pid.expect("running has a pid");

    home.kill_daemon();
    // The leader gets SIGTERM from the kernel (parent-death signal) and dies; the child
    // that cleared its environment stays in the group, with nothing to find it by but the
    // group the dead daemon saved.
    wait_gone(leader, "the leader after the daemon's death");
    assert!(
        pid_alive(bare),
        "the bare child {bare} died with the daemon"
    );

    home.velos(&["ping"]).success();
    wait_gone(bare, "the bare child, ended by the next daemon");
    // The daemon's log lines are written by a thread of their own: wait for this one.
    let wanted = format!("process group {leader}");
    wait_until(WAIT, "velosd.log to say which group it ended", || {
        let log = std::fs::read_to_string(home.home().daemon_log_path()).unwrap_or_default();
        if log.contains(&wanted) {
            Ok(())
        } else {
            Err(log)
        }
    });
}
