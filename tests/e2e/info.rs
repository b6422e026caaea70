//! Process details and environment: `velos info` (`describe`) as text and `--json`, CPU and
//! memory in `list`, `start --cwd` and `--env`, and `restart --update-env`.

use crate::harness::{TestHome, WAIT, fixture, logged_lines, wait_until};

#[test]
fn info_shows_every_detail_as_text_and_json() {
    let home = TestHome::new();
    let script = fixture("sleeper.sh");
    home.velos(&[
        "start",
        &script,
        "--name",
        "api",
        "--kill-timeout",
        "2s",
        "--max-restarts",
        "4",
        "--min-uptime",
        "3s",
        "--max-log-size",
        "1MiB",
        "--log-files",
        "3",
        "--",
        "one",
        "two words",
    ])
    .success();
    let pid = home.wait_running("api").pid.expect("a pid");

    let output = home.velos(&["info", "api"]);
    let text = output.success().stdout_str();
    let logs = home.path().join("logs");
    let cwd = std::env::current_dir().expect("the test's cwd");
    for line in [
        "name          api".to_owned(),
        "id            0".to_owned(),
        "status        running".to_owned(),
        format!("pid           {pid}"),
        "restarts      0".to_owned(),
        "last exit     -".to_owned(),
        format!("script        {script}"),
        "interpreter   sh".to_owned(),
        "args          one 'two words'".to_owned(),
        format!("cwd           {}", cwd.display()),
        "autorestart   on (gives up after 4 quick failures in a row; a run of 3s is not quick)"
            .to_owned(),
        "kill timeout  2s".to_owned(),
        format!("out log       {}", logs.join("api-out.log").display()),
        format!("err log       {}", logs.join("api-err.log").display()),
        "log rotation  at 1.0 MiB, 3 rotated files kept".to_owned(),
    ] {
        assert!(
            text.lines().any(|shown| shown == line),
            "no line {line:?} in\n{output}"
        );
    }
    assert!(
        text.lines().any(|line| line.starts_with("uptime        ")),
        "{output}"
    );
    #[cfg(target_os = "linux")]
    for key in ["cpu", "memory"] {
        let line = text
            .lines()
            .find(|line| line.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line\n{output}"));
        assert!(
            !line.ends_with(" -"),
            "{key} unknown for a running process\n{output}"
        );
    }

    // `describe` is the same, by id too; --json is the daemon's object.
    let json = home.velos(&["describe", "0", "--json"]);
    let json = json.success().json();
    assert_eq!(json["name"], "api");
    assert_eq!(json["pid"], pid);
    assert_eq!(json["status"], "running");
    assert_eq!(json["script"], script.as_str());
    assert_eq!(json["args"], serde_json::json!(["one", "two words"]));
    assert_eq!(json["cwd"], cwd.to_str().expect("UTF-8 cwd"));
    assert_eq!(json["kill_timeout_ms"], 2000);
    assert_eq!(json["autorestart"], true);
    assert_eq!(json["max_restarts"], 4);
    assert_eq!(json["min_uptime_ms"], 3000);
    assert_eq!(json["max_log_bytes"], 1 << 20);
    assert_eq!(json["log_files"], 3);
    assert_eq!(json["restarts"], 0);
    assert!(
        json["exit_code"].is_null() && json["error"].is_null(),
        "{json:#}"
    );
    assert_eq!(
        json["out_log"],
        logs.join("api-out.log").to_str().expect("UTF-8")
    );
    #[cfg(target_os = "linux")]
    {
        assert!(
            json["memory_bytes"].as_u64().is_some_and(|bytes| bytes > 0),
            "{json:#}"
        );
        assert!(json["cpu_percent"].as_f64().is_some(), "{json:#}");
    }
}

#[test]
fn info_needs_one_existing_process() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "api"])
        .success();
    let error = home.velos(&["info", "nope"]).error();
    assert!(
        error.contains("'nope'") && error.contains("velos list"),
        "{error}"
    );
    let error = home.velos(&["info", "all"]).error();
    assert!(error.contains("one process"), "{error}");
}

#[test]
fn list_shows_cpu_and_memory_of_running_processes() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "up"])
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
    home.wait_running("up");
    home.wait_status("done", "stopped");
    let up = home.entry("up");
    #[cfg(target_os = "linux")]
    {
        assert!(
            up["memory_bytes"].as_u64().is_some_and(|bytes| bytes > 0),
            "{up:#}"
        );
        assert!(
            up["cpu_percent"].as_f64().is_some_and(|cpu| cpu >= 0.0),
            "{up:#}"
        );
    }
    #[cfg(not(target_os = "linux"))]
    assert!(up.get("memory_bytes").is_some(), "{up:#}");
    let done = home.entry("done");
    assert!(
        done["memory_bytes"].is_null() && done["cpu_percent"].is_null(),
        "{done:#}"
    );

    let table = home.velos(&["list"]);
    let text = table.success().stdout_str();
    let header = text.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains(" cpu ") && header.contains(" mem "),
        "{table}"
    );
    #[cfg(target_os = "linux")]
    {
        let row = text
            .lines()
            .find(|line| line.contains(" up "))
            .unwrap_or_else(|| panic!("no row for 'up'\n{table}"));
        assert!(row.contains('%') && row.contains("iB"), "{table}");
    }
}

#[test]
fn start_takes_a_working_directory_and_extra_environment() {
    let home = TestHome::new();
    let project = home.path().join("project");
    std::fs::create_dir_all(project.join("sub")).expect("create project/sub");
    home.cmd(&[
        "start",
        &fixture("env.sh"),
        "--cwd",
        "sub",
        "--env",
        "VELOS_TEST_GREETING=hello there",
        "--env",
        "VELOS_TEST_OTHER=1",
    ])
    .current_dir(&project)
    .run()
    .success();
    let sub = project
        .join("sub")
        .canonicalize()
        .expect("canonical project/sub");
    home.wait_logs_show(
        &["logs", "env"],
        "env",
        &[
            &format!("cwd: {}", sub.display()),
            "greeting: hello there",
            "done",
        ],
    );
    assert_eq!(
        home.entry("env")["cwd"],
        project.join("sub").to_str().unwrap()
    );

    let error = home
        .cmd(&[
            "start",
            &fixture("env.sh"),
            "--name",
            "x",
            "--cwd",
            "nowhere",
        ])
        .current_dir(&project)
        .run()
        .error();
    assert!(
        error.starts_with("error: working directory 'nowhere' does not exist"),
        "{error}"
    );
    let bad = home.velos(&[
        "start",
        &fixture("env.sh"),
        "--name",
        "y",
        "--env",
        "NO_EQUALS",
    ]);
    // A word without `=` names an ecosystem file's environment (`--env production`),
    // which a script has none of.
    assert_eq!(
        bad.error(),
        "error: --env NO_EQUALS names an environment of an ecosystem file; to set a variable, \
         write --env KEY=VALUE"
    );
    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["env"], "a refused start added something");
}

#[test]
fn restart_update_env_takes_the_shells_environment_and_plain_restart_keeps_the_old() {
    let home = TestHome::new();
    let greetings = |home: &TestHome| -> Vec<String> {
        let output = home.velos(&["logs", "env", "-n", "100"]);
        logged_lines(&output.success().stdout_str(), "env")
            .into_iter()
            .filter(|line| line.starts_with("greeting: "))
            .collect()
    };
    let wait_greetings = |home: &TestHome, expected: &[&str]| {
        wait_until(WAIT, &format!("greetings {expected:?}"), || {
            let seen = greetings(home);
            if seen == expected {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        });
    };
    home.cmd(&["start", &fixture("env.sh")])
        .env("VELOS_TEST_GREETING", "one")
        .run()
        .success();
    wait_greetings(&home, &["greeting: one"]);
    home.wait_status("env", "stopped");

    home.cmd(&["restart", "env"])
        .env("VELOS_TEST_GREETING", "two")
        .run()
        .success();
    wait_greetings(&home, &["greeting: one", "greeting: one"]);
    home.wait_status("env", "stopped");

    home.cmd(&["restart", "env", "--update-env"])
        .env("VELOS_TEST_GREETING", "two")
        .run()
        .success();
    wait_greetings(&home, &["greeting: one", "greeting: one", "greeting: two"]);
}
