//! How stop ends a process: SIGTERM to its process group, SIGKILL after the kill timeout,
//! grandchildren included, and `stop all` / `velos kill` stopping in parallel.

use std::time::Duration;

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, pid_alive, wait_gone, wait_until};

/// Starts `ignore_term.py` as `name` with a 500 ms kill timeout; returns its pid once its
/// SIGTERM handler is in place.
#[track_caller]
fn start_stubborn(home: &TestHome, name: &str) -> i32 {
    home.velos(&[
        "start",
        &fixture("ignore_term.py"),
        "--name",
        name,
        "--kill-timeout",
        "500ms",
    ])
    .success();
    home.wait_log(name, Stream::Out, "ready");
    home.wait_running(name).pid.expect("running has a pid")
}

#[test]
fn stop_escalates_to_sigkill_after_the_kill_timeout() {
    let home = TestHome::new();
    let pid = start_stubborn(&home, "stubborn");

    let stop = home.velos(&["stop", "stubborn"]);
    stop.success();
    assert!(
        stop.elapsed >= Duration::from_millis(400),
        "stop returned after {:?}, before the 500ms kill timeout\n{stop}",
        stop.elapsed
    );
    assert!(
        stop.elapsed <= Duration::from_secs(4),
        "stop took {:?} with a 500ms kill timeout\n{stop}",
        stop.elapsed
    );
    assert!(!pid_alive(pid), "pid {pid} survived the kill timeout");
    #[cfg(target_os = "linux")]
    assert_eq!(
        crate::harness::group_members(pid),
        [] as [i32; 0],
        "the process group outlived the stop"
    );
    let proc = home.get("stubborn");
    assert_eq!(
        proc.status, "stopped",
        "a user's stop ends in stopped: {proc:?}"
    );
}

#[test]
fn a_child_that_exits_on_sigterm_stops_well_before_the_kill_timeout() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "polite",
        "--kill-timeout",
        "5s",
    ])
    .success();
    home.wait_log("polite", Stream::Out, "ready");
    let pid = home.wait_running("polite").pid.expect("running has a pid");

    let stop = home.velos(&["stop", "polite"]);
    stop.success();
    assert!(
        stop.elapsed < Duration::from_secs(2),
        "stop took {:?}; SIGTERM alone should end this child\n{stop}",
        stop.elapsed
    );
    assert!(!pid_alive(pid), "pid {pid} alive after stop");
    assert_eq!(home.get("polite").status, "stopped");
}

#[test]
fn grandchildren_die_with_their_parent_on_stop() {
    let home = TestHome::new();
    let pid_file = home.path().join("grandchild.pid");
    home.velos(&[
        "start",
        &fixture("forks.sh"),
        "--name",
        "forks",
        "--",
        pid_file.to_str().expect("UTF-8 path"),
    ])
    .success();
    let grandchild: i32 = wait_until(WAIT, "the grandchild's pid file", || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    home.record(grandchild);
    let parent = home.wait_running("forks").pid.expect("running has a pid");
    assert!(
        pid_alive(grandchild),
        "the grandchild {grandchild} is not running"
    );

    home.velos(&["stop", "forks"]).success();
    assert!(!pid_alive(parent), "the child {parent} alive after stop");
    // The grandchild got its SIGTERM with the group; give it the moment it takes to die.
    wait_gone(grandchild, "the grandchild");
    #[cfg(target_os = "linux")]
    assert_eq!(
        crate::harness::group_members(parent),
        [] as [i32; 0],
        "the process group outlived the stop"
    );
}

#[test]
fn stop_all_stops_every_process_in_parallel() {
    let home = TestHome::new();
    let pids: Vec<i32> = ["s1", "s2", "s3"]
        .into_iter()
        .map(|name| start_stubborn(&home, name))
        .collect();

    let stop = home.velos(&["stop", "all"]);
    stop.success();
    // One after another would take at least 1.5 s.
    assert!(
        stop.elapsed < Duration::from_millis(1400),
        "`stop all` took {:?} for three 500ms kill timeouts: not in parallel\n{stop}",
        stop.elapsed
    );
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} alive after `stop all`");
    }
}

#[test]
fn kill_stops_every_process_in_parallel() {
    let home = TestHome::new();
    let pids: Vec<i32> = ["k1", "k2", "k3"]
        .into_iter()
        .map(|name| start_stubborn(&home, name))
        .collect();

    let kill = home.velos(&["kill"]);
    kill.success();
    assert!(
        kill.elapsed < Duration::from_millis(1400),
        "`velos kill` took {:?} for three 500ms kill timeouts: not in parallel\n{kill}",
        kill.elapsed
    );
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} alive after `velos kill`");
    }
}
