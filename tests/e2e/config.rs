//! Config files: `velos start velos.toml` starts every app (paths relative to the file,
//! settings applied, running names skipped), `stop|restart|delete velos.toml` act on its
//! apps, and a mistake in the file is one error naming its line and field, before anything
//! starts.

use std::path::{Path, PathBuf};

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// A project directory in the test's home holding `velos.toml` with `text`, copies of the
/// fixtures `env.sh` and `sleeper.sh`, and a `data/` directory.
fn project(home: &TestHome, text: &str) -> PathBuf {
    let dir = home.path().join("project");
    std::fs::create_dir_all(dir.join("data")).expect("create project/data");
    for script in ["env.sh", "sleeper.sh"] {
        std::fs::copy(fixture(script), dir.join(script)).expect("copy a fixture");
    }
    std::fs::write(dir.join("velos.toml"), text).expect("write velos.toml");
    dir
}

const APPS: &str = r#"
# Two apps: one that prints its directory and environment, one that keeps running.
[[apps]]
name = "greeter"
script = "env.sh"
cwd = "data"
env = { VELOS_TEST_GREETING = "from the file" }

[[apps]]
name = "sleepy"
script = "sleeper.sh"
args = ["--flag", "two words"]
kill_timeout = "2s"
max_restarts = 3
min_uptime = 1500
max_log_size = "1MiB"
log_files = 2
"#;

/// Stdout lines of a successful run.
#[track_caller]
fn lines(output: &crate::harness::Output) -> Vec<String> {
    output
        .success()
        .stdout_str()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_config_file_starts_restarts_stops_and_deletes_its_apps() {
    let home = TestHome::new();
    let dir = project(&home, APPS);
    let in_project = |args: &[&str]| home.cmd(args).current_dir(&dir).run();

    let started = in_project(&["start", "velos.toml"]);
    let shown = lines(&started);
    assert_eq!(shown.len(), 2, "{started}");
    assert!(shown[0].starts_with("started 'greeter' (id 0"), "{started}");
    assert!(
        shown[1].starts_with("started 'sleepy' (id 1, pid "),
        "{started}"
    );

    let data = dir.join("data").canonicalize().expect("canonical data/");
    home.wait_logs_show(
        &["logs", "greeter"],
        "greeter",
        &[
            &format!("cwd: {}", data.display()),
            "greeting: from the file",
        ],
    );
    let sleepy = home.wait_running("sleepy");
    let entry = home.entry("sleepy");
    assert_eq!(entry["script"], dir.join("sleeper.sh").to_str().unwrap());
    assert_eq!(entry["cwd"], dir.to_str().unwrap(), "the file's directory");
    assert_eq!(entry["args"], serde_json::json!(["--flag", "two words"]));
    assert_eq!(entry["kill_timeout_ms"], 2000);
    assert_eq!(entry["max_restarts"], 3);
    assert_eq!(entry["min_uptime_ms"], 1500);
    assert_eq!(entry["max_log_bytes"], 1 << 20);
    assert_eq!(entry["log_files"], 2);

    // Again: every name is taken, so both are skipped, and that is not an error. From
    // another directory, the file's paths still resolve against the file.
    home.wait_status("greeter", "stopped");
    let again = home
        .cmd(&["start", "project/velos.toml"])
        .current_dir(home.path())
        .run();
    assert_eq!(
        lines(&again),
        [
            "'greeter' is already in the list (id 0, stopped); skipped (start it with 'velos \
             restart greeter')",
            "'sleepy' is already running (id 1); skipped",
        ],
        "{again}"
    );

    let restarted = in_project(&["restart", "velos.toml"]);
    let shown = lines(&restarted);
    assert!(
        shown[0].starts_with("restarted 'greeter' (id 0"),
        "{restarted}"
    );
    assert!(
        shown[1].starts_with("restarted 'sleepy' (id 1, pid "),
        "{restarted}"
    );
    let sleepy_now = home.wait_running("sleepy");
    assert_ne!(sleepy_now.pid, sleepy.pid, "sleepy was not restarted");

    let stopped = in_project(&["stop", "velos.toml"]);
    assert_eq!(
        lines(&stopped),
        ["stopped 'greeter' (id 0)", "stopped 'sleepy' (id 1)"],
        "{stopped}"
    );
    assert_eq!(home.get("sleepy").status, "stopped");

    let deleted = in_project(&["delete", "velos.toml"]);
    assert_eq!(
        lines(&deleted),
        ["deleted 'greeter' (id 0)", "deleted 'sleepy' (id 1)"],
        "{deleted}"
    );
    assert!(home.list().is_empty());

    // Restart starts what is not in the list, as PM2 does; stop skips it with a note.
    let skipped = in_project(&["stop", "velos.toml"]);
    assert!(skipped.success().stdout.is_empty(), "{skipped}");
    assert!(
        skipped
            .stderr_str()
            .contains("'sleepy' (from velos.toml) is not in the list; skipped"),
        "{skipped}"
    );
    let restarted = in_project(&["restart", "velos.toml"]);
    let shown = lines(&restarted);
    assert!(
        shown[0].starts_with("started 'greeter' (id 2"),
        "{restarted}"
    );
    assert!(
        shown[1].starts_with("started 'sleepy' (id 3"),
        "{restarted}"
    );
    home.wait_running("sleepy");
}

#[track_caller]
fn start_error(home: &TestHome, dir: &Path) -> String {
    home.cmd(&["start", "velos.toml"])
        .current_dir(dir)
        .run()
        .error()
}

#[test]
fn a_mistake_in_the_file_is_one_error_naming_the_line_and_field() {
    let home = TestHome::new();
    let dir = project(
        &home,
        "[[apps]]\nname = \"api\"\nscript = \"sleeper.sh\"\nscirpt = \"typo.sh\"\n",
    );
    let error = start_error(&home, &dir);
    assert!(
        error.starts_with("error: velos.toml line 4: unknown field 'scirpt', expected one of "),
        "{error}"
    );

    std::fs::write(
        dir.join("velos.toml"),
        "[[apps]]\nname = \"api\"\nscript = \"sleeper.sh\"\n\nkill_timeout = \"soon\"\n",
    )
    .expect("rewrite velos.toml");
    let error = start_error(&home, &dir);
    assert!(
        error
            .starts_with("error: velos.toml line 5: field 'kill_timeout': invalid duration 'soon'"),
        "{error}"
    );

    // Every app is checked before the first starts: the good one does not start either.
    std::fs::write(
        dir.join("velos.toml"),
        "[[apps]]\nname = \"good\"\nscript = \"sleeper.sh\"\n\n[[apps]]\nname = \"bad\"\nscript = \"missing.sh\"\n",
    )
    .expect("rewrite velos.toml");
    let error = start_error(&home, &dir);
    assert!(
        error.starts_with("error: velos.toml line 7: script 'missing.sh' not found"),
        "{error}"
    );
    assert!(home.list().is_empty(), "an app started despite the error");

    // Options of a single process do not mix with a file.
    let error = home
        .cmd(&["start", "velos.toml", "--name", "x"])
        .current_dir(&dir)
        .run()
        .error();
    assert!(
        error.starts_with("error: --name cannot be used with a config file"),
        "{error}"
    );
    let error = home.velos(&["start", "nowhere.toml"]).error();
    assert!(
        error.starts_with("error: config file 'nowhere.toml' not found"),
        "{error}"
    );
}

#[test]
fn restart_of_the_file_applies_its_current_settings() {
    let home = TestHome::new();
    let dir = project(&home, APPS);
    let in_project = |args: &[&str]| home.cmd(args).current_dir(&dir).run();
    in_project(&["start", "velos.toml"]).success();
    let sleepy = home.wait_running("sleepy");

    // Edit the file: other arguments, another kill timeout, another environment.
    let edited = APPS
        .replace(
            r#"args = ["--flag", "two words"]"#,
            r#"args = ["--edited"]"#,
        )
        .replace(r#"kill_timeout = "2s""#, r#"kill_timeout = "3s""#)
        .replace("from the file", "edited in the file");
    std::fs::write(dir.join("velos.toml"), edited).expect("edit velos.toml");

    let restarted = in_project(&["restart", "velos.toml"]);
    restarted.success();
    let now = home.wait_running("sleepy");
    assert_ne!(now.pid, sleepy.pid, "sleepy was not restarted");
    assert_eq!(now.id, sleepy.id, "the same entry");
    let entry = home.entry("sleepy");
    assert_eq!(entry["args"], serde_json::json!(["--edited"]), "{entry}");
    assert_eq!(entry["kill_timeout_ms"], 3000, "{entry}");

    // The environment it was started with stays without --update-env (the greeter
    // prints it on each run)...
    let log = || {
        String::from_utf8_lossy(&home.log_file("greeter", velos_proto::Stream::Out)).into_owned()
    };
    wait_until(WAIT, "the greeter's second run", || {
        let log = log();
        match log.matches("greeting: from the file").count() {
            2 => Ok(()),
            _ => Err(log),
        }
    });
    assert!(!log().contains("edited in the file"), "{}", log());
    // ...and the file's is taken with it.
    in_project(&["restart", "velos.toml", "--update-env"]).success();
    wait_until(
        WAIT,
        "the greeter's run with the file's environment",
        || {
            let log = log();
            match log.contains("greeting: edited in the file") {
                true => Ok(()),
                false => Err(log),
            }
        },
    );
}

#[test]
fn the_readme_example_of_an_unknown_field_is_what_velos_says() {
    let readme = std::fs::read_to_string(crate::harness::workspace_root().join("README.md"))
        .expect("read README.md");
    let shown = readme
        .lines()
        .find(|line| line.starts_with("error: bad.toml line 3: unknown field 'scirpt'"))
        .expect("README.md shows the error of an unknown field in bad.toml");
    let home = TestHome::new();
    let dir = project(&home, "");
    std::fs::write(
        dir.join("bad.toml"),
        "[[apps]]\nname = \"web\"\nscirpt = \"server.js\"\n",
    )
    .expect("write bad.toml");
    let error = home
        .cmd(&["start", "bad.toml"])
        .current_dir(&dir)
        .run()
        .error();
    // The README may shorten the list with `…`; what it shows must be what velos says.
    match shown.strip_suffix('…') {
        Some(start) => assert!(error.starts_with(start), "README: {shown}\nvelos: {error}"),
        None => assert_eq!(shown, error),
    }
}
