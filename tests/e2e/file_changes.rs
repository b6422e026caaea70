//! A config file edited after `velos start velos.toml`: `restart` and `reload` of the file
//! apply what it says now (arguments, instances: scaled up or down, apps added to it
//! started) and say what changed; `--only` and `--env NAME` pick the apps and environment of
//! `stop`, `restart`, `reload` and `delete` of a file as of `start`.

use std::path::{Path, PathBuf};

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// A long-running script that prints its arguments (`arg: X`), then `ready`.
const SERVER: &str = r#"for arg in "$@"; do echo "arg: $arg"; done
echo ready
exec sleep 600
"#;

/// A project directory holding `velos.toml` with `text`, `server.sh` and `sleeper.sh`.
fn project(home: &TestHome, text: &str) -> PathBuf {
    let dir = home.path().join("project");
    std::fs::create_dir_all(&dir).expect("create project");
    std::fs::write(dir.join("server.sh"), SERVER).expect("write server.sh");
    std::fs::copy(fixture("sleeper.sh"), dir.join("sleeper.sh")).expect("copy sleeper.sh");
    edit(&dir, text);
    dir
}

fn edit(dir: &Path, text: &str) {
    std::fs::write(dir.join("velos.toml"), text).expect("write velos.toml");
}

/// The app `name`'s entries in `list --json`, by instance.
fn instances(home: &TestHome, name: &str) -> Vec<serde_json::Value> {
    let output = home.velos(&["list", "--json"]);
    output.success();
    let mut found: Vec<serde_json::Value> = output
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .filter(|entry| entry["name"] == name)
        .cloned()
        .collect();
    found.sort_by_key(|entry| entry["instance"].as_u64());
    found
}

/// Waits until the app `name` has `count` instances, all running.
#[track_caller]
fn wait_instances(home: &TestHome, name: &str, count: usize) -> Vec<serde_json::Value> {
    wait_until(
        WAIT,
        &format!("{count} running instances of {name}"),
        || {
            let found = instances(home, name);
            if found.len() == count && found.iter().all(|entry| entry["status"] == "running") {
                Ok(found)
            } else {
                Err(format!("{found:#?}"))
            }
        },
    )
}

/// Waits until the log file at `path` holds `needle`.
#[track_caller]
fn wait_in(path: &Path, needle: &str) {
    wait_until(WAIT, &format!("{needle:?} in {}", path.display()), || {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        if text.contains(needle) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

fn web(args: &str, instances: u32) -> String {
    format!(
        "[[apps]]\nname = \"web\"\nscript = \"server.sh\"\nargs = {args}\ninstances = {instances}\n"
    )
}

#[test]
fn restart_of_the_file_scales_to_its_instances_and_says_what_changed() {
    let home = TestHome::new();
    let dir = project(&home, &web(r#"["one"]"#, 2));
    let in_project = |args: &[&str]| home.cmd(args).current_dir(&dir).run();
    in_project(&["start", "velos.toml"]).success();
    let before = wait_instances(&home, "web", 2);

    // Up: 2 -> 3, with other arguments.
    edit(&dir, &web(r#"["two"]"#, 3));
    let restarted = in_project(&["restart", "velos.toml"]);
    restarted.success();
    let out = restarted.stdout_str();
    assert!(out.contains("instances 2 -> 3"), "{restarted}");
    assert!(out.contains(r#"args ["one"] -> ["two"]"#), "{restarted}");
    let after = wait_instances(&home, "web", 3);
    assert_eq!(after[0]["id"], before[0]["id"], "instance 0 keeps its id");
    assert_ne!(after[0]["pid"], before[0]["pid"], "and was restarted");
    for entry in &after {
        assert_eq!(entry["args"], serde_json::json!(["two"]), "{entry}");
    }
    wait_in(
        &home.home().instance_log_path("web", 2, Stream::Out),
        "arg: two",
    );

    // Down: 3 -> 1 (the highest go).
    edit(&dir, &web(r#"["two"]"#, 1));
    let restarted = in_project(&["restart", "velos.toml"]);
    restarted.success();
    assert!(
        restarted.stdout_str().contains("instances 3 -> 1"),
        "{restarted}"
    );
    let after = wait_instances(&home, "web", 1);
    assert_eq!(after[0]["instance"], 0);

    // Nothing changed: it says so.
    let again = in_project(&["restart", "velos.toml"]);
    again.success();
    assert!(!again.stdout_str().contains("->"), "{again}");
}

#[test]
fn reload_of_the_file_applies_its_edits_and_starts_the_apps_it_gained() {
    let home = TestHome::new();
    let dir = project(&home, &web(r#"["one"]"#, 1));
    let in_project = |args: &[&str]| home.cmd(args).current_dir(&dir).run();
    in_project(&["start", "velos.toml"]).success();
    let before = wait_instances(&home, "web", 1);
    home.wait_log("web", Stream::Out, "arg: one");

    let edited = format!(
        "{}\n[[apps]]\nname = \"worker\"\nscript = \"sleeper.sh\"\n",
        web(r#"["two"]"#, 2)
    );
    edit(&dir, &edited);
    let reloaded = in_project(&["reload", "velos.toml"]);
    reloaded.success();
    let out = reloaded.stdout_str();
    assert!(out.contains(r#"args ["one"] -> ["two"]"#), "{reloaded}");
    assert!(out.contains("instances 1 -> 2"), "{reloaded}");
    assert!(out.contains("started 'worker'"), "{reloaded}");

    let after = wait_instances(&home, "web", 2);
    assert_eq!(after[0]["id"], before[0]["id"], "replaced in place");
    assert_ne!(after[0]["pid"], before[0]["pid"], "by a new run");
    assert_eq!(after[0]["args"], serde_json::json!(["two"]), "{}", after[0]);
    home.wait_log("web", Stream::Out, "arg: two");
    wait_in(
        &home.home().instance_log_path("web", 1, Stream::Out),
        "arg: two",
    );
    home.wait_running("worker");
}

#[test]
fn only_and_env_name_pick_the_apps_and_environment_of_stop_restart_reload_and_delete() {
    let home = TestHome::new();
    let dir = home.path().join("eco");
    std::fs::create_dir_all(&dir).expect("create eco");
    std::fs::write(
        dir.join("show.sh"),
        "echo \"mode: $MODE\"\necho ready\nexec sleep 600\n",
    )
    .expect("write show.sh");
    std::fs::write(
        dir.join("ecosystem.json"),
        r#"{"apps": [
            {"name": "a", "script": "show.sh", "env": {"MODE": "dev"},
             "env_production": {"MODE": "prod"}},
            {"name": "b", "script": "show.sh", "env": {"MODE": "dev"}}
        ]}"#,
    )
    .expect("write ecosystem.json");
    let in_dir = |args: &[&str]| home.cmd(args).current_dir(&dir).run();
    in_dir(&["start", "ecosystem.json"]).success();
    home.wait_log("a", Stream::Out, "mode: dev");
    let b = home.wait_running("b");

    let stopped = in_dir(&["stop", "ecosystem.json", "--only", "a"]);
    stopped.success();
    assert_eq!(
        stopped.stdout_str().trim_end(),
        "stopped 'a' (id 0)",
        "{stopped}"
    );
    assert_eq!(home.get("a").status, "stopped");
    assert_eq!(home.get("b").pid, b.pid, "b was left alone");

    // --env NAME: env_production on top of env, applied as --update-env would.
    in_dir(&[
        "restart",
        "ecosystem.json",
        "--only",
        "a",
        "--env",
        "production",
    ])
    .success();
    home.wait_log("a", Stream::Out, "mode: prod");
    assert_eq!(home.wait_running("b").pid, b.pid, "b was left alone");

    let a = home.wait_running("a");
    let reloaded = in_dir(&["reload", "ecosystem.json", "--only", "b"]);
    reloaded.success();
    assert!(reloaded.stdout_str().contains("reloaded 'b'"), "{reloaded}");
    assert_ne!(home.wait_running("b").pid, b.pid, "b was replaced");
    assert_eq!(home.get("a").pid, a.pid, "a was left alone");

    in_dir(&["delete", "ecosystem.json", "--only", "a"]).success();
    assert!(home.find("a").is_none(), "a was deleted");
    assert!(home.find("b").is_some(), "b stays");

    let not_a_file = in_dir(&["stop", "b", "--only", "a"]);
    let line = not_a_file.error();
    assert!(
        line.contains("--only picks apps of a config file"),
        "{line}"
    );
}
