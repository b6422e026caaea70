//! Auto-start and auto-detect: a command with no daemon starts one; stale files left by a
//! SIGKILLed daemon are replaced; eight CLIs at once end with one daemon; `velos kill` leaves
//! no process, socket or pid file.

use std::os::unix::fs::PermissionsExt;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use crate::harness::{TestHome, WAIT, fixture, pid_alive, ping_socket, wait_gone, wait_until};

#[test]
fn a_command_with_no_daemon_starts_one() {
    let home = TestHome::new();
    assert!(!home.home().pid_path().exists() && !home.home().socket_path().exists());

    home.velos(&["list"]).success();
    let pid = home
        .daemon_pid()
        .expect("velos.pid holds a pid after the first command");
    assert!(
        pid_alive(pid),
        "the daemon {pid} from velos.pid is not alive"
    );
    let socket = home.home().socket_path();
    let mode = std::fs::metadata(&socket)
        .unwrap_or_else(|error| panic!("no socket at {}: {error}", socket.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {:o}", mode & 0o777);
    assert_eq!(
        home.ping().pid as i32,
        pid,
        "the socket's daemon is not velos.pid's"
    );

    home.velos(&["ping"]).success();
    assert_eq!(home.daemon_pid(), Some(pid), "ping started a second daemon");
}

#[test]
fn stale_files_of_a_killed_daemon_are_replaced() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let old = home.kill_daemon();
    assert!(
        home.home().pid_path().exists() && home.home().socket_path().exists(),
        "expected SIGKILL to leave velos.pid and velos.sock behind"
    );

    home.velos(&["list"]).success();
    let new = home.daemon_pid().expect("velos.pid after auto-start");
    assert_ne!(new, old, "velos.pid still names the dead daemon");
    assert!(pid_alive(new), "the new daemon {new} is not alive");
    assert_eq!(home.ping().pid as i32, new);
}

#[test]
fn eight_concurrent_clis_end_with_one_daemon() {
    let home = TestHome::new();
    let barrier = Barrier::new(8);
    let pids: Vec<i32> = thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    home.velos(&["list", "--json"]).success();
                    // Which daemon did this CLI reach? Ask over the socket it used.
                    ping_socket(&home.home().socket_path())
                        .unwrap_or_else(|error| panic!("ping after list: {error}"))
                        .pid as i32
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a CLI thread panicked"))
            .collect()
    });
    for &pid in &pids {
        home.record(pid);
    }
    let daemon = home.daemon_pid().expect("velos.pid after eight CLIs");
    assert!(
        pids.iter().all(|&pid| pid == daemon),
        "expected every CLI to reach the daemon in velos.pid ({daemon}), got {pids:?}"
    );
    assert_eq!(home.ping().pid as i32, daemon);

    // Daemons that lost the race must exit; only one may stay.
    #[cfg(target_os = "linux")]
    {
        let velosd = crate::harness::bins()
            .velosd
            .canonicalize()
            .expect("velosd exists");
        wait_until(WAIT, "exactly one velosd for this home", || {
            let daemons: Vec<i32> = home
                .processes()
                .into_iter()
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == velosd)
                })
                .collect();
            if daemons == [daemon] {
                Ok(())
            } else {
                Err(format!("velosd pids {daemons:?}, velos.pid {daemon}"))
            }
        });
    }
}

#[test]
fn kill_leaves_no_process_no_socket_and_no_pid_file() {
    let home = TestHome::new();
    let grandchild_file = home.path().join("grandchild.pid");
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "a"])
        .success();
    home.velos(&[
        "start",
        &fixture("forks.sh"),
        "--name",
        "b",
        "--",
        grandchild_file.to_str().expect("UTF-8 path"),
    ])
    .success();
    let grandchild: i32 = wait_until(WAIT, "the grandchild's pid file", || {
        std::fs::read_to_string(&grandchild_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    home.record(grandchild);
    let children = [
        home.wait_running("a").pid.expect("running has a pid"),
        home.wait_running("b").pid.expect("running has a pid"),
    ];
    let daemon = home.daemon_pid().expect("velos.pid");

    home.velos(&["kill"]).success();
    for pid in children {
        assert!(
            !pid_alive(pid),
            "child {pid} alive after `velos kill` returned"
        );
    }
    wait_gone(grandchild, "the grandchild");
    wait_gone(daemon, "the daemon");
    let (pid_path, socket_path) = (home.home().pid_path(), home.home().socket_path());
    wait_until(
        Duration::from_secs(2),
        "velos.pid and velos.sock to be removed",
        || {
            let left: Vec<_> = [&pid_path, &socket_path]
                .into_iter()
                .filter(|path| path.exists())
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still there: {left:?}"))
            }
        },
    );
    #[cfg(target_os = "linux")]
    wait_until(WAIT, "no process left with this VELOS_HOME", || {
        let left = home.processes();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("pids {left:?}"))
        }
    });
}
