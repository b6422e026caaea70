//! The daemon raises its own soft open-files limit to the hard one (room for processes, said
//! by `velos ping`),
//! but its children start with the soft limit the daemon was started with: a program that
//! uses `select()` breaks on descriptors above 1024, which is why systemd too keeps 1024 soft
//! for what it starts.

use std::process::{Command, Stdio};

use crate::harness::{TestHome, bins, fixture};

/// The soft and hard "Max open files" of `pid`, from /proc.
fn open_files_limits(pid: impl std::fmt::Display) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

/// Starts the home's daemon from a shell whose soft open-files limit is 256 (the launcher
/// re-executes itself) and returns its pid.
fn start_daemon_with_soft_limit_256(home: &TestHome) -> u32 {
    let status = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\"")
        .arg(&bins().velosd)
        .env("VELOS_HOME", home.path())
        .stdin(Stdio::null())
        .status()
        .expect("run sh");
    assert!(status.success(), "velosd under `ulimit -Sn 256`: {status}");
    home.ping().pid
}

#[test]
fn the_daemon_raises_its_open_file_limit_to_the_hard_limit_and_says_how_many_processes_fit() {
    let home = TestHome::new();
    let daemon = start_daemon_with_soft_limit_256(&home);
    let (soft, hard) = open_files_limits(daemon);
    assert_eq!(soft, hard, "the daemon's soft limit is not its hard limit");

    let info = home.ping();
    let limit: u64 = soft.parse().expect("a number");
    assert_eq!(info.max_open_files, Some(limit));
    let room = info.max_processes.expect("max_processes in daemon.ping");
    assert!(
        u64::from(room) * 5 < limit && u64::from(room) * 5 + 100 > limit,
        "{room} processes for {limit} descriptors"
    );
    let output = home.velos(&["ping"]);
    output.success();
    assert!(
        output.stdout_str().contains(&format!(
            "open files limit {limit}: room for about {room} processes"
        )),
        "`velos ping` does not say how many processes fit\n{output}"
    );
}

#[test]
fn children_get_the_soft_open_files_limit_the_daemon_was_started_with() {
    let home = TestHome::new();
    let daemon = start_daemon_with_soft_limit_256(&home);
    let (daemon_soft, daemon_hard) = open_files_limits(daemon);
    if daemon_hard == "256" {
        eprintln!("skipped: the hard open-files limit is 256, nothing was raised");
        return;
    }
    assert_eq!(
        daemon_soft, daemon_hard,
        "the daemon did not raise its limit"
    );

    home.velos(&["start", &fixture("sleeper.sh"), "--name", "child"])
        .success();
    let child = home.wait_running("child").pid.expect("running has a pid");
    let (soft, hard) = open_files_limits(child);
    assert_eq!(
        soft, "256",
        "the child's soft open-files limit is the daemon's raised one, not the 256 it was started with"
    );
    assert_eq!(hard, daemon_hard, "the child's hard limit");

    // A restart is a new spawn: the same.
    home.velos(&["restart", "child"]).success();
    let again = home.wait_running("child").pid.expect("running has a pid");
    assert_ne!(again, child, "restart gave no new pid");
    assert_eq!(open_files_limits(again).0, "256", "after a restart");
}
