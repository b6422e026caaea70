//! A full disk (issue 9, item 2): the home on a 1 MiB tmpfs, filled to the last byte. The
//! daemon keeps serving, its signal handling keeps working (SIGTERM still shuts it down),
//! and a failed save of its list is reported by `daemon.ping` (`state_error`) and
//! retried until it succeeds once there is room again.
//!
//! Mounting needs root: CI runs as root; elsewhere these tests say so and pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::process::Signal;

use crate::harness::{TestHome, WAIT, fixture, pid_alive, signal_pid, wait_gone, wait_until};

/// A [`TestHome`] whose directory is a 1 MiB tmpfs, unmounted after the home's cleanup.
struct TmpfsHome {
    home: Option<TestHome>,
    mount: PathBuf,
}

impl TmpfsHome {
    /// `None` (with a message) when not root.
    fn new() -> Option<TmpfsHome> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs these as root)");
            return None;
        }
        let home = TestHome::new();
        let mount = home.path().to_owned();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs on {}", mount.display());
        Some(TmpfsHome {
            home: Some(home),
            mount,
        })
    }

    fn home(&self) -> &TestHome {
        self.home.as_ref().expect("the home lives until drop")
    }

    /// Fills the filesystem until a write fails; returns the filler file.
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(error) = file.write_all(&chunk) {
                assert_eq!(error.raw_os_error(), Some(28), "ENOSPC expected: {error}");
                break;
            }
        }
        // The last partial chunk may have left a few bytes; take them too.
        while file.write_all(&[0]).is_ok() {}
        // And the room left in velosd.log's last page, so that its next line fails too.
        let log = self.home().home().daemon_log_path();
        if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(log) {
            while log.write_all(b"\n").is_ok() {}
        }
        path
    }
}

impl Drop for TmpfsHome {
    fn drop(&mut self) {
        // The home's own cleanup first (it finds the daemon through velos.pid), then the
        // mount; lazily, in case something still holds a file there.
        drop(self.home.take());
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_dir(&self.mount);
    }
}

/// Whether the saved list at `path` names `name` (names are plain strings in MessagePack).
fn state_names(path: &Path, name: &str) -> bool {
    std::fs::read(path)
        .unwrap_or_default()
        .windows(name.len())
        .any(|window| window == name.as_bytes())
}

#[test]
fn on_a_full_disk_the_daemon_serves_and_saves_its_list_once_there_is_room() {
    let Some(tmpfs) = TmpfsHome::new() else {
        return;
    };
    let home = tmpfs.home();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "first"])
        .success();
    home.wait_running("first");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    let filler = tmpfs.fill();

    // Changes the daemon cannot save (the first one's failure is logged).
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "second"])
        .success();
    for _ in 0..25 {
        home.velos(&["restart", "first"]).success();
    }
    let error = wait_until(WAIT, "`state_error` in daemon.ping", || {
        home.ping().state_error
    });
    assert!(
        error.contains("state.msgpack") && error.contains("No space left"),
        "state_error does not say what failed: {error:?}"
    );
    let output = home.velos(&["ping"]);
    output.success();
    assert!(
        output.stderr_str().contains("process list is not saved"),
        "`velos ping` does not warn\n{output}"
    );
    assert_eq!(home.ping().pid as i32, daemon, "another daemon answers");
    assert!(!state_names(&home.home().state_path(), "second"));
    home.wait_running("second");

    // Room again: the save is retried without any further change.
    std::fs::remove_file(&filler).expect("remove the filler");
    wait_until(WAIT, "state.msgpack to list 'second'", || {
        state_names(&home.home().state_path(), "second")
    });
    wait_until(WAIT, "`state_error` to clear", || {
        match home.ping().state_error {
            None => Ok(()),
            Some(error) => Err(error),
        }
    });
    assert_eq!(home.entry("first")["restarts"], 25);
    let log = std::fs::read_to_string(home.home().daemon_log_path()).unwrap_or_default();
    assert!(
        log.contains("saved again"),
        "velosd.log does not say the list is saved again:\n{log}"
    );
}

#[test]
fn on_a_full_disk_sigterm_still_stops_everything() {
    let Some(tmpfs) = TmpfsHome::new() else {
        return;
    };
    let home = tmpfs.home();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    let app = home.wait_running("app").pid.expect("a pid");
    let daemon = home.daemon_pid().expect("velos.pid names the daemon");
    tmpfs.fill();
    // Its line in velosd.log cannot be written; the shutdown must happen all the same.
    signal_pid(daemon, Signal::TERM);
    wait_gone(daemon, "the daemon after SIGTERM on a full disk");
    assert!(!pid_alive(app), "the app {app} outlived the daemon");
    assert!(!home.home().pid_path().exists(), "velos.pid left behind");
}

#[test]
fn on_a_full_disk_a_busy_writer_is_never_held_up_and_its_last_lines_stay_in_memory() {
    let Some(tmpfs) = TmpfsHome::new() else {
        return;
    };
    let home = tmpfs.home();
    home.velos(&["ping"]).success();
    tmpfs.fill();
    // 20 MB in 1 MiB writes: far more than the disk has room for, or a pipe holds. A
    // collector that stopped draining its pipes on a failed write would hold the writer
    // up for good.
    let lines = 200_000;
    home.velos(&[
        "start",
        env!("CARGO_BIN_EXE_velos-flood"),
        "--name",
        "flood",
        "--",
        "numbered",
        &lines.to_string(),
        "100",
    ])
    .success();
    let proc = home.wait_status("flood", "stopped");
    assert_eq!(proc.exit_code, Some(0), "{proc:?}");
    let entry = home.entry("flood");
    let error = entry["log_error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("No space left"),
        "log_error does not say the disk is full: {entry}"
    );
    let shown = home.velos(&["logs", "flood", "--lines", "2"]);
    shown.success();
    let last = format!("{lines:010} ");
    assert!(
        shown.stdout_str().contains(&last),
        "the last line ({last}...) is not in memory\n{shown}"
    );
}
