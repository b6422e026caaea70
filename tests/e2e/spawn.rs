//! Spawn failures (issue 8 defect 6, issue 9 item 9): the message names the real cause (a
//! working directory removed since the start, a `#!` line with CRLF line ends, a `#!` line
//! naming a missing interpreter), and a spawn that fails during an automatic restart is
//! retried with the backoff instead of ending the restarts.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{TestHome, fixture};

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Writes an executable script.
fn script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing a test script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("making a test script executable");
}

/// The `error` of `name` in `list --json`.
fn error_of(home: &TestHome, name: &str) -> String {
    home.entry(name)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_removed_working_directory_is_named_as_the_cause() {
    let home = TestHome::new();
    let cwd = home.path().join("app-dir");
    std::fs::create_dir(&cwd).expect("creating the working directory");
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "moved",
        "--cwd",
        path_arg(&cwd),
    ])
    .success();
    home.wait_running("moved");
    home.velos(&["stop", "moved"]).success();
    std::fs::remove_dir(&cwd).expect("removing the working directory");

    let restart = home.velos(&["restart", "moved"]);
    let wanted = format!("working directory {} no longer exists", cwd.display());
    assert!(
        restart.to_string().contains(&wanted),
        "restart does not say {wanted:?}\n{restart}"
    );
    let error = error_of(&home, "moved");
    assert!(error.contains(&wanted), "list --json error: {error:?}");
    assert!(!error.contains("PATH"), "list --json error: {error:?}");
}

#[test]
fn a_crlf_shebang_is_named_as_the_cause() {
    let home = TestHome::new();
    let path = home.path().join("dos-tool");
    script(&path, "#!/bin/sh\r\necho hi\r\n");

    let start = home.velos(&["start", path_arg(&path)]);
    let error = start.error();
    assert!(
        error.contains(r"bad interpreter '/bin/sh\r' (CRLF line ends?)"),
        "{start}"
    );
    assert!(!error.contains("PATH"), "{start}");
}

#[test]
fn a_shebang_naming_a_missing_interpreter_is_named_as_the_cause() {
    let home = TestHome::new();
    let path = home.path().join("tool");
    script(&path, "#!/nonexistent/interp -x\necho hi\n");
    let start = home.velos(&["start", path_arg(&path)]);
    let error = start.error();
    assert!(
        error.contains("interpreter '/nonexistent/interp' named by the #! line not found"),
        "{start}"
    );
    assert!(!error.contains("PATH"), "{start}");

    // Not executable: velos reads the #! line itself, with the same answer.
    let plain = home.path().join("plain");
    std::fs::write(&plain, "#!/nonexistent/interp\necho hi\n").expect("writing a script");
    let start = home.velos(&["start", path_arg(&plain)]);
    assert!(
        start
            .error()
            .contains("interpreter '/nonexistent/interp' named by the #! line not found"),
        "{start}"
    );
}

#[test]
fn a_spawn_that_fails_during_an_automatic_restart_is_retried_with_the_backoff() {
    let home = TestHome::new();
    let cwd = home.path().join("work");
    std::fs::create_dir(&cwd).expect("creating the working directory");
    // Runs 0.5 s, exits 1: restarted automatically, with the backoff.
    home.velos(&[
        "start",
        &fixture("exit_after.sh"),
        "--name",
        "flaky",
        "--cwd",
        path_arg(&cwd),
        "--max-restarts",
        "50",
        "--",
        "0.5",
        "1",
    ])
    .success();
    home.wait_log("flaky", velos_proto::Stream::Out, "up");
    // The directory goes away for a moment (a deploy swapping it, say): the restart's
    // spawn fails, which must be one more quick failure, not the end.
    std::fs::remove_dir(&cwd).expect("removing the working directory");
    let waiting = crate::harness::wait_until(
        crate::harness::WAIT,
        "a failed restart to wait for the next attempt",
        || {
            let entry = home.entry("flaky");
            let error = entry["error"].as_str().unwrap_or_default();
            if entry["status"] == "waiting" && error.contains("no longer exists") {
                Ok(entry)
            } else {
                Err(entry.to_string())
            }
        },
    );
    let restarts = waiting["restarts"].as_u64().unwrap_or(0);
    std::fs::create_dir(&cwd).expect("creating the working directory again");
    let ups = |home: &TestHome| {
        String::from_utf8_lossy(&home.log_file("flaky", velos_proto::Stream::Out))
            .lines()
            .filter(|line| *line == "up")
            .count()
    };
    let before = ups(&home);
    crate::harness::wait_until(
        crate::harness::WAIT,
        "the process to run again once its directory is back",
        || {
            let entry = home.entry("flaky");
            if ups(&home) > before && entry["restarts"].as_u64().unwrap_or(0) > restarts {
                Ok(())
            } else {
                Err(entry.to_string())
            }
        },
    );
    home.velos(&["stop", "flaky"]).success();
}
