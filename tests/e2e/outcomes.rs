//! Exit codes follow outcomes: a command exits 0 only when every process it acted on ended
//! up as asked (issue 8, defect 6). A restart or resurrect that leaves a process errored,
//! and a config file with one app that cannot start, exit non-zero and name the process
//! and the reason; what did work is still reported on stdout. A request that changes
//! something and gets no answer in time says its outcome is unknown and how to find out.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use velos_proto::{PingInfo, Request, Response, frame};

use crate::harness::TestHome;

/// Writes an executable shell script that prints "ready" and sleeps, at `dir/name`.
fn runnable(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\necho ready\nexec sleep 600\n").expect("write a script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A directory for the test's scripts, inside its home.
fn scripts(home: &TestHome) -> PathBuf {
    let dir = home.path().join("scripts");
    std::fs::create_dir_all(&dir).expect("create scripts/");
    dir
}

#[test]
fn restart_exits_non_zero_when_the_process_ends_up_errored() {
    let home = TestHome::new();
    let dir = scripts(&home);
    let gone = runnable(&dir, "gone.sh");
    let good = runnable(&dir, "good.sh");
    home.velos(&["start", gone.to_str().unwrap()]).success();
    home.velos(&["start", good.to_str().unwrap()]).success();
    home.wait_running("gone");
    std::fs::remove_file(&gone).expect("remove the script");

    let restart = home.velos(&["restart", "gone"]);
    let error = restart.error();
    assert!(
        error.starts_with("error: 'gone' (id 0) did not restart: ") && error.contains("errored"),
        "{restart}"
    );
    assert!(restart.stdout.is_empty(), "{restart}");
    assert_eq!(home.get("gone").status, "errored");

    // `all`: the one that worked is reported on stdout, the one that did not on stderr.
    let all = home.velos(&["restart", "all"]);
    let error = all.error();
    assert!(
        error.starts_with("error: 'gone' (id 0) did not restart"),
        "{all}"
    );
    let text = all.stdout_str();
    assert!(text.starts_with("restarted 'good' (id 1, pid "), "{all}");
    home.wait_running("good");
}

#[test]
fn resurrect_exits_non_zero_when_a_saved_process_does_not_come_back() {
    let home = TestHome::new();
    let dir = scripts(&home);
    let web = runnable(&dir, "web.sh");
    let gone = runnable(&dir, "gone.sh");
    let broken = runnable(&dir, "broken.sh");
    for script in [&web, &gone, &broken] {
        home.velos(&["start", script.to_str().unwrap()]).success();
    }
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    // One script is gone; another now names an interpreter that does not exist.
    std::fs::remove_file(&gone).expect("remove a script");
    std::fs::write(&broken, "#!/nonexistent/interp\n").expect("rewrite a script");

    let back = home.velos(&["resurrect"]);
    assert!(!back.status.success(), "{back}");
    let stdout = back.stdout_str();
    assert!(
        stdout.starts_with("resurrected 'web' (id 0, pid "),
        "{back}"
    );
    let stderr = back.stderr_str();
    assert!(stderr.contains("'gone'"), "{back}");
    assert!(stderr.contains("'broken'"), "{back}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|line| line.starts_with("error: 2 of 3 processes")),
        "{back}"
    );
    home.wait_running("web");
    // The one whose script exists keeps its definition, errored, ready for a restart.
    assert_eq!(home.get("broken").status, "errored");
}

#[test]
fn a_config_file_with_an_app_that_cannot_start_starts_the_rest_and_exits_non_zero() {
    let home = TestHome::new();
    let dir = scripts(&home);
    runnable(&dir, "web.sh");
    let bad = dir.join("bad.sh");
    std::fs::write(&bad, "#!/nonexistent/interp\n").expect("write a script");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(
        dir.join("velos.toml"),
        "[[apps]]\nname = \"bad\"\nscript = \"bad.sh\"\n\n[[apps]]\nname = \"web\"\nscript = \"web.sh\"\n",
    )
    .expect("write velos.toml");

    let started = home.cmd(&["start", "velos.toml"]).current_dir(&dir).run();
    let error = started.error();
    assert!(
        error.starts_with("error: starting 'bad' from velos.toml: "),
        "{started}"
    );
    assert!(
        started.stdout_str().starts_with("started 'web' (id "),
        "{started}"
    );
    home.wait_running("web");
}

/// A stand-in daemon on `home`'s socket that answers pings and never anything else, until
/// dropped (which removes the socket, so the home's cleanup finds no daemon to stop).
struct SilentDaemon {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
}

impl SilentDaemon {
    fn start(home: &TestHome) -> SilentDaemon {
        let socket = home.home().socket_path();
        let listener = UnixListener::bind(&socket).expect("bind velos.sock");
        listener.set_nonblocking(true).expect("non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stopped = stopped.clone();
                        std::thread::spawn(move || answer_pings_only(stream, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SilentDaemon { socket, stop }
    }
}

impl Drop for SilentDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Answers each `daemon.ping` on `stream`; reads anything else and keeps quiet, until
/// `stopped`.
fn answer_pings_only(mut stream: UnixStream, stopped: &AtomicBool) {
    // Accepted from a non-blocking listener; reads below wait, with a timeout.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    while !stopped.load(Ordering::Relaxed) {
        let mut header = [0; frame::HEADER_LEN];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        let Ok(len) = frame::decode_header(&header) else {
            return;
        };
        let _ = stream.set_read_timeout(None);
        let mut payload = vec![0; len as usize];
        if stream.read_exact(&mut payload).is_err() {
            return;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        if let Ok((msgid, Ok(Request::Ping))) = Request::decode(&payload) {
            let info = PingInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                pid: std::process::id(),
                protocol: frame::VERSION,
                // The stamp of the velosd the CLI would start: a stand-in of this build.
                build: std::fs::metadata(&crate::harness::bins().velosd)
                    .ok()
                    .map(|metadata| velos_proto::build_stamp(&metadata)),
                ..PingInfo::default()
            };
            let answer = Response::Ping(info).encode(msgid).expect("encode");
            let _ = stream.write_all(&frame::encode_frame(&answer).expect("frame"));
        }
    }
}

#[test]
fn a_start_the_daemon_does_not_answer_in_time_says_its_outcome_is_unknown() {
    let home = TestHome::new();
    let _daemon = SilentDaemon::start(&home);
    let pong = crate::harness::ping_socket(&home.home().socket_path());
    assert!(pong.is_ok(), "the stand-in does not answer pings: {pong:?}");
    let started = home.velos(&["start", &crate::harness::fixture("sleeper.sh")]);
    let error = started.error();
    assert_eq!(
        error,
        "error: the daemon did not answer within 10s; the start of 'sleeper' may still \
         happen: check 'velos list'",
        "{started}"
    );
}
