//! What a start costs the daemon (issue 14): a child is started without a copy of the
//! daemon's memory (`clone(CLONE_VM | CLONE_VFORK)`, not `fork`), so starting processes
//! takes next to no page faults in the daemon; a fork would make every page it writes
//! afterwards fault once (over 100 per start).

use crate::harness::{TestHome, fixture};

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
