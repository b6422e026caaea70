//! `velos runtime` / `velos-runtime`, a container's main process: the apps' output on its
//! stdout and stderr with prefixes (or raw, or JSON), exit codes that tell success from
//! failure, SIGTERM stopping every app with its kill signal, `velos list` from another
//! shell, and, as PID 1 of a PID namespace, every orphan reaped. Docker itself is not
//! needed: `unshare --pid --fork --mount-proc` stands in for the container.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::harness::{TestHome, WAIT, bins, fixture, pid_alive, signal_pid, wait_until};

/// `velos-runtime`: a link to `velos` under that name, in the home.
fn runtime_link(home: &TestHome) -> PathBuf {
    let link = home.path().join("velos-runtime");
    if !link.exists() {
        std::os::unix::fs::symlink(&bins().velos, &link).expect("link velos-runtime");
    }
    link
}

#[test]
fn sigterm_stops_the_app_with_its_kill_signal_and_the_runtime_exits_0() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&[
        "runtime",
        &fixture("signal_log.py"),
        "--name",
        "app",
        "--kill-signal",
        "SIGINT",
        "--kill-timeout",
        "5s",
    ]);
    runtime.wait_line("the app's first line, prefixed", |line| {
        line == "app | ready"
    });
    let sent = Instant::now();
    signal_pid(runtime.pid() as i32, Signal::TERM);
    let (status, stderr) = runtime.wait_exit();
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}, the kill timeout"
    );
    assert!(
        runtime.seen().iter().any(|line| line == "app | got SIGINT"),
        "the app did not get its kill signal; stdout:\n{}",
        runtime.seen().join("\n")
    );
    // The daemon went with it.
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");
    assert!(
        !home.home().socket_path().exists(),
        "the socket left behind"
    );
}

#[test]
fn sighup_stops_every_app_as_sigterm_does() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&["runtime", &fixture("sleeper.sh"), "--name", "app"]);
    runtime.wait_line("the app's first line", |line| line == "app | ready");
    let app = home.get("app").pid.expect("running");
    signal_pid(runtime.pid() as i32, Signal::HUP);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("SIGHUP: stopping every process"),
        "stderr:\n{stderr}"
    );
    assert!(!pid_alive(app), "the app runs on after the runtime exited");
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");
}

/// Killed with SIGKILL outside a PID namespace (nothing kills the rest with it there), the
/// runtime's daemon sees its parent die, stops the apps as on SIGTERM and exits.
#[cfg(target_os = "linux")]
#[test]
fn a_runtime_killed_with_sigkill_leaves_neither_its_daemon_nor_its_apps_running() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&["runtime", &fixture("sleeper.sh"), "--name", "app"]);
    runtime.wait_line("the app's first line", |line| line == "app | ready");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    let app = home.get("app").pid.expect("running");
    // Killed in the end should the test fail (each leads its own process group).
    home.record(daemon);
    home.record(app);
    signal_pid(runtime.pid() as i32, Signal::KILL);
    wait_until(WAIT, "the daemon and the app to end", || {
        let alive: Vec<i32> = [daemon, app]
            .into_iter()
            .filter(|&pid| pid_alive(pid))
            .collect();
        if alive.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "still alive: {alive:?} (daemon {daemon}, app {app})"
            ))
        }
    });
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");
}

#[test]
fn an_app_that_needed_sigkill_makes_the_runtime_exit_1_after_a_signal() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&[
        "runtime",
        &fixture("ignore_term.py"),
        "--name",
        "stubborn",
        "--kill-timeout",
        "300ms",
    ]);
    // Its handler is in place once it has written its first line.
    runtime.wait_line("the app's line", |line| line == "stubborn | ready");
    signal_pid(runtime.pid() as i32, Signal::INT);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(1), "{status}; stderr:\n{stderr}");
}

#[test]
fn an_app_that_exits_3_without_restarts_makes_velos_runtime_exit_3() {
    let home = TestHome::new();
    let link = runtime_link(&home);
    let output = Command::new(&link)
        .args([
            &fixture("exit_after.sh"),
            "--name",
            "job",
            "--no-autorestart",
        ])
        .args(["--", "0.3", "3"])
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins().velosd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run velos-runtime");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    assert!(stdout.lines().any(|line| line == "job | up"), "{stdout}");
    // No log files unless asked.
    let logs: Vec<_> = std::fs::read_dir(home.home().logs_dir())
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(logs.is_empty(), "log files written: {logs:?}");
}

#[test]
fn apps_that_all_exit_0_end_the_runtime_with_0_and_the_first_failure_decides_otherwise() {
    let home = TestHome::new();
    let config = home.path().join("velos.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[apps]]
name = "ok"
script = "{exit}"
args = ["0.2", "0"]
autorestart = false

[[apps]]
name = "first"
script = "{exit}"
args = ["0.5", "4"]
autorestart = false

[[apps]]
name = "second"
script = "{exit}"
args = ["1.5", "5"]
autorestart = false
"#,
            exit = fixture("exit_after.sh")
        ),
    )
    .expect("write velos.toml");
    let mut runtime = home.spawn(&["runtime", config.to_str().expect("UTF-8")]);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(4), "{status}; stderr:\n{stderr}");

    let home = TestHome::new();
    let mut runtime = home.spawn(&[
        "runtime",
        &fixture("exit_after.sh"),
        "--name",
        "done",
        "--",
        "0.2",
        "0",
    ]);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

/// Runs `lines.sh OUT ERR` (OUT stdout lines, ERR stderr lines, then `done`) as app
/// `talker` under the runtime with `flags`; it must exit 0. Its stdout lines and stderr.
fn talker(flags: &[&str], out: &str, err: &str) -> (Vec<String>, String) {
    let home = TestHome::new();
    let script = fixture("lines.sh");
    let mut args = vec!["runtime", script.as_str(), "--name", "talker"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", out, err]);
    let mut runtime = home.spawn(&args);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
    (runtime.seen().to_vec(), stderr)
}

#[test]
fn stdout_and_stderr_lines_reach_the_runtimes_own_with_prefixes_raw_or_json() {
    let (stdout, stderr) = talker(&[], "2", "2");
    assert_eq!(
        stdout,
        ["talker | line 1", "talker | line 2", "talker | done"],
        "stderr:\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("talker | "))
        .collect();
    assert_eq!(errors, ["talker | err 1", "talker | err 2"], "{stderr}");

    let (stdout, _) = talker(&["--raw"], "1", "0");
    assert_eq!(stdout, ["line 1", "done"]);

    let (stdout, _) = talker(&["--json"], "1", "0");
    let objects: Vec<serde_json::Value> = stdout
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert_eq!(objects[0]["name"], "talker");
    assert_eq!(objects[0]["stream"], "out");
    assert_eq!(objects[0]["line"], "line 1");
    assert!(objects[0]["time"].is_string(), "{objects:?}");
}

#[test]
fn velos_list_and_logs_from_another_shell_reach_the_runtimes_daemon() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&["runtime", &fixture("sleeper.sh"), "--name", "web"]);
    runtime.wait_line("the app's line", |line| line == "web | ready");
    let web = home.wait_running("web");
    assert!(web.pid.is_some(), "{web:?}");
    // The daemon answering is the runtime's child, not one the CLI started.
    let daemon = home.ping().pid;
    let parent = std::fs::read_to_string(format!("/proc/{daemon}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat[stat.rfind(')')? + 1..].to_owned();
            rest.split_whitespace().nth(1)?.parse::<u32>().ok()
        });
    assert_eq!(
        parent,
        Some(runtime.pid()),
        "the daemon is not the runtime's"
    );
    // `velos logs` reads the lines from memory: no file was written.
    let logs = home.velos(&["logs", "web", "--raw"]).success().stdout_str();
    assert_eq!(logs.trim_end(), "ready");
    assert!(!home.home().logs_dir().join("web-out.log").exists());
    // A restart from the other shell is not an end: the runtime keeps going.
    home.velos(&["restart", "web"]).success();
    runtime.wait_line("the restarted app's line", |line| line == "web | ready");
    // Stopping the last app from the other shell ends it (cleanly: exit 0).
    home.velos(&["stop", "web"]).success();
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

#[test]
fn no_auto_exit_keeps_the_runtime_after_its_apps_ended() {
    let home = TestHome::new();
    let mut runtime = home.spawn(&[
        "runtime",
        &fixture("exit_with.sh"),
        "--name",
        "once",
        "--no-autorestart",
        "--no-auto-exit",
        "--",
        "0",
    ]);
    runtime.wait_line("the app's line", |line| line == "once | exiting with 0");
    home.wait_status("once", "stopped");
    // Still there half a second after every app ended.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        assert!(
            pid_alive(runtime.pid() as i32),
            "the runtime exited although --no-auto-exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    home.velos(&["list"]).success();
    signal_pid(runtime.pid() as i32, Signal::TERM);
    let (status, stderr) = runtime.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

/// `unshare --pid --fork --mount-proc --kill-child velos runtime ...`: killed on drop
/// (the namespace with it), its pid file removed (it holds a pid of the namespace).
struct Contained<'h> {
    home: &'h TestHome,
    child: Child,
}

impl Drop for Contained<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.home.home().pid_path());
    }
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, ...
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The children of `parent` with their states (`S`, `Z`, ...).
fn children(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let fields = stat(pid)?;
            (fields.get(1)?.parse::<u32>().ok()? == parent).then(|| (pid, fields[0].clone()))
        })
        .collect()
}

/// `velos runtime sleeper.sh --name app` as PID 1 of a new PID namespace (as root), once
/// it has started the app: the guard and the runtime's pid outside. `None`, having said
/// why, where that cannot be done here.
#[cfg(target_os = "linux")]
fn contained_runtime(home: &TestHome) -> Option<(Contained<'_>, u32)> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: a PID namespace needs root");
        return None;
    }
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output();
    if !probe.is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: unshare --pid --fork --mount-proc does not work here");
        return None;
    }
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(&bins().velos)
        .args(["runtime", &fixture("sleeper.sh"), "--name", "app"])
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins().velosd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(home.path().join("runtime.err")).expect("create"))
        .spawn()
        .expect("run unshare");
    let unshare = child.id();
    let contained = Contained { home, child };
    // The runtime: unshare's child, PID 1 inside.
    let runtime = wait_until(WAIT, "the runtime under unshare", || {
        children(unshare).first().map(|(pid, _)| *pid)
    });
    let log = home.path().join("runtime.err");
    wait_until(WAIT, "the runtime to start the app", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("started 'app'"))
    });
    Some((contained, runtime))
}

#[cfg(target_os = "linux")]
#[test]
fn as_pid_1_of_a_namespace_the_runtime_reaps_a_double_forked_orphan() {
    if !crate::harness::on_path("nsenter") {
        eprintln!("skipped: no nsenter to enter the namespace as `docker exec` does");
        return;
    }
    let home = TestHome::new();
    let Some((mut contained, runtime)) = contained_runtime(&home) else {
        return;
    };
    let status = std::fs::read_to_string(format!("/proc/{runtime}/status")).unwrap_or_default();
    let nspid = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .unwrap_or_default()
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        nspid, "1",
        "the runtime is not PID 1 of its namespace:\n{status}"
    );
    // `velos list` as `docker exec` runs it: inside the namespace (a client outside it is
    // refused: see the next test).
    let inside = |args: &[&str]| {
        Command::new("nsenter")
            .args(["-t", &runtime.to_string(), "-p", "-m", "--"])
            .arg(&bins().velos)
            .args(args)
            .env("VELOS_HOME", home.path())
            .env("VELOS_DAEMON", &bins().velosd)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    };
    let list = inside(&["list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout)
        .unwrap_or_else(|error| panic!("velos list --json inside: {error}: {list:?}"));
    assert_eq!(list[0]["name"], "app", "{list}");
    assert_eq!(list[0]["status"], "running", "{list}");
    let daemon = wait_until(WAIT, "the daemon, the runtime's child", || {
        children(runtime).first().map(|(pid, _)| *pid)
    });

    // As `docker exec` would: a shell in the namespace leaves a child behind and exits.
    // (Its output goes nowhere: a pipe would be held open by the orphan.)
    let status = Command::new("nsenter")
        .args(["-t", &runtime.to_string(), "-p", "-m", "--"])
        .args(["sh", "-c", "sh -c 'sleep 1; exit 0' & exit 0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run nsenter");
    assert!(status.success(), "nsenter failed: {status}");
    let orphans = || -> Vec<(u32, String)> {
        children(runtime)
            .into_iter()
            .filter(|(pid, _)| *pid != daemon)
            .collect()
    };
    wait_until(WAIT, "the orphan to be re-parented to the runtime", || {
        !orphans().is_empty()
    });
    wait_until(WAIT, "the orphan to be reaped (no zombie left)", || {
        let left = orphans();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("children of the runtime: {left:?}"))
        }
    });

    signal_pid(runtime as i32, Signal::TERM);
    let status = wait_until(WAIT, "the runtime to exit", || {
        contained.child.try_wait().ok().flatten()
    });
    let stderr = std::fs::read_to_string(home.path().join("runtime.err")).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{status}; stderr:\n{stderr}");
}

/// A `velos` outside the namespace (on the host, sharing the container's home) is refused
/// at once with what to do, and the daemon's log says so once, not once per retry.
#[cfg(target_os = "linux")]
#[test]
fn a_velos_outside_the_runtimes_pid_namespace_is_refused_at_once_saying_why() {
    let home = TestHome::new();
    let Some((_contained, _runtime)) = contained_runtime(&home) else {
        return;
    };
    let sleeper = fixture("sleeper.sh");
    for args in [&["list"][..], &["start", &sleeper][..], &["ping"][..]] {
        let asked = Instant::now();
        let refused = home.cmd(args).timeout(Duration::from_secs(20)).run();
        let took = asked.elapsed();
        let error = refused.error();
        assert!(
            error.contains("another PID namespace") && error.contains("docker exec"),
            "velos {args:?}: {refused}"
        );
        assert!(
            took < Duration::from_secs(2),
            "velos {args:?} took {took:?}"
        );
    }
    // The daemon logs on the runtime's stderr: one line for the three commands.
    let log = std::fs::read_to_string(home.path().join("runtime.err")).unwrap_or_default();
    let lines = log.lines().filter(|line| line.contains("refused")).count();
    assert_eq!(lines, 1, "{log}");
}

#[test]
fn velos_runtime_help_and_usage_errors_name_it_as_it_is_typed() {
    let home = TestHome::new();
    let link = runtime_link(&home);
    let run = |args: &[&str]| {
        Command::new(&link)
            .args(args)
            .env("VELOS_HOME", home.path())
            .env("VELOS_DAEMON", &bins().velosd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run velos-runtime")
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Usage: velos-runtime [OPTIONS] <SCRIPT> [-- <ARGS>...]"),
        "{text}"
    );
    // A mistyped flag: the usage line and the tips are what the user can type again.
    let wrong = run(&["app.js", "--kill-timout", "3s"]);
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{text}");
    assert!(text.contains("Usage: velos-runtime "), "{text}");
    assert!(!text.contains("velos-runtime runtime"), "{text}");
    let none = run(&[]);
    let text = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(2), "{text}");
    assert!(!text.contains("velos-runtime runtime"), "{text}");
    let version = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("velos-runtime {}", env!("CARGO_PKG_VERSION"))
    );
}
