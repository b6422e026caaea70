//! `velos reload`: each run is replaced by a new one that must be ready before the old one
//! stops, so a client loop over the `--listen` socket sees no failed request; a broken
//! version is stopped and the old run keeps serving; one reload per app at a time.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::{TestHome, WAIT, example, fixture, on_path, wait_until};

/// Concurrent client connections.
const CLIENTS: usize = 8;
/// Requests the client loop sends at least.
const MIN_REQUESTS: usize = 2_000;
/// The longest the client loop runs.
const LOOP_LIMIT: Duration = Duration::from_secs(120);

/// `GET /` on `address`: the pid that answered, or why there was no answer.
fn get(address: SocketAddr) -> Result<i32, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: velos\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("bad answer {answer:?}"))?;
    if !head.starts_with("HTTP/1.") || !head[8..].starts_with(" 200") {
        return Err(format!("bad answer {answer:?}"));
    }
    body.rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.trim_end().strip_suffix(')'))
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| format!("no pid in {body:?}"))
}

/// A client loop: `CLIENTS` threads sending requests until stopped (or `LOOP_LIMIT`).
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(address: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let threads = (0..CLIENTS)
            .map(|_| {
                let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOOP_LIMIT {
                        if let Err(error) = get(address) {
                            failures.lock().unwrap().push(error);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            failures,
            threads,
        }
    }

    /// Goes on until at least `MIN_REQUESTS` were sent, then stops; says how many were
    /// sent (on stderr: `--nocapture` shows the figures the README quotes) and fails the
    /// test if any of them failed.
    #[track_caller]
    fn finish_with_no_failure(self, what: &str) {
        wait_until(LOOP_LIMIT, "the client loop's requests", || {
            let sent = self.sent.load(Ordering::Relaxed);
            if sent >= MIN_REQUESTS {
                Ok(())
            } else {
                Err(sent)
            }
        });
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a client thread");
        }
        let failures = self.failures.lock().unwrap().clone();
        let sent = self.sent.load(Ordering::Relaxed);
        eprintln!(
            "{what}: {sent} requests over {CLIENTS} connections, {} failed",
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{} of {sent} requests failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}

/// The address `name` listens on (`info --json`'s `listen`).
fn address_of(home: &TestHome, name: &str) -> SocketAddr {
    let info = home.info(name);
    info["listen"][0]
        .as_str()
        .expect("a listen address")
        .parse()
        .expect("a socket address")
}

/// Starts `script` as `name` on a kernel-chosen port with `ready`, and waits for an answer.
fn serve(home: &TestHome, script: &str, name: &str, ready: &str, extra: &[&str]) -> SocketAddr {
    let mut args = vec![
        "start",
        script,
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
        "--ready",
        ready,
    ];
    args.extend_from_slice(extra);
    home.velos(&args).success();
    let address = address_of(home, name);
    wait_until(WAIT, "a first answer", || get(address));
    address
}

/// Three reloads under a client loop: no failed request, and afterwards only the new run
/// answers.
fn reloads_drop_nothing(home: &TestHome, name: &str, address: SocketAddr) {
    let mut old = HashSet::new();
    old.insert(home.wait_running(name).pid.expect("a pid"));
    let load = Load::start(address);
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let output = home.velos(&["reload", name]).success().stdout_str();
        took.push(started.elapsed());
        assert!(
            output.starts_with(&format!("reloaded '{name}'")),
            "{output}"
        );
        let now = home.get(name);
        assert_eq!(now.status, "running");
        assert!(
            !old.contains(&now.pid.expect("a pid")),
            "a new pid: {output}"
        );
        old.insert(now.pid.expect("a pid"));
    }
    load.finish_with_no_failure(name);
    eprintln!("{name}: reloads took {took:?}");
    let current = home.wait_running(name).pid.expect("a pid");
    for _ in 0..50 {
        assert_eq!(get(address), Ok(current), "only the newest run answers");
    }
    // The replaced runs are gone.
    for pid in old.iter().filter(|pid| **pid != current) {
        crate::harness::wait_gone(*pid, "a replaced run");
    }
}

#[test]
fn reloading_the_python_example_three_times_drops_no_request() {
    let home = TestHome::new();
    let app = example("examples/python-app/app.py");
    let address = serve(&home, &app, "py", "notify", &[]);
    reloads_drop_nothing(&home, "py", address);
}

#[test]
fn reloading_the_node_example_three_times_drops_no_request() {
    if !on_path("node") {
        eprintln!("skipped: `node` is not on PATH");
        return;
    }
    let home = TestHome::new();
    let app = example("examples/node-app/app.js");
    let address = serve(&home, &app, "node", "message", &[]);
    reloads_drop_nothing(&home, "node", address);
}

/// The `--ready-timeout` of the tests whose replacement never gets ready: the version that
/// works must be ready within it too, at its start and at the last reload, which on a
/// loaded machine took more than the 2 s these tests had.
const HANG_READY_TIMEOUT: &str = "10s";

/// A reload to a version that breaks (`mode`): non-zero with `reason`, no failed request,
/// the old run still answers, nothing errored.
fn broken_reload(mode: &str, reason: &str) {
    let home = TestHome::new();
    let app = fixture("reload_app.py");
    let timeout = ["--ready-timeout", HANG_READY_TIMEOUT];
    let address = serve(&home, &app, "web", "notify", &timeout);
    let old = home.wait_running("web").pid.expect("a pid");
    let load = Load::start(address);
    let output = home
        .cmd(&["reload", "web", "--update-env"])
        .env("RELOAD_BREAK", mode)
        .run();
    assert!(!output.status.success(), "{output}");
    let stderr = output.stderr_str();
    assert!(
        stderr.contains("error: the reload of 'web' (id 0) failed: the replacement")
            && stderr.contains(reason)
            && stderr.contains(&format!("the old run (pid {old}) keeps running")),
        "{output}"
    );
    assert!(stderr.contains("last lines of 'web':"), "{output}");
    load.finish_with_no_failure("a broken reload");
    assert_eq!(get(address), Ok(old), "the old run still answers");
    let web = home.get("web");
    assert_eq!((web.status.as_str(), web.pid), ("running", Some(old)));
    for process in home.list() {
        assert_ne!(process.status, "errored", "{process:?}");
    }
    // The broken version's output is in the app's logs.
    home.wait_log("web", velos_proto::Stream::Out, "broken version");
    // Its environment was not kept: the next reload, without it, works.
    home.velos(&["reload", "web"]).success();
    assert_ne!(home.get("web").pid, Some(old));
}

#[test]
fn a_version_that_exits_at_start_leaves_the_old_run_serving() {
    broken_reload("exit", "exited with code 1 before it was ready");
}

#[test]
fn a_version_never_ready_leaves_the_old_run_serving() {
    broken_reload(
        "hang",
        &format!("was not ready within {HANG_READY_TIMEOUT}"),
    );
}

#[test]
fn a_second_reload_of_the_same_app_fails_at_once() {
    let home = TestHome::new();
    let app = fixture("reload_app.py");
    let timeout = ["--ready-timeout", HANG_READY_TIMEOUT];
    serve(&home, &app, "web", "notify", &timeout);
    let old = home.wait_running("web").pid.expect("a pid");
    // A replacement that never gets ready keeps the first reload busy until its timeout.
    let mut first = home
        .cmd(&["reload", "web", "--update-env"])
        .env("RELOAD_BREAK", "hang")
        .spawn();
    wait_until(WAIT, "the first reload's replacement", || {
        let log =
            String::from_utf8_lossy(&home.log_file("web", velos_proto::Stream::Out)).into_owned();
        if log.contains("never ready") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let error = home.velos(&["reload", "web"]).error();
    assert_eq!(
        error,
        "error: a reload of 'web' is in progress; wait for it to finish, then try again"
    );
    // At once: the first reload is still waiting for its replacement.
    assert!(first.is_running(), "the second reload waited for the first");
    let (status, stderr) = first.wait_exit();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("was not ready within {HANG_READY_TIMEOUT}")),
        "{stderr}"
    );
    assert_eq!(home.get("web").pid, Some(old));
    // Once it is over, the next reload runs.
    home.velos(&["reload", "web"]).success();
}

/// The pids of `name`'s instances, by instance, from `list --json`.
fn instance_pids(home: &TestHome, name: &str) -> Vec<(u64, Option<i64>, String)> {
    let list = home.velos(&["list", "--json"]).success().json();
    let mut found: Vec<(u64, Option<i64>, String)> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter(|entry| entry["name"] == name)
        .map(|entry| {
            (
                entry["instance"].as_u64().expect("an instance"),
                entry["pid"].as_i64(),
                entry["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn reloading_instances_replaces_each_and_drops_no_request() {
    let home = TestHome::new();
    let app = example("examples/python-app/app.py");
    let address = serve(&home, &app, "web", "notify", &["-i", "2"]);
    let before = instance_pids(&home, "web");
    assert_eq!(before.len(), 2, "{before:?}");
    let mut old: HashSet<i32> = before
        .iter()
        .map(|(_, pid, _)| pid.expect("a pid") as i32)
        .collect();
    let load = Load::start(address);
    for parallel in ["1", "2", "1"] {
        let output = home
            .velos(&["reload", "web", "--parallel", parallel])
            .success()
            .stdout_str();
        assert_eq!(output.lines().count(), 2, "one line per instance: {output}");
        for (k, line) in output.lines().enumerate() {
            assert!(line.starts_with(&format!("reloaded 'web:{k}'")), "{output}");
        }
        let now = instance_pids(&home, "web");
        assert_eq!(
            now.iter().map(|(k, _, _)| *k).collect::<Vec<_>>(),
            [0, 1],
            "same K"
        );
        for (_, pid, status) in &now {
            let pid = pid.expect("a pid") as i32;
            assert_eq!(status, "running");
            assert!(old.insert(pid), "a new pid for each: {now:?}");
        }
    }
    load.finish_with_no_failure("web -i 2");
    let current: HashSet<i32> = instance_pids(&home, "web")
        .iter()
        .map(|(_, pid, _)| pid.expect("a pid") as i32)
        .collect();
    for _ in 0..50 {
        let pid = get(address).expect("an answer");
        assert!(current.contains(&pid), "{pid} is not one of {current:?}");
    }
}
