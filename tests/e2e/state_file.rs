//! The daemon's saved lists on disk (issue 10, item 8; issue 9, item 13): `state.msgpack` and
//! `dump.msgpack` are made durable before and after they replace the old file (the data
//! fsynced before the rename, the directory after it), and a corrupt `state.msgpack` is
//! kept aside (`state.msgpack.corrupt-<time>`) rather than overwritten. `state.msgpack`,
//! rewritten on every change, makes no new file per save (issue 14): the file that held
//! the list before is rewritten and swapped in.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::daemon_signals::{daemon_log, wait_daemon_log};
use crate::harness::{TestHome, WAIT, bins, fixture, on_path, wait_until};

/// `velosd --no-daemon` for `home` under `strace -f` with `filter` (its system calls, signals
/// left out), once it answers; the trace goes to the returned file.
fn traced_daemon(home: &TestHome, filter: &[&str]) -> (Child, PathBuf) {
    let trace = home.path().join("strace.txt");
    let strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "signal=none"])
        .args(filter)
        .arg("-o")
        .arg(&trace)
        .arg(&bins().velosd)
        .arg("--no-daemon")
        .env("VELOS_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run strace");
    home.record(strace.id() as i32);
    wait_until(WAIT, "the traced daemon to answer", || {
        crate::harness::ping_socket(&home.home().socket_path())
    });
    (strace, trace)
}

/// Runs `velosd --no-daemon` under `strace`, starts a process, saves, and checks that each
/// list reached the disk as `fsync(temporary)`, `rename`, `fsync(directory)`.
#[test]
fn saved_lists_are_fsynced_before_and_after_their_rename() {
    if !cfg!(target_os = "linux") || !on_path("strace") {
        eprintln!("skipped: needs Linux and strace");
        return;
    }
    let home = TestHome::new();
    let (mut strace, trace) = traced_daemon(
        &home,
        &[
            "-y",
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
        ],
    );
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "kept"])
        .success();
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    wait_until(WAIT, "strace to end", || strace.try_wait().ok().flatten());

    let text = std::fs::read_to_string(&trace).expect("the trace");
    let dir = home.path().display().to_string();
    for name in ["state.msgpack", "dump.msgpack"] {
        let path = format!("{dir}/{name}");
        let temporary = format!("{path}.tmp");
        let lines: Vec<&str> = text.lines().collect();
        let rename = lines
            .iter()
            .position(|line| {
                line.contains("rename") && line.contains(&format!("\"{temporary}\", "))
            })
            .unwrap_or_else(|| panic!("no rename of {temporary} in the trace:\n{text}"));
        let synced_before = lines[..rename]
            .iter()
            .any(|line| line.contains("fsync(") && line.contains(&format!("<{temporary}>")));
        assert!(
            synced_before,
            "{temporary} not fsynced before its rename:\n{text}"
        );
        let synced_after = lines[rename..]
            .iter()
            .any(|line| line.contains("fsync(") && line.contains(&format!("<{dir}>")));
        assert!(
            synced_after,
            "{dir} not fsynced after the rename of {name}:\n{text}"
        );
    }
}

/// Runs `velosd --no-daemon` under `strace` through several starts (a save each) and
/// checks that `state.msgpack.tmp` was made at most twice, not once per save, and that the
/// list on disk is the last one.
#[test]
fn saving_the_list_again_makes_no_new_file() {
    if !cfg!(target_os = "linux") || !on_path("strace") {
        eprintln!("skipped: needs Linux and strace");
        return;
    }
    let home = TestHome::new();
    let (mut strace, trace) =
        traced_daemon(&home, &["-e", "trace=open,openat,creat,unlink,unlinkat"]);
    for n in 0..5 {
        home.velos(&["start", &fixture("sleeper.sh"), "--name", &format!("s{n}")])
            .success();
        // Each change on disk before the next: a save per start.
        wait_until(WAIT, "the list to be on disk", || {
            !home.ping().state_pending
        });
    }
    home.velos(&["kill"]).success();
    wait_until(WAIT, "strace to end", || strace.try_wait().ok().flatten());

    let text = std::fs::read_to_string(&trace).expect("the trace");
    let temporary = format!("{}/state.msgpack.tmp", home.path().display());
    let made = text
        .lines()
        .filter(|line| line.contains(&format!("\"{temporary}\"")) && line.contains("O_CREAT"))
        .count();
    // The first save has no list to swap with (it renames), so the second makes the file
    // that every later save reuses.
    assert!(made <= 2, "state.msgpack.tmp made {made} times:\n{text}");
    let list = std::fs::read(home.home().state_path()).expect("state.msgpack");
    for n in 0..5 {
        let name = format!("s{n}");
        assert!(
            list.windows(name.len())
                .any(|window| window == name.as_bytes()),
            "{name} is not in the saved list"
        );
    }
}

#[test]
fn a_corrupt_state_file_is_kept_aside_and_logged() {
    let home = TestHome::new();
    let state = home.home().state_path();
    std::fs::write(&state, b"this is not a process list").expect("write a corrupt state");
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "fresh"])
        .success();
    home.wait_running("fresh");
    let kept = wait_until(WAIT, "a state.msgpack.corrupt-* file", || {
        std::fs::read_dir(home.path())
            .ok()?
            .filter_map(Result::ok)
            .find(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("state.msgpack.corrupt-")
            })
            .map(|entry| entry.path())
    });
    assert_eq!(
        std::fs::read(&kept).expect("the kept file"),
        b"this is not a process list"
    );
    wait_daemon_log(&home, "is corrupt");
    let log = daemon_log(&home);
    let file_name = kept
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    assert!(
        log.contains(&file_name),
        "velosd.log does not name {file_name}:\n{log}"
    );
    // The new list is saved in its place.
    wait_until(WAIT, "state.msgpack to list 'fresh'", || {
        std::fs::read(&state)
            .unwrap_or_default()
            .windows(5)
            .any(|window| window == b"fresh")
    });
}
