//! A process's life through the CLI: start, list, logs, stop, restart, delete; `all`; ids as
//! selectors; names and arguments; the errors and statuses the README promises.

use rustix::process::Signal;
use velos_proto::Stream;

use crate::harness::{
    TestHome, WAIT, fixture, logged_lines, pid_alive, signal_pid, wait_gone, wait_until,
};

#[test]
fn start_list_logs_stop_delete() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "web"])
        .success();

    let web = home.wait_running("web");
    let pid = web.pid.expect("running has a pid");
    assert!(
        pid_alive(pid),
        "pid {pid} of a running process is not alive"
    );
    assert_eq!(web.exit_code, None, "a running process has no exit code");

    let table = home.velos(&["list"]);
    let text = table.success().stdout_str();
    let row = text
        .lines()
        .find(|line| line.contains("web"))
        .unwrap_or_else(|| panic!("no row for web in the table\n{table}"));
    assert!(
        row.contains("running") && row.contains(&pid.to_string()),
        "expected the row to show status running and pid {pid}, got {row:?}"
    );

    let logs = home.wait_logs_show(&["logs", "web"], "web", &["ready"]);
    assert_eq!(logged_lines(&logs.stdout_str(), "web"), ["ready"], "{logs}");

    home.velos(&["stop", "web"]).success();
    let web = home.get("web");
    assert_eq!(web.status, "stopped", "{web:?}");
    assert!(
        !pid_alive(pid),
        "pid {pid} still alive after `velos stop` returned"
    );

    home.velos(&["delete", "web"]).success();
    let list = home.list();
    assert!(
        list.is_empty(),
        "expected an empty list after delete, got {list:#?}"
    );
}

#[test]
fn restart_keeps_name_and_id_and_gives_a_new_pid() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "first"])
        .success();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "second"])
        .success();
    let before = home.wait_running("second");
    let old_pid = before.pid.expect("running has a pid");

    home.velos(&["restart", "second"]).success();
    let after = home.wait_running("second");
    assert_eq!(after.id, before.id, "restart changed the id");
    assert_ne!(after.pid, Some(old_pid), "restart kept the old pid");
    assert!(!pid_alive(old_pid), "old pid {old_pid} alive after restart");
    assert!(pid_alive(after.pid.expect("running has a pid")));
    assert_eq!(home.list().len(), 2, "restart added or removed an entry");

    // A stopped process restarts too.
    home.velos(&["stop", "second"]).success();
    home.velos(&["restart", "second"]).success();
    let again = home.wait_running("second");
    assert_eq!(again.id, before.id);
    assert_ne!(again.pid, after.pid);
}

#[test]
fn commands_on_an_unknown_process_fail_with_one_error_line() {
    let home = TestHome::new();
    for args in [
        ["stop", "nosuch"],
        ["restart", "nosuch"],
        ["delete", "nosuch"],
        ["logs", "nosuch"],
        ["stop", "42"],
    ] {
        let error = home.velos(&args).error();
        assert!(
            error.contains(args[1]),
            "expected the error to name {:?}, got {error:?}",
            args[1]
        );
    }
}

#[test]
fn a_duplicate_name_is_refused_and_adds_nothing() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "dup"])
        .success();
    let first = home.wait_running("dup");

    home.velos(&["start", &fixture("sleeper.sh"), "--name", "dup"])
        .error();
    let list = home.list();
    assert_eq!(list.len(), 1, "expected one entry, got {list:#?}");
    assert_eq!(list[0].pid, first.pid, "the first process was replaced");
}

#[test]
fn invalid_names_are_refused() {
    let home = TestHome::new();
    let too_long = format!("--name={}", "x".repeat(65));
    for name_arg in [
        "--name=bad name",
        "--name=a/b",
        "--name=../escape",
        "--name=all",
        "--name=123",
        "--name=.hidden",
        "--name=-dash",
        "--name=",
        &too_long,
    ] {
        home.velos(&["start", &fixture("sleeper.sh"), name_arg])
            .error();
    }
    let list = home.list();
    assert!(list.is_empty(), "a refused name added an entry: {list:#?}");
    // 64 characters is the longest allowed name.
    let longest = "y".repeat(64);
    home.velos(&["start", &fixture("sleeper.sh"), "--name", &longest])
        .success();
    home.wait_running(&longest);
}

#[test]
fn a_script_that_does_not_exist_is_refused_and_adds_nothing() {
    let home = TestHome::new();
    let missing = home.path().join("nope.sh");
    home.velos(&["start", missing.to_str().expect("UTF-8 path")])
        .error();
    let list = home.list();
    assert!(
        list.is_empty(),
        "a missing script added an entry: {list:#?}"
    );
    assert!(
        !home.home().log_path("nope", Stream::Out).exists(),
        "a missing script got a log file"
    );
}

#[test]
fn exit_codes_set_the_status() {
    let home = TestHome::new();
    let script = fixture("exit_with.sh");
    home.velos(&[
        "start",
        &script,
        "--name",
        "three",
        "--no-autorestart",
        "--",
        "3",
    ])
    .success();
    home.velos(&["start", &script, "--name", "zero", "--", "0"])
        .success();

    let three = home.wait_status("three", "errored");
    assert_eq!(three.exit_code, Some(3), "{three:?}");
    let zero = home.wait_status("zero", "stopped");
    assert_eq!(zero.exit_code, Some(0), "{zero:?}");
}

#[test]
fn stop_all_and_delete_all_act_on_every_process() {
    let home = TestHome::new();
    let names = ["one", "two", "three"];
    for name in names {
        home.velos(&["start", &fixture("sleeper.sh"), "--name", name])
            .success();
    }
    let pids: Vec<i32> = names
        .iter()
        .map(|name| home.wait_running(name).pid.expect("running has a pid"))
        .collect();

    home.velos(&["stop", "all"]).success();
    let list = home.list();
    assert_eq!(list.len(), 3, "stop all removed entries: {list:#?}");
    for proc in &list {
        assert_eq!(proc.status, "stopped", "{list:#?}");
    }
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} alive after `stop all`");
    }

    home.velos(&["delete", "all"]).success();
    let list = home.list();
    assert!(
        list.is_empty(),
        "expected no entries after `delete all`, got {list:#?}"
    );
}

#[test]
fn delete_stops_a_running_process() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "doomed"])
        .success();
    let pid = home.wait_running("doomed").pid.expect("running has a pid");
    home.velos(&["delete", "doomed"]).success();
    assert_eq!(home.find("doomed"), None, "the entry is still listed");
    wait_gone(pid, "the deleted process");
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh")]).success();
    home.wait_running("sleeper");

    let scripts = home.path().join("scripts");
    std::fs::create_dir(&scripts).expect("mkdir scripts");
    let copy = scripts.join("my.app.sh");
    std::fs::copy(fixture("sleeper.sh"), &copy).expect("copy fixture");
    home.velos(&["start", copy.to_str().expect("UTF-8 path")])
        .success();
    home.wait_running("my.app");
    assert_eq!(home.list().len(), 2);
}

#[test]
fn a_relative_script_path_is_resolved_against_the_cli_directory() {
    let home = TestHome::new();
    let fixtures = std::path::Path::new(&fixture("sleeper.sh"))
        .parent()
        .expect("fixtures dir")
        .to_owned();
    home.cmd(&["start", "sleeper.sh", "--name", "relative"])
        .current_dir(&fixtures)
        .run()
        .success();
    home.wait_running("relative");
    home.wait_log("relative", Stream::Out, "ready");
}

#[test]
fn arguments_after_double_dash_reach_the_script() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("args.sh"),
        "--name",
        "args",
        "--",
        "one",
        "two words",
        "--flag",
        "-n",
        "3",
    ])
    .success();
    home.wait_log("args", Stream::Out, "done\n");
    let log = String::from_utf8_lossy(&home.log_file("args", Stream::Out)).into_owned();
    assert_eq!(
        log, "arg: one\narg: two words\narg: --flag\narg: -n\narg: 3\ndone\n",
        "arguments did not arrive as given"
    );
}

#[test]
fn ids_select_processes_like_names() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "alpha"])
        .success();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "beta"])
        .success();
    let alpha = home.wait_running("alpha");
    let beta = home.wait_running("beta");
    assert_ne!(alpha.id, beta.id, "two processes share an id");
    let id = beta.id.to_string();

    home.velos(&["stop", &id]).success();
    assert_eq!(home.get("beta").status, "stopped");
    assert_eq!(
        home.get("alpha").status,
        "running",
        "stopping by id hit alpha"
    );

    home.velos(&["restart", &id]).success();
    let restarted = home.wait_running("beta");
    assert_eq!(restarted.id, beta.id);
    assert_ne!(restarted.pid, beta.pid);

    home.wait_logs_show(&["logs", &id], "beta", &["ready"]);

    home.velos(&["delete", &id]).success();
    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["alpha"], "delete by id removed the wrong entry");
}

#[test]
fn a_process_killed_by_a_signal_nobody_asked_for_is_errored() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "victim",
        "--no-autorestart",
    ])
    .success();
    let pid = home.wait_running("victim").pid.expect("running has a pid");
    signal_pid(pid, Signal::KILL);
    let victim = home.wait_status("victim", "errored");
    assert_eq!(
        victim.exit_code, None,
        "killed by a signal, not exited: {victim:?}"
    );
}

#[test]
fn the_process_keeps_the_cli_directory_and_environment_across_restarts() {
    let home = TestHome::new();
    let workdir = home.path().join("work");
    std::fs::create_dir(&workdir).expect("mkdir work");
    let workdir = workdir.canonicalize().expect("canonical work dir");
    home.cmd(&["start", &fixture("env.sh"), "--name", "env"])
        .current_dir(&workdir)
        .env("VELOS_TEST_GREETING", "hello")
        .run()
        .success();
    let expected = format!("cwd: {}\ngreeting: hello\ndone\n", workdir.display());
    home.wait_log("env", Stream::Out, "done\n");
    let log = String::from_utf8_lossy(&home.log_file("env", Stream::Out)).into_owned();
    assert_eq!(
        log, expected,
        "the process did not get the CLI's directory and environment"
    );

    // Restarted from elsewhere, without the variable: it keeps what it had at start.
    home.wait_status("env", "stopped");
    home.velos(&["restart", "env"]).success();
    wait_until(WAIT, "a second run in the log", || {
        let log = String::from_utf8_lossy(&home.log_file("env", Stream::Out)).into_owned();
        if log.matches("done\n").count() == 2 {
            Ok(log)
        } else {
            Err(log)
        }
    });
    let log = String::from_utf8_lossy(&home.log_file("env", Stream::Out)).into_owned();
    assert_eq!(
        log,
        expected.repeat(2),
        "restart changed the directory or environment"
    );
}

#[test]
fn the_interpreter_comes_from_the_shebang_or_the_flag() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("shebang_tool"), "--name", "shebang"])
        .success();
    home.wait_log("shebang", Stream::Out, "ran by shebang");
    home.wait_running("shebang");

    home.velos(&[
        "start",
        &fixture("plain.txt"),
        "--name",
        "flagged",
        "--interpreter",
        "sh",
    ])
    .success();
    home.wait_log("flagged", Stream::Out, "ran by sh");
    home.wait_running("flagged");
}

#[test]
fn output_has_no_colour_when_no_color_is_set() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("lines.sh"),
        "--name",
        "plain",
        "--",
        "2",
        "2",
    ])
    .success();
    home.wait_logs_show(&["logs", "plain"], "plain", &["done", "err 2"]);
    for args in [&["list"][..], &["logs", "plain"], &["list", "--json"]] {
        let output = home.velos(args);
        output.success();
        assert!(
            !output.stdout.contains(&0x1b) && !output.stderr.contains(&0x1b),
            "escape codes despite NO_COLOR\n{output}"
        );
    }
}
