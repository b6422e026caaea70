//! Signals sent to the daemon itself (issue 8, defect 3): SIGHUP reopens the log files (so a
//! rename-style logrotate works), SIGUSR1 and SIGUSR2 are logged and ignored, SIGPIPE is
//! ignored, SIGQUIT is a graceful shutdown like SIGTERM; each one it handles leaves a line
//! in `velosd.log`, and the daemon and its apps live on through all but the last.

use std::path::Path;

use rustix::process::Signal;
use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, pid_alive, signal_pid, wait_gone, wait_until};

/// The text of `velosd.log`.
pub fn daemon_log(home: &TestHome) -> String {
    std::fs::read_to_string(home.home().daemon_log_path()).unwrap_or_default()
}

/// Waits until `velosd.log` has a line containing `needle`.
#[track_caller]
pub fn wait_daemon_log(home: &TestHome, needle: &str) {
    wait_until(WAIT, &format!("{needle:?} in velosd.log"), || {
        let log = daemon_log(home);
        if log.lines().any(|line| line.contains(needle)) {
            Ok(())
        } else {
            Err(log)
        }
    });
}

#[test]
fn sighup_sigusr1_sigusr2_and_sigpipe_leave_the_daemon_and_its_apps_running() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    let before = home.wait_running("app");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");

    for (signal, name) in [
        (Signal::HUP, "SIGHUP"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::USR2, "SIGUSR2"),
    ] {
        signal_pid(daemon, signal);
        wait_daemon_log(&home, &format!("received {name}"));
        assert!(pid_alive(daemon), "the daemon died of {name}");
        assert_eq!(
            home.ping().pid as i32,
            daemon,
            "another daemon after {name}"
        );
        assert_eq!(home.get("app"), before, "the app changed after {name}");
    }
    // SIGPIPE stays ignored: a client that hangs up mid-answer must not kill the daemon.
    signal_pid(daemon, Signal::PIPE);
    assert_eq!(
        home.ping().pid as i32,
        daemon,
        "another daemon after SIGPIPE"
    );
    assert_eq!(home.get("app"), before, "the app changed after SIGPIPE");
}

#[test]
fn sighup_moves_logging_to_a_new_file_after_a_logrotate_rename() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("ticker.sh"), "--name", "ticker"])
        .success();
    home.wait_log("ticker", Stream::Out, "tick 3\n");
    let path = home.home().log_path("ticker", Stream::Out);
    let rotated = path.with_extension("log.1");
    // What logrotate does without copytruncate: rename, then HUP the writer.
    std::fs::rename(&path, &rotated).expect("rename the log file");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    signal_pid(daemon, Signal::HUP);

    let new = wait_until(WAIT, "ticks in a new logs/ticker-out.log", || {
        let found = ticks(&path);
        (found.len() >= 3).then_some(found)
    });
    // Nothing lost and nothing twice: the old file ends where the new one begins.
    let old = ticks(&rotated);
    let last_old = *old.last().expect("ticks in the renamed file");
    assert_eq!(
        new[0],
        last_old + 1,
        "the renamed file ends at tick {last_old}, the new one starts at {}",
        new[0]
    );
    assert!(new.windows(2).all(|w| w[1] == w[0] + 1), "gap in {new:?}");
    wait_daemon_log(&home, "received SIGHUP");
    assert!(pid_alive(daemon), "the daemon died of SIGHUP");
    assert_eq!(home.get("ticker").status, "running");
    // The renamed file no longer grows.
    let len = std::fs::metadata(&rotated).expect("the renamed file").len();
    home.wait_log(
        "ticker",
        Stream::Out,
        &format!("tick {}\n", new[new.len() - 1] + 3),
    );
    assert_eq!(
        std::fs::metadata(&rotated).expect("the renamed file").len(),
        len,
        "velos still writes into the renamed file"
    );
}

#[test]
fn sigquit_stops_every_process_gracefully_and_the_daemon_exits() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        "/bin/sh",
        "--name",
        "polite",
        "--",
        "-c",
        "trap 'echo said goodbye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
    ])
    .success();
    home.wait_log("polite", Stream::Out, "ready\n");
    let app = home.wait_running("polite").pid.expect("a pid");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");

    signal_pid(daemon, Signal::QUIT);
    wait_gone(daemon, "the daemon after SIGQUIT");
    assert!(!pid_alive(app), "the app {app} outlived the daemon");
    home.wait_log("polite", Stream::Out, "said goodbye\n");
    let log = daemon_log(&home);
    assert!(
        log.lines().any(|line| line.contains("received SIGQUIT")),
        "no SIGQUIT line in velosd.log:\n{log}"
    );
    assert!(
        log.lines().any(|line| line.ends_with(" stopped")),
        "the daemon did not stop cleanly:\n{log}"
    );
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");
    assert!(
        !home.home().socket_path().exists(),
        "velos.sock left behind"
    );
}

/// The tick numbers in a ticker's log file.
fn ticks(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("tick ")?.parse().ok())
        .collect()
}
