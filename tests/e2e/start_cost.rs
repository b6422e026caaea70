//! What a start costs (issue 14): a child is started without a copy of the daemon's
//! memory (`clone(CLONE_VM | CLONE_VFORK)`, not `fork`), so starting processes takes next
//! to no page faults in the daemon (a fork makes every page it writes afterwards fault
//! once: 100 or more per start); and `velos start` makes one round trip to a running
//! daemon, its ping written with the start.

use std::process::{Command, Stdio};

use crate::harness::{TestHome, bins, fixture, on_path};

/// The daemon's minor page faults so far, all threads (`/proc/PID/stat` field 10).
fn minor_faults(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon's stat");
    // After the command name's closing parenthesis: state is field 3, minflt field 10.
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[7].parse().expect("minflt")
}

#[cfg(target_os = "linux")]
#[test]
fn starting_processes_copies_none_of_the_daemons_memory() {
    const STARTS: u64 = 20;
    let home = TestHome::new();
    let sleeper = fixture("sleeper.sh");
    // The first start sets up what every later one reuses.
    home.velos(&["start", &sleeper, "--name", "warm"]).success();
    let daemon = home.daemon_pid().expect("the daemon's pid");
    let before = minor_faults(daemon);
    for n in 0..STARTS {
        home.velos(&["start", &sleeper, "--name", &format!("s{n}")])
            .success();
    }
    let per_start = (minor_faults(daemon) - before) / STARTS;
    assert!(
        per_start < 40,
        "the daemon took {per_start} page faults per start (a fork of it takes 100 or more)"
    );
}

/// Runs `velos start` under `strace` against a running daemon and counts the writes to
/// its socket: the ping goes with the start, in one write.
#[cfg(target_os = "linux")]
#[test]
fn a_start_is_one_write_to_a_running_daemon() {
    if !on_path("strace") {
        eprintln!("skipped: needs strace");
        return;
    }
    let home = TestHome::new();
    let sleeper = fixture("sleeper.sh");
    home.velos(&["start", &sleeper, "--name", "warm"]).success();
    let trace = home.path().join("strace.txt");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-y", "-e", "signal=none"])
        .args(["-e", "trace=write,writev,sendto,sendmsg", "-o"])
        .arg(&trace)
        .arg(&bins().velos)
        .args(["start", &sleeper, "--name", "traced"])
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins().velosd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run strace");
    assert!(status.success(), "velos start under strace: {status}");
    assert!(home.entry("traced")["pid"].is_u64(), "the start happened");
    let text = std::fs::read_to_string(&trace).expect("the trace");
    let writes: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("<socket:") || line.contains("<UNIX"))
        .collect();
    assert_eq!(writes.len(), 1, "writes to the daemon's socket:\n{text}");
}
