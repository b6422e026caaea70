//! The daemon's own life: a supervisor that dies takes the daemon with it (issue 10, item 2),
//! and the daemon's internal variables never reach a child (issue 9, item 13). The raised
//! open-file limit is in `child_limits.rs`, the corrupt `state.msgpack` in `state_file.rs`.

use std::process::{Child, ExitStatus};

use crate::harness::{TestHome, WAIT, fixture, wait_gone, wait_until};

/// Starts `velosd --no-daemon` in `home` with `env` added (its log in `foreground.log` of
/// the home) and waits until it answers.
fn foreground_daemon(home: &TestHome, env: &[(&str, &str)]) -> Child {
    let child = home.foreground_daemon(env);
    wait_until(WAIT, "the foreground daemon to answer", || {
        crate::harness::ping_socket(&home.home().socket_path())
    });
    child
}

/// Waits (bounded) for `child` to exit.
#[track_caller]
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    wait_until(WAIT, what, || child.try_wait().ok().flatten())
}

#[test]
fn a_supervisor_that_panics_ends_the_daemon_with_a_log_line_and_the_next_command_works() {
    let home = TestHome::new();
    let mut daemon = foreground_daemon(&home, &[("VELOSD_TEST_PANIC", "boom")]);
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "keeper"])
        .success();
    let keeper = home.wait_running("keeper").pid.expect("a pid");

    // The daemon's test-only trigger: starting a process named "boom" panics in the
    // supervisor. The request gets no answer.
    let output = home.velos(&["start", &fixture("sleeper.sh"), "--name", "boom"]);
    assert!(!output.status.success(), "the start succeeded\n{output}");
    let status = wait_exit(
        &mut daemon,
        "the daemon to exit after its supervisor panicked",
    );
    assert!(!status.success(), "the daemon exited with {status}");
    let log = std::fs::read_to_string(home.path().join("foreground.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|line| line.contains("the supervisor panicked")
                && line.contains("VELOSD_TEST_PANIC")),
        "no line in the daemon's log says why it exited:\n{log}"
    );
    // Its children got their parent-death signal.
    wait_gone(keeper, "the keeper after the daemon's exit");
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");

    // The next command starts a new daemon.
    home.velos(&["ping"]).success();
    let new = home.daemon_pid().expect("a new daemon");
    assert_ne!(new as u32, daemon.id(), "the old daemon answers");
    assert!(home.list().is_empty(), "the new daemon's list is not empty");
}

#[cfg(target_os = "linux")]
#[test]
fn a_start_without_env_gives_the_child_no_internal_variable_of_the_daemon() {
    let home = TestHome::new();
    let mut sdk = home.sdk();
    let started = sdk
        .start(velos_proto::StartParams {
            script: fixture("sleeper.sh"),
            name: Some("bare".into()),
            ..Default::default()
        })
        .expect("start without env");
    let pid = started.pid.expect("a pid");
    home.record(pid as i32);
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let names: Vec<String> = environ
        .split(|&byte| byte == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            Some(entry.split_once('=')?.0.to_owned())
        })
        .collect();
    // The daemon's own environment, as the SDK documents for a start without env.
    assert!(names.iter().any(|name| name == "VELOS_HOME"), "{names:?}");
    let internal: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with("VELOSD_"))
        .collect();
    assert!(
        internal.is_empty(),
        "internal variables reached the child: {internal:?}"
    );
}
