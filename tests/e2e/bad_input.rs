//! Clear errors for every bad user input (issue 3, promise 8): a script that does not
//! exist or cannot be run, an invalid or duplicate name, an unknown id or name, a kill
//! timeout that does not parse. Each is one `error: ...` line on stderr and a non-zero
//! exit, and changes nothing: `velos list --json` and `logs/` are as they were.

use serde_json::Value;

use crate::harness::{TestHome, fixture};

/// A home with one running and one stopped process, so "nothing changed" means something.
#[track_caller]
fn home_with_processes() -> TestHome {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "keeper"])
        .success();
    home.velos(&[
        "start",
        &fixture("exit_with.sh"),
        "--name",
        "done",
        "--",
        "0",
    ])
    .success();
    home.wait_running("keeper");
    home.wait_status("done", "stopped");
    home
}

/// What must not change: each entry's settled fields (not uptime, CPU or memory), and
/// the files in `logs/`.
#[track_caller]
fn state(home: &TestHome) -> (Vec<Value>, Vec<String>) {
    const STABLE: [&str; 11] = [
        "id",
        "name",
        "pid",
        "status",
        "exit_code",
        "restarts",
        "script",
        "interpreter",
        "args",
        "cwd",
        "kill_timeout_ms",
    ];
    let output = home.velos(&["list", "--json"]);
    output.success();
    let Value::Array(entries) = output.json() else {
        panic!("`list --json` is not an array\n{output}");
    };
    let entries = entries
        .iter()
        .map(|entry| {
            STABLE
                .iter()
                .map(|&key| {
                    (
                        key.to_owned(),
                        entry.get(key).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect()
        })
        .collect();
    let mut logs: Vec<String> = std::fs::read_dir(home.home().logs_dir())
        .map(|dir| {
            dir.filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    (entries, logs)
}

/// Runs `velos ARGS`, which must fail with one error line and change nothing; returns
/// the error line.
#[track_caller]
fn refused(home: &TestHome, args: &[&str]) -> String {
    let before = state(home);
    let output = home.velos(args);
    let error = output.error();
    assert_eq!(
        state(home),
        before,
        "`velos {}` changed the state\n{output}",
        args.join(" ")
    );
    error
}

#[test]
fn a_script_that_does_not_exist_is_refused_and_changes_nothing() {
    let home = home_with_processes();
    let missing = home.path().join("no-such-app.js");
    let missing = missing.to_str().expect("UTF-8 path");
    let error = refused(&home, &["start", missing]);
    assert!(
        error.contains("no-such-app.js") && error.contains("not found"),
        "the error should name the missing script: {error:?}"
    );
    let error = refused(&home, &["start", "relative/missing.py", "--name", "rel"]);
    assert!(error.contains("relative/missing.py"), "{error:?}");
}

#[test]
fn a_directory_is_not_a_script() {
    let home = home_with_processes();
    let dir = home.path().to_str().expect("UTF-8 path").to_owned();
    let error = refused(&home, &["start", &dir, "--name", "dir"]);
    assert!(error.contains("directory"), "{error:?}");
}

#[test]
fn a_file_with_no_way_to_run_it_is_refused_with_a_hint_about_interpreter() {
    let home = home_with_processes();
    let data = fixture("not_a_script.bin");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&data).expect("fixture").permissions(),
    );
    assert_eq!(mode & 0o111, 0, "the fixture {data} must not be executable");
    let error = refused(&home, &["start", &data]);
    assert!(
        error.contains("--interpreter"),
        "the error should point at --interpreter: {error:?}"
    );
}

#[test]
fn invalid_names_are_refused_and_change_nothing() {
    let home = home_with_processes();
    let long = "n".repeat(65);
    for name in [
        "",
        ".hidden",
        "-dash",
        "123",
        "all",
        "a/b",
        "../escape",
        "sp ace",
        "tab\t",
        "é",
        &long,
    ] {
        let error = refused(&home, &["start", &fixture("sleeper.sh"), "--name", name]);
        assert!(
            !error.trim_end().ends_with("error:"),
            "empty message for {name:?}"
        );
    }
    // A file stem that is not a valid name, with no --name.
    let odd = home.path().join("1234.sh");
    std::fs::copy(fixture("sleeper.sh"), &odd).expect("copy fixture");
    let error = refused(&home, &["start", odd.to_str().expect("UTF-8 path")]);
    assert!(error.contains("--name"), "{error:?}");
}

#[test]
fn a_duplicate_name_is_refused_and_leaves_the_first_process_alone() {
    let home = home_with_processes();
    let first = home.get("keeper");
    let error = refused(
        &home,
        &["start", &fixture("lines.sh"), "--name", "keeper", "--", "1"],
    );
    assert!(error.contains("keeper"), "{error:?}");
    assert_eq!(home.get("keeper"), first);
    // A stopped process's name is taken too.
    refused(&home, &["start", &fixture("sleeper.sh"), "--name", "done"]);
}

#[test]
fn unknown_ids_and_names_are_refused_for_stop_restart_delete_and_logs() {
    let home = home_with_processes();
    for command in ["stop", "restart", "delete", "logs"] {
        for target in ["99", "ghost"] {
            let error = refused(&home, &[command, target]);
            assert!(
                error.contains(target),
                "`velos {command} {target}` should name what it did not find: {error:?}"
            );
        }
    }
}

#[test]
fn a_kill_timeout_that_does_not_parse_is_refused_before_any_daemon_starts() {
    let home = TestHome::new();
    let script = fixture("sleeper.sh");
    for args in [
        ["start", &script, "--kill-timeout", "nonsense"],
        ["start", &script, "--kill-timeout", "5 parsecs"],
        ["start", &script, "--kill-timeout", ""],
        // `=`: a separate "-1s" would be read as flags.
        ["start", &script, "--kill-timeout=-1s", "--name=negative"],
    ] {
        let output = home.velos(&args);
        let error = output.error();
        assert!(
            error.contains("--kill-timeout"),
            "the error should name --kill-timeout: {error:?}"
        );
    }
    assert!(
        !home.home().pid_path().exists() && !home.home().socket_path().exists(),
        "a usage error started a daemon"
    );

    // With a daemon running, nothing changes either.
    let home = home_with_processes();
    refused(
        &home,
        &[
            "start",
            &fixture("sleeper.sh"),
            "--kill-timeout",
            "nonsense",
        ],
    );
}
