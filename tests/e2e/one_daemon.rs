//! One daemon per home, and a quick way back after a crash: removing `velos.pid` does not
//! let a second daemon in; a socket renamed over by a file is bound again, one renamed
//! over by another live daemon's socket is left to it; the first
//! command after `kill -9` of the daemon succeeds and says once that the daemon did not
//! shut down cleanly; `velos kill` racing `velos start` finishes without waiting for the
//! daemon the start brings up.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::harness::{
    TestHome, WAIT, bins, fixture, pid_alive, ping_socket, signal_pid, wait_gone, wait_until,
};

/// The pids of the velosd processes of `home`.
fn daemons(home: &TestHome) -> Vec<i32> {
    home.processes()
        .into_iter()
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "velosd")
        })
        .collect()
}

#[test]
fn removing_the_pid_file_does_not_let_a_second_daemon_in() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    let first = home.ping().pid;
    fs::remove_file(home.home().pid_path()).expect("remove velos.pid");

    // The launcher finds the live daemon and starts no other.
    home.velosd(&[]);
    // A daemon run by hand refuses, naming the reason.
    let mut child = Command::new(&bins().velosd)
        .arg("--no-daemon")
        .env("VELOS_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run velosd --no-daemon");
    home.record(child.id() as i32);
    let status = wait_until(WAIT, "a second velosd to refuse and exit", || {
        child.try_wait().ok().flatten()
    });
    let stderr = child.wait_with_output().expect("velosd's stderr").stderr;
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        !status.success() && stderr.contains("another velosd answers"),
        "expected the second daemon to refuse ({status}): {stderr}"
    );

    wait_until(WAIT, "exactly one velosd on this home", || {
        let pids = daemons(&home);
        if pids.len() == 1 {
            Ok(())
        } else {
            Err(format!("velosd pids {pids:?}"))
        }
    });
    assert_eq!(home.ping().pid, first, "another daemon answers");
    assert_eq!(home.get("app").status, "running");

    // `velos kill` still stops it, and returns once it has (its socket is gone).
    home.velos(&["kill"]).success();
    assert!(
        !home.home().socket_path().exists(),
        "velos kill returned before the daemon removed its socket"
    );
}

#[test]
fn a_socket_renamed_over_by_a_file_is_bound_again() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let pid = home.ping().pid;
    let file = home.path().join("not-a-socket");
    fs::write(&file, "x").expect("write a file");
    fs::rename(&file, home.home().socket_path()).expect("rename over the socket");
    wait_until(WAIT, "the daemon to listen on its socket again", || {
        ping_socket(&home.home().socket_path())
    });
    assert_eq!(home.ping().pid, pid, "another daemon answers");
}

#[test]
fn the_first_command_after_a_crash_recovers_and_says_so_once() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let started = Instant::now();
    for round in 1..=25 {
        let pid = home.ping().pid as i32;
        signal_pid(pid, Signal::KILL);
        // As soon as the process is gone: its other threads may still hold the socket and
        // the lock for a few milliseconds.
        wait_gone(pid, "the SIGKILLed daemon");
        let output = home.cmd(&["ping"]).run();
        let stderr = output.stderr_str();
        assert!(
            output.status.success(),
            "round {round}: the first ping after the crash failed: {stderr}"
        );
        assert_eq!(
            stderr.matches("did not shut down cleanly").count(),
            1,
            "round {round}: expected one crash note naming pid {pid}: {stderr}"
        );
        assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
        assert!(stderr.contains("velos resurrect"), "{stderr}");
        let again = home.velos(&["ping"]);
        assert!(
            !again.stderr_str().contains("did not shut down cleanly"),
            "round {round}: the note came twice: {}",
            again.stderr_str()
        );
    }
    println!("25 crashes recovered in {:?}", started.elapsed());
}

#[test]
fn kill_racing_start_finishes_without_waiting_for_the_daemon_the_start_brings_up() {
    let home = &TestHome::new();
    for round in 1..=15 {
        home.velos(&["ping"]).success();
        std::thread::scope(|scope| {
            // The start may reach the old daemon, be refused by it as it shuts down, or
            // start a new daemon once the old one is gone: any of these is fine.
            for racer in 0..3 {
                scope.spawn(move || {
                    std::thread::sleep(Duration::from_millis(5 * racer));
                    let name = format!("racer{round}-{racer}");
                    let _ = home
                        .cmd(&["start", &fixture("sleeper.sh"), "--name", &name])
                        .run();
                });
            }
            let started = Instant::now();
            let output = home.cmd(&["kill"]).run();
            let took = started.elapsed();
            assert!(
                output.status.success(),
                "round {round}: velos kill failed after {took:?}: {}",
                output.stderr_str()
            );
            assert!(
                took < Duration::from_secs(5),
                "round {round}: velos kill took {took:?} with nothing to stop"
            );
        });
    }
}

/// Stops the fake daemon's thread when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_daemon_never_takes_its_socket_back_from_another_live_one() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let pid = home.ping().pid as i32;
    // Another live "daemon": it answers every connection with a few bytes.
    let other = home.path().join("other.sock");
    let listener = UnixListener::bind(&other).expect("bind another socket");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.write_all(b"VELO");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let socket = home.home().socket_path();
    fs::rename(&other, &socket).expect("rename the other socket over velos.sock");
    let theirs = fs::symlink_metadata(&socket)
        .expect("the other socket")
        .ino();

    let log = home.path().join("velosd.log");
    wait_until(WAIT, "the daemon to notice and step back", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("will not take the socket back")
    });
    assert_eq!(
        fs::symlink_metadata(&socket).map(|m| m.ino()).ok(),
        Some(theirs),
        "the daemon took the socket back"
    );
    assert!(pid_alive(pid), "the daemon exited");
}
