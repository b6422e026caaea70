//! The daemon under a service manager (`velos startup` writes a `Type=notify` unit):
//! velosd sends `READY=1` to `$NOTIFY_SOCKET` once its socket answers, `WATCHDOG=1` every
//! half of `$WATCHDOG_USEC` when the watchdog is meant for its pid, and its apps inherit
//! none of these variables.

use std::os::unix::net::UnixDatagram;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::{TestHome, WAIT, fixture, ping_socket, wait_until};

/// `velosd --no-daemon` in `home` with `env`, its log in `foreground.log`; killed on drop.
struct Foreground(Child);

impl Foreground {
    fn start(home: &TestHome, env: &[(&str, &str)]) -> Foreground {
        Foreground(home.foreground_daemon(env))
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The service manager's end: a datagram socket in the home.
fn manager_socket(home: &TestHome) -> (UnixDatagram, String) {
    let path = home.path().join("manager.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the manager's socket");
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    (socket, path)
}

/// The next datagram within `timeout`, as text; `None` when none came.
fn receive(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).expect("set timeout");
    let mut buffer = [0u8; 4096];
    let n = socket.recv(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

#[test]
fn ready_is_sent_once_the_socket_answers_and_the_watchdog_follows() {
    let home = TestHome::new();
    let (socket, path) = manager_socket(&home);
    let daemon = Foreground::start(
        &home,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
    );
    let ready = receive(&socket, WAIT).expect("READY=1 within the wait");
    assert!(
        ready.lines().any(|line| line == "READY=1"),
        "the first message is not READY=1: {ready:?}"
    );
    // Sent once the socket answers: it answers now, without a retry.
    let ping = ping_socket(&home.home().socket_path()).expect("the daemon answers at READY=1");
    assert_eq!(ping.pid, daemon.0.id(), "another daemon answered");

    // WATCHDOG=1 every 100 ms (half of 200 ms): at least three within two seconds.
    let start = Instant::now();
    let mut beats = 0;
    while beats < 3 && start.elapsed() < Duration::from_secs(2) {
        if let Some(message) = receive(&socket, Duration::from_millis(500)) {
            assert_eq!(message.trim_end(), "WATCHDOG=1", "an unexpected message");
            beats += 1;
        }
    }
    assert_eq!(beats, 3, "WATCHDOG=1 did not come every 100 ms");

    // The apps see none of the service manager's variables.
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    let pid = home.wait_running("app").pid.expect("a pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let leaked: Vec<String> = environ
        .split(|&byte| byte == 0)
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .filter(|entry| {
            ["NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="]
                .iter()
                .any(|name| entry.starts_with(name))
        })
        .collect();
    assert!(leaked.is_empty(), "the app inherited {leaked:?}");

    home.velos(&["kill"]).success();
}

#[test]
fn the_watchdog_is_left_alone_when_it_is_meant_for_another_pid_and_ready_still_comes() {
    let home = TestHome::new();
    let (socket, path) = manager_socket(&home);
    let _daemon = Foreground::start(
        &home,
        &[
            ("NOTIFY_SOCKET", &path),
            ("WATCHDOG_USEC", "100000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    let ready = receive(&socket, WAIT).expect("READY=1 within the wait");
    assert!(ready.lines().any(|line| line == "READY=1"), "{ready:?}");
    wait_until(WAIT, "the daemon to answer", || {
        ping_socket(&home.home().socket_path())
    });
    // Ten intervals of 50 ms go by without a WATCHDOG=1.
    assert_eq!(receive(&socket, Duration::from_millis(500)), None);
    home.velos(&["kill"]).success();
}
