//! Instances (issue 11): `start -i N` runs N instances under one name, each its own entry
//! (`name:K`, own id, pid and log files) with `VELOS_INSTANCE`, `NODE_APP_INSTANCE` (or
//! `--instance-var`) and `--increment-var`; `velos scale` adds instances at the lowest
//! free numbers and stops the highest ones gracefully; `list`, `info`, `logs` show which
//! instance is which; the config file takes `instances`, `instance_var`, `increment_var`.

use std::path::Path;

use serde_json::Value;
use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, fixture, wait_until};

/// `velos list --json` entries of the app `name`, by instance number.
fn instances(home: &TestHome, name: &str) -> Vec<Value> {
    let output = home.velos(&["list", "--json"]);
    output.success();
    let mut found: Vec<Value> = output
        .json()
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|entry| entry["name"] == name)
        .cloned()
        .collect();
    found.sort_by_key(|entry| entry["instance"].as_u64());
    for entry in &found {
        if let Some(pid) = entry["pid"].as_i64() {
            home.record(pid as i32);
        }
    }
    found
}

/// The instance numbers of `name`'s entries.
fn numbers(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|entry| entry["instance"].as_u64().expect("an integer instance"))
        .collect()
}

/// Waits until every instance of `name` runs, and returns them.
#[track_caller]
fn wait_all_running(home: &TestHome, name: &str, count: usize) -> Vec<Value> {
    wait_until(
        WAIT,
        &format!("{count} running instances of {name}"),
        || {
            let found = instances(home, name);
            let running = found
                .iter()
                .filter(|entry| entry["status"] == "running" && entry["pid"].is_i64())
                .count();
            if found.len() == count && running == count {
                Ok(found)
            } else {
                Err(format!("{found:#?}"))
            }
        },
    )
}

/// Starts `count` instances of `instance.sh` as `name` (with `extra` flags) and waits
/// until every one runs; returns them.
#[track_caller]
fn start_instances(home: &TestHome, name: &str, count: usize, extra: &[&str]) -> Vec<Value> {
    let script = fixture("instance.sh");
    let count_arg = count.to_string();
    let mut args = vec!["start", &script, "--name", name, "-i", &count_arg];
    args.extend_from_slice(extra);
    home.velos(&args).success();
    wait_all_running(home, name, count)
}

/// The text of instance `instance`'s stdout log file of `name`.
fn instance_log(home: &TestHome, name: &str, instance: u32) -> String {
    let path = home.home().instance_log_path(name, instance, Stream::Out);
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Waits until instance `instance` of `name` has written `expected` to its stdout log.
#[track_caller]
fn wait_instance_log(home: &TestHome, name: &str, instance: u32, expected: &str) {
    wait_until(
        WAIT,
        &format!("{expected:?} from {name}:{instance}"),
        || {
            let log = instance_log(home, name, instance);
            if log.contains(expected) {
                Ok(())
            } else {
                Err(log)
            }
        },
    );
}

fn term_dir(home: &TestHome) -> String {
    let dir = home.path().join("terms");
    std::fs::create_dir_all(&dir).expect("create the SIGTERM directory");
    dir.to_str().expect("a UTF-8 path").to_owned()
}

#[test]
fn start_with_instances_gives_each_its_number_environment_and_log_files() {
    let home = TestHome::new();
    let terms = format!("TERM_DIR={}", term_dir(&home));
    let script = fixture("instance.sh");
    // Its own start: what `start` prints is checked too.
    let output = home.velos(&[
        "start",
        &script,
        "--name",
        "web",
        "-i",
        "3",
        "--env",
        "PORT=4000",
        "--env",
        &terms,
        "--increment-var",
        "PORT",
    ]);
    output.success();
    let stdout = output.stdout_str();
    for k in 0..3 {
        assert!(
            stdout.contains(&format!("started 'web:{k}' (id ")),
            "{stdout}"
        );
    }
    let web = wait_all_running(&home, "web", 3);
    assert_eq!(numbers(&web), [0, 1, 2]);
    let mut ids: Vec<u64> = web
        .iter()
        .map(|entry| entry["id"].as_u64().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each instance has its own id: {web:#?}");
    // Each has its own log files, and its own number in its environment.
    for k in 0..3u32 {
        let expected = format!("instance={k} node={k} id=unset port={}", 4000 + k);
        wait_instance_log(&home, "web", k, &expected);
        let entry = &web[k as usize];
        let out_log = entry["out_log"].as_str().unwrap();
        assert_eq!(
            Path::new(out_log),
            home.home().instance_log_path("web", k, Stream::Out)
        );
    }
    // `name:K` addresses one instance.
    let info = home.velos(&["info", "web:1", "--json"]);
    info.success();
    let info = info.json();
    assert_eq!(
        (info["name"].as_str(), info["instance"].as_u64()),
        (Some("web"), Some(1))
    );
    // The table shows which instance each row is; `logs` prefixes each line with it.
    let table = home.velos(&["list"]).success().stdout_str();
    for k in 0..3 {
        assert!(table.contains(&format!("web:{k}")), "{table}");
    }
    let logs = home
        .velos(&["logs", "web", "--lines", "5"])
        .success()
        .stdout_str();
    for k in 0..3 {
        assert!(logs.contains(&format!("web:{k} | instance={k} ")), "{logs}");
    }
    // Stopping one instance leaves the others running.
    home.velos(&["stop", "web:0"]).success();
    let web = instances(&home, "web");
    let statuses: Vec<&str> = web
        .iter()
        .map(|entry| entry["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["stopped", "running", "running"]);
}

#[test]
fn instance_var_renames_the_pm2_variable_and_a_bad_increment_var_adds_nothing() {
    let home = TestHome::new();
    let script = fixture("instance.sh");
    start_instances(&home, "api", 2, &["--instance-var", "INSTANCE_ID"]);
    for k in 0..2u32 {
        let expected = format!("instance={k} node=unset id={k} port=");
        wait_instance_log(&home, "api", k, &expected);
    }
    // A variable that is not set cannot be incremented: refused, nothing added.
    let refused = home
        .cmd(&[
            "start",
            &script,
            "--name",
            "other",
            "-i",
            "2",
            "--increment-var",
            "NO_SUCH_PORT",
        ])
        .run();
    let error = refused.error();
    assert!(
        error.contains("NO_SUCH_PORT") && error.contains("not set"),
        "{error}"
    );
    assert!(instances(&home, "other").is_empty());
}

#[test]
fn scale_adds_at_the_lowest_free_number_and_removes_the_highest_gracefully() {
    let home = TestHome::new();
    let terms = term_dir(&home);
    start_instances(&home, "web", 2, &["--env", &format!("TERM_DIR={terms}")]);

    // To a count.
    let scaled = home.velos(&["scale", "web", "4"]).success().stdout_str();
    assert!(scaled.contains("'web' has 4 instances"), "{scaled}");
    assert_eq!(numbers(&wait_all_running(&home, "web", 4)), [0, 1, 2, 3]);

    // A removed number is the next one given out.
    home.velos(&["delete", "web:1"]).success();
    assert_eq!(numbers(&instances(&home, "web")), [0, 2, 3]);
    std::fs::remove_file(Path::new(&terms).join("term-1")).expect("web:1 got SIGTERM");
    home.velos(&["scale", "web", "+1"]).success();
    let web = wait_all_running(&home, "web", 4);
    assert_eq!(numbers(&web), [0, 1, 2, 3]);
    wait_instance_log(&home, "web", 1, "instance=1 node=1");

    // `-1` is a count, not a flag: the highest number goes, after a SIGTERM.
    let pid3 = web[3]["pid"].as_i64().unwrap() as i32;
    home.velos(&["scale", "web", "-1"]).success();
    assert_eq!(numbers(&instances(&home, "web")), [0, 1, 2]);
    let term3 = Path::new(&terms).join("term-3");
    assert_eq!(
        std::fs::read_to_string(&term3).unwrap_or_default(),
        "SIGTERM\n",
        "web:3 was stopped with SIGTERM"
    );
    assert!(!crate::harness::pid_alive(pid3), "web:3's process is gone");

    // Down to a count, highest first.
    home.velos(&["scale", "web", "2"]).success();
    assert_eq!(numbers(&instances(&home, "web")), [0, 1]);
    assert!(Path::new(&terms).join("term-2").exists());
    assert!(!Path::new(&terms).join("term-1").exists());

    // Never to none, never for an app that does not exist, never for a bad count.
    let error = home.cmd(&["scale", "web", "-2"]).run().error();
    assert!(
        error.contains("would leave no instance") && error.contains("velos delete web"),
        "{error}"
    );
    let error = home.cmd(&["scale", "nope", "2"]).run().error();
    assert!(error.contains("no process named 'nope'"), "{error}");
    let error = home.cmd(&["scale", "web", "two"]).run().error();
    assert!(error.contains("not a count"), "{error}");
    assert_eq!(numbers(&instances(&home, "web")), [0, 1]);
}

#[test]
fn a_config_file_starts_instances_with_its_variables() {
    let home = TestHome::new();
    let dir = home.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("instance.sh"), dir.join("instance.sh")).unwrap();
    std::fs::write(
        dir.join("velos.toml"),
        r#"
[[apps]]
name = "web"
script = "instance.sh"
instances = 2
instance_var = "INSTANCE_ID"
increment_var = "PORT"
env = { PORT = 5000 }
"#,
    )
    .unwrap();
    let config = dir.join("velos.toml");
    home.velos(&["start", config.to_str().unwrap()]).success();
    wait_all_running(&home, "web", 2);
    for k in 0..2u32 {
        let expected = format!("instance={k} node=unset id={k} port={}", 5000 + k);
        wait_instance_log(&home, "web", k, &expected);
    }
}

#[test]
fn instances_come_back_with_their_numbers_after_save_kill_resurrect() {
    let home = TestHome::new();
    start_instances(&home, "web", 3, &[]);
    home.velos(&["delete", "web:1"]).success();
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    let web = wait_all_running(&home, "web", 2);
    assert_eq!(numbers(&web), [0, 2]);
    // They write to their own files again, and the next instance is the free number 1.
    home.velos(&["scale", "web", "+1"]).success();
    assert_eq!(numbers(&wait_all_running(&home, "web", 3)), [0, 1, 2]);
    let logs = home
        .velos(&["logs", "web", "--lines", "1"])
        .success()
        .stdout_str();
    assert!(logs.contains("web:2 | instance=2"), "{logs}");
}

#[test]
fn instances_share_the_apps_listening_socket_and_come_back_with_it() {
    let home = TestHome::new();
    let web = start_instances(&home, "web", 2, &["--listen", "127.0.0.1:0"]);
    let listen_of = |entries: &[Value]| -> Vec<Value> {
        entries
            .iter()
            .map(|entry| entry["listen"].clone())
            .collect()
    };
    let bound = listen_of(&web);
    let address = bound[0][0].as_str().expect("a bound address").to_owned();
    assert!(!address.ends_with(":0"), "the real port: {address}");
    assert_eq!(bound[1], bound[0], "one socket for the app: {web:#?}");
    // A third instance shares it too; after a resurrect, all of them listen on it again.
    home.velos(&["scale", "web", "3"]).success();
    assert_eq!(listen_of(&wait_all_running(&home, "web", 3))[2], bound[0]);
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    let back = wait_all_running(&home, "web", 3);
    assert!(
        listen_of(&back).iter().all(|listen| *listen == bound[0]),
        "{back:#?}"
    );
}

#[test]
fn scale_up_waits_until_the_new_instances_are_ready() {
    let home = TestHome::new();
    let script = fixture("instance.sh");
    let delay = home.path().join("delay");
    let delay_env = format!("DELAY_FILE={}", delay.display());
    // Ready once it printed its first line: at once for the first instance...
    home.velos(&[
        "start",
        &script,
        "--name",
        "web",
        "--ready",
        "log:instance=",
        "--env",
        &delay_env,
    ])
    .success();
    // ...and two seconds after they start for the new ones.
    std::fs::write(&delay, "2").expect("write the delay");
    let scaled = home.velos(&["scale", "web", "3"]).success().stdout_str();
    let web = instances(&home, "web");
    for k in 1..3 {
        assert!(
            instance_log(&home, "web", k).contains(&format!("instance={k}")),
            "`scale` returned before web:{k} was ready: {web:#?}"
        );
    }
    for k in 0..3 {
        assert!(
            scaled.contains(&format!("web:{k} (id {k}, pid ")) && !scaled.contains("starting"),
            "{scaled}"
        );
    }
    assert!(
        web.iter().all(|entry| entry["status"] == "running"),
        "{web:#?}"
    );
}

#[test]
fn four_instances_with_listen_and_notify_start_ready_and_all_serve() {
    // Issue 11, done-when 1: `-i 4 --listen 127.0.0.1:0 --ready notify`.
    let home = TestHome::new();
    let record = home.path().join("record");
    std::fs::create_dir_all(&record).expect("create the record directory");
    let record_env = format!("RECORD_DIR={}", record.display());
    let script = fixture("ready_server.py");
    // Each instance says READY=1 a second after it starts: `start` must wait for all four.
    home.velos(&[
        "start",
        &script,
        "--name",
        "web",
        "-i",
        "4",
        "--listen",
        "127.0.0.1:0",
        "--ready",
        "notify",
        "--env",
        "DELAY=1",
        "--env",
        &record_env,
    ])
    .success();
    for k in 0..4 {
        assert!(
            record.join(format!("ready-{k}")).exists(),
            "`start` returned before instance {k} said READY=1"
        );
    }
    let web = instances(&home, "web");
    assert_eq!(numbers(&web), [0, 1, 2, 3], "{web:#?}");
    assert!(
        web.iter().all(|entry| entry["status"] == "running"),
        "{web:#?}"
    );
    let address = web[0]["listen"][0].as_str().expect("a bound address");
    let port = address.rsplit_once(':').expect("HOST:PORT").1;
    for (k, entry) in web.iter().enumerate() {
        assert_eq!(entry["listen"], web[0]["listen"], "one socket: {web:#?}");
        let text = std::fs::read_to_string(record.join(format!("env-{k}.json")))
            .expect("the instance wrote its environment");
        let seen: Value = serde_json::from_str(&text).expect("JSON");
        let pid = entry["pid"].as_i64().expect("a pid");
        assert_eq!(seen["pid"], pid, "{text}");
        let env = &seen["env"];
        assert_eq!(env["VELOS_INSTANCE"], k.to_string(), "{text}");
        assert_eq!(env["NODE_APP_INSTANCE"], k.to_string(), "{text}");
        assert_eq!(env["PORT"], port, "{text}");
        assert_eq!(env["LISTEN_FDS"], "1", "{text}");
        assert_eq!(env["LISTEN_PID"], pid.to_string(), "{text}");
    }
    // Requests on the shared socket: each instance answers one at a time, so concurrent
    // clients are served by more than one of them.
    let address: std::net::SocketAddr = address.parse().expect("an address");
    let pids: Vec<i64> = web
        .iter()
        .map(|entry| entry["pid"].as_i64().unwrap())
        .collect();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        let body = crate::listen::get(address).expect("an answer");
                        i64::from(crate::listen::answering_pid(&body))
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut answered: Vec<i64> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("a client"))
        .collect();
    assert!(
        answered.iter().all(|pid| pids.contains(pid)),
        "{answered:?} vs {pids:?}"
    );
    answered.sort_unstable();
    answered.dedup();
    assert!(answered.len() > 1, "only {answered:?} answered");
}

#[test]
fn events_resurrect_and_readiness_failures_name_the_instance() {
    let home = TestHome::new();
    let script = fixture("instance.sh");
    let mut events = home.events();
    home.velos(&["start", &script, "--name", "web", "-i", "2"])
        .success();
    let seen = events.until("web:1's `started` event", |event| {
        event.kind == velos_proto::EventKind::Started && event.instance == 1
    });
    let started = seen.last().expect("an event");
    assert_eq!(started.name, "web", "{seen:#?}");
    wait_all_running(&home, "web", 2);
    // `velos resurrect` names each instance `web:K`.
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    let back = home.velos(&["resurrect"]).success().stdout_str();
    for k in 0..2 {
        assert!(
            back.contains(&format!("resurrected 'web:{k}' (id {k}, pid ")),
            "{back}"
        );
    }
    // Instances that never say they are ready: the failure names `web:K`.
    let out = home.velos(&[
        "start",
        &script,
        "--name",
        "mute",
        "-i",
        "2",
        "--ready",
        "notify",
        "--ready-timeout",
        "1s",
    ]);
    assert!(!out.status.success(), "{out}");
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("did not become ready") && stderr.contains("'mute:0' (id "),
        "{out}"
    );
    assert!(stderr.contains("last lines of 'mute:1'"), "{out}");
}

#[test]
fn stop_restart_and_delete_name_each_instance_as_name_k() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "web", "-i", "3"])
        .success();
    wait_all_running(&home, "web", 3);
    let lines = |args: &[&str]| -> Vec<String> {
        let output = home.velos(args);
        output.success();
        let mut lines: Vec<String> = output.stdout_str().lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let restarted = lines(&["restart", "web"]);
    assert_eq!(restarted.len(), 3, "{restarted:?}");
    for (k, line) in restarted.iter().enumerate() {
        assert!(
            line.starts_with(&format!("restarted 'web:{k}' (id {k}, pid ")),
            "{restarted:?}"
        );
    }
    wait_all_running(&home, "web", 3);
    assert_eq!(lines(&["stop", "web:0"]), ["stopped 'web:0' (id 0)"]);
    assert_eq!(lines(&["stop", "2"]), ["stopped 'web:2' (id 2)"]);
    let one = lines(&["restart", "web:1"]);
    assert!(
        one[0].starts_with("restarted 'web:1' (id 1, pid "),
        "{one:?}"
    );
    assert_eq!(
        lines(&["delete", "web"]),
        [
            "deleted 'web:0' (id 0)",
            "deleted 'web:1' (id 1)",
            "deleted 'web:2' (id 2)"
        ]
    );
}
