//! `--watch`: a change of a watched file restarts the app once, after the quiet delay; a
//! burst of changes gives one restart; ignored paths (`node_modules/`, `.git/`, `*.log`,
//! swap files) none; an app that crashes on start in watch mode waits, errored, for the
//! next change and comes back with it; an idle watched tree of 20,000 files costs the
//! daemon no CPU. Each project lives in a directory under the test's home.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, wait_until};
#[cfg(target_os = "linux")]
use crate::harness::{wait_idle, wakeups_over};

/// The app: crashes at once while `config.txt` says `crash`, else prints its pid and
/// sleeps.
const APP: &str = "#!/bin/sh\n\
    if grep -q crash \"$(dirname \"$0\")/config.txt\" 2>/dev/null; then\n\
    \techo 'config says crash' >&2\n\
    \texit 3\n\
    fi\n\
    echo \"up $$\"\n\
    exec sleep 1000\n";

/// The quiet delay the tests use (velos's default).
const DELAY: Duration = Duration::from_millis(300);

/// A project directory under the home with `app.sh`, `config.txt` and `src/a.js`.
fn project(home: &TestHome) -> PathBuf {
    let dir = home.path().join("project");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    write(&dir.join("app.sh"), APP);
    std::fs::set_permissions(
        dir.join("app.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(&dir.join("config.txt"), "ok\n");
    write(&dir.join("src/a.js"), "1\n");
    dir
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// `touch PATH`: only its times change.
fn touch(path: &Path) {
    let status = std::process::Command::new("touch")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "touch {}", path.display());
}

/// Starts `app.sh` of `dir` as `app`, watching `dir` (its cwd), and waits until it runs.
#[track_caller]
fn start_watched(home: &TestHome, dir: &Path, extra: &[&str]) -> i32 {
    let script = dir.join("app.sh");
    let mut args = vec![
        "start",
        script.to_str().unwrap(),
        "--name",
        "app",
        "--watch",
    ];
    args.extend_from_slice(extra);
    home.cmd(&args).current_dir(dir).run().success();
    let pid = home.wait_running("app").pid.unwrap();
    home.wait_log("app", Stream::Out, &format!("up {pid}"));
    // The watch is set up after the start, in the background: changes count from then.
    wait_until(WAIT, "the watch to be set up", || {
        let entry = home.entry("app");
        entry["watched"]
            .is_object()
            .then_some(())
            .ok_or(entry.to_string())
    });
    pid
}

fn restarts(entry: &Value) -> u64 {
    entry["restarts"].as_u64().unwrap_or(0)
}

/// Waits until `app` has restarted `count` times and runs again (a new pid), and returns
/// its entry.
#[track_caller]
fn wait_restarts(home: &TestHome, count: u64, within: Duration) -> Value {
    wait_until(within, &format!("restart number {count}"), || {
        let entry = home.entry("app");
        if restarts(&entry) >= count && entry["status"] == "running" {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    })
}

/// Polls `app` for `window`, failing at once if `holds` is false: that nothing happens
/// needs a window to watch it in.
#[track_caller]
fn holds_for(home: &TestHome, window: Duration, holds: impl Fn(&Value) -> bool) {
    let start = Instant::now();
    while start.elapsed() < window {
        let entry = home.entry("app");
        assert!(holds(&entry), "after {:?}: {entry:#}", start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn touching_one_file_restarts_the_app_once_after_the_quiet_delay() {
    let home = TestHome::new();
    let dir = project(&home);
    let first = start_watched(&home, &dir, &[]);
    let info = home.entry("app");
    assert_eq!(
        info["watch"],
        serde_json::json!([dir.to_str().unwrap()]),
        "{info:#}"
    );
    assert_eq!(info["watch_delay_ms"], 300, "{info:#}");

    let touched = Instant::now();
    touch(&dir.join("src/a.js"));
    let entry = wait_restarts(&home, 1, DELAY + Duration::from_secs(1));
    let took = touched.elapsed();
    assert!(took >= DELAY, "restarted before the quiet delay: {took:?}");
    assert_ne!(entry["pid"].as_i64(), Some(i64::from(first)), "{entry:#}");
    // One change, one restart.
    holds_for(&home, Duration::from_secs(1), |entry| restarts(entry) == 1);
    home.wait_log("app", Stream::Out, "[velos] watch: files changed: src/a.js");
    let entry = home.entry("app");
    assert_eq!(entry["restart_counts"]["watch"], 1, "{entry:#}");
    assert_eq!(entry["last_restart"]["reason"], "watch", "{entry:#}");
    assert_eq!(
        entry["last_restart"]["detail"], "files changed: src/a.js",
        "{entry:#}"
    );
    let info = home.velos(&["info", "app"]);
    assert!(
        info.stdout_str().contains("files changed: src/a.js"),
        "{info}"
    );
}

#[test]
fn fifty_files_written_in_a_burst_give_one_restart() {
    let home = TestHome::new();
    let dir = project(&home);
    start_watched(&home, &dir, &[]);
    for i in 0..50 {
        write(&dir.join(format!("src/gen/file{i}.js")), "x\n");
    }
    wait_restarts(&home, 1, WAIT);
    holds_for(&home, Duration::from_millis(1500), |entry| {
        restarts(entry) == 1
    });
    let out = String::from_utf8_lossy(&home.log_file("app", Stream::Out)).into_owned();
    let notes: Vec<&str> = out.lines().filter(|l| l.starts_with("[velos]")).collect();
    assert_eq!(notes.len(), 1, "{out}");
    assert!(notes[0].contains("more)"), "{}", notes[0]);
}

#[test]
fn writes_under_node_modules_git_and_logs_restart_nothing() {
    let home = TestHome::new();
    let dir = project(&home);
    // Present before the start (skipped by the set-up) and made after it.
    write(&dir.join("node_modules/dep/index.js"), "old\n");
    let pid = start_watched(&home, &dir, &["--watch-ignore", "uploads"]);
    for path in [
        "node_modules/dep/index.js",
        "node_modules/new/deep/x.js",
        ".git/index",
        ".git/objects/ab/cdef",
        "server.log",
        "src/debug.log",
        "src/.a.js.swp",
        "src/a.js~",
        "src/4913",
        "uploads/photo.jpg",
    ] {
        write(&dir.join(path), "changed\n");
    }
    holds_for(&home, DELAY + Duration::from_secs(1), |entry| {
        restarts(entry) == 0 && entry["pid"].as_i64() == Some(i64::from(pid))
    });
    // The watch was alive all along: a file that counts restarts it.
    touch(&dir.join("src/a.js"));
    let entry = wait_restarts(&home, 1, WAIT);
    assert_eq!(restarts(&entry), 1, "{entry:#}");
}

#[test]
fn an_app_that_crashes_on_start_waits_for_a_change_and_a_fix_brings_it_back() {
    let home = TestHome::new();
    let dir = project(&home);
    start_watched(&home, &dir, &[]);
    write(&dir.join("config.txt"), "crash\n");
    let errored = wait_until(WAIT, "errored, waiting for a change", || {
        let entry = home.entry("app");
        let waits = entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("waiting for a file change (watch)"));
        if entry["status"] == "errored" && waits {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    });
    // No restart loop: it stays errored and its count stays put.
    let count = restarts(&errored);
    holds_for(&home, Duration::from_secs(2), |entry| {
        entry["status"] == "errored" && restarts(entry) == count
    });
    let list = home.velos(&["list"]);
    list.success();
    assert!(
        list.stdout_str().contains("waiting for a file change"),
        "{list}"
    );
    // Fixed: the change starts it again.
    write(&dir.join("config.txt"), "ok\n");
    let entry = wait_restarts(&home, count + 1, WAIT);
    let pid = entry["pid"].as_i64().unwrap();
    home.wait_log("app", Stream::Out, &format!("up {pid}"));
}

#[test]
fn a_stopped_app_is_not_started_by_a_change_and_watches_again_once_started() {
    let home = TestHome::new();
    let dir = project(&home);
    start_watched(&home, &dir, &[]);
    home.velos(&["stop", "app"]).success();
    touch(&dir.join("src/a.js"));
    holds_for(&home, DELAY + Duration::from_secs(1), |entry| {
        entry["status"] == "stopped" && restarts(entry) == 0
    });
    let stopped = home.entry("app");
    assert!(
        stopped["watched"].is_null(),
        "no watch while stopped: {stopped:#}"
    );
    home.velos(&["restart", "app"]).success();
    let before = restarts(&home.entry("app"));
    home.wait_running("app");
    wait_until(WAIT, "the watch to be set up again", || {
        home.entry("app")["watched"].is_object()
    });
    touch(&dir.join("src/a.js"));
    wait_restarts(&home, before + 1, WAIT);
}

#[test]
fn the_watch_is_saved_with_the_list_and_comes_back_with_resurrect() {
    let home = TestHome::new();
    let dir = project(&home);
    start_watched(
        &home,
        &dir,
        &["--watch-ignore", "uploads", "--watch-delay", "200ms"],
    );
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    home.wait_running("app");
    let entry = home.entry("app");
    assert_eq!(
        entry["watch"],
        serde_json::json!([dir.to_str().unwrap()]),
        "{entry:#}"
    );
    assert_eq!(
        entry["watch_ignore"],
        serde_json::json!(["uploads"]),
        "{entry:#}"
    );
    assert_eq!(entry["watch_delay_ms"], 200, "{entry:#}");
    let before = restarts(&entry);
    wait_until(WAIT, "the watch to be set up", || {
        home.entry("app")["watched"].is_object()
    });
    write(&dir.join("uploads/x.png"), "ignored\n");
    touch(&dir.join("src/a.js"));
    wait_restarts(&home, before + 1, WAIT);
}

#[test]
fn a_watched_path_that_does_not_exist_is_refused_at_start() {
    let home = TestHome::new();
    let dir = project(&home);
    let script = dir.join("app.sh");
    let output = home
        .cmd(&["start", script.to_str().unwrap(), "--watch", "nope"])
        .current_dir(&dir)
        .run();
    let error = output.error();
    assert!(error.contains("cannot watch 'nope'"), "{error}");
    assert!(home.find("app").is_none());
}

/// utime + stime of `pid`, in clock ticks, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_watched_tree_of_20000_files_costs_the_daemon_no_cpu() {
    let home = TestHome::new();
    let dir = project(&home);
    for d in 0..200 {
        let sub = dir.join(format!("src/m{}/d{d}", d % 10));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            std::fs::write(sub.join(format!("f{f}.js")), b"x").unwrap();
        }
    }
    let started = Instant::now();
    start_watched(&home, &dir, &[]);
    // Set up in bounded time, every file counted.
    let watched = wait_until(WAIT, "the watch to be set up", || {
        let entry = home.entry("app");
        entry["watched"]["files"].as_u64().ok_or(entry.to_string())
    });
    let ready = started.elapsed();
    // app.sh, config.txt, src/a.js and the tree.
    assert_eq!(watched, 20_003, "{:#}", home.entry("app"));
    assert!(
        ready < Duration::from_secs(10),
        "watching 20,000 files took {ready:?}"
    );
    let entry = home.entry("app");
    assert!(entry["watch_error"].is_null(), "{entry:#}");
    // A file in the last directory walked counts.
    touch(&dir.join("src/m9/d199/f99.js"));
    let entry = wait_restarts(&home, 1, WAIT);
    // Let the restart settle: the new run's first line captured, then a whole second in
    // which no thread of the daemon woke up (the restart's own work is over; a daemon that
    // wakes on a timer never gets there). Then it must go on sleeping: no wake-up and no
    // CPU while nothing happens (no command is sent while measuring).
    let pid = entry["pid"].as_i64().expect("the new run's pid");
    home.wait_log("app", Stream::Out, &format!("up {pid}"));
    let daemon = home.daemon_pid().expect("the daemon's pid");
    wait_idle(
        daemon,
        Duration::from_secs(1),
        "the daemon to sleep after the restart",
    );
    let before = cpu_ticks(daemon);
    let woken = wakeups_over(daemon, Duration::from_secs(3));
    let after = cpu_ticks(daemon);
    assert_eq!(woken, 0, "the daemon woke up {woken} times while idle");
    assert_eq!(after - before, 0, "the daemon used CPU while idle");
}

/// Out of inotify watches (in a user namespace of its own whose limit is 3, so nothing
/// else on the machine is touched): one clear line, at start, in `info` and in
/// `velosd.log`, naming the setting; the app runs on.
#[cfg(target_os = "linux")]
#[test]
fn running_out_of_inotify_watches_says_how_to_raise_the_limit_and_the_app_runs() {
    let home = TestHome::new();
    let dir = project(&home);
    std::fs::create_dir_all(dir.join("src/a/b/c/d/e")).unwrap();
    let bins = crate::harness::bins();
    let output = std::process::Command::new("unshare")
        .args(["-Ur", "sh", "-c"])
        .arg("echo 3 > /proc/sys/user/max_inotify_watches && exec \"$@\"")
        .arg("sh")
        .arg(&bins.velos)
        .args([
            "start",
            dir.join("app.sh").to_str().unwrap(),
            "--name",
            "app",
        ])
        .arg("--watch")
        .current_dir(&dir)
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins.velosd)
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) if String::from_utf8_lossy(&output.stderr).contains("unshare") => {
            eprintln!(
                "skipped: no user namespace here ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Ok(output) => panic!("velos start in a user namespace failed: {output:?}"),
        Err(error) => {
            eprintln!("skipped: cannot run unshare: {error}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("warning: 'app' watch: out of inotify watches after")
            && stderr.contains("raise fs.inotify.max_user_watches (now 3)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let entry = home.entry("app");
    assert_eq!(entry["status"], "running", "{entry:#}");
    assert!(
        entry["watch_error"]
            .as_str()
            .is_some_and(|e| e.contains("fs.inotify.max_user_watches")),
        "{entry:#}"
    );
    let info = home.velos(&["info", "app"]);
    assert!(info.stdout_str().contains("watch error"), "{info}");
    let log = std::fs::read_to_string(home.home().daemon_log_path()).unwrap_or_default();
    assert!(
        log.contains("'app' (id 0) watch: out of inotify watches"),
        "{log}"
    );
}
