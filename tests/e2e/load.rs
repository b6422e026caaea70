//! Load: a hundred clients at once, each on its own SDK connection, asking ping, list and
//! logs in a loop for a few seconds; every answer is right, and afterwards the daemon holds
//! no more file descriptors than before (no leaked sockets or pipes).

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use velos_proto::{ProcessStatus, Stream};
use velos_sdk::blocking::Client;

use crate::harness::{TestHome, WAIT, fixture, wait_until};
use crate::protocol::{open_fds, settled_fd_count};

/// How many clients talk to the daemon at once.
const CLIENTS: usize = 100;

/// How long each client keeps asking.
const LOAD_TIME: Duration = Duration::from_secs(3);

/// What each client counted: rounds of ping + list + logs, or the first wrong answer.
type Outcome = Result<u64, String>;

#[test]
fn a_hundred_concurrent_clients_get_correct_answers_and_leave_no_fd_behind() {
    let home = TestHome::new();
    // One process that keeps running and one whose whole output is known.
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "busy"])
        .success();
    home.velos(&["start", &fixture("lines.sh"), "--name", "known", "--", "20"])
        .success();
    let busy = home.wait_running("busy");
    home.wait_status("known", "stopped");
    home.wait_log("known", Stream::Out, "done\n");
    let busy_pid = busy.pid.expect("running has a pid") as u32;
    let daemon = home.ping().pid;
    let expected_tail = ["line 18", "line 19", "line 20", "done"];

    let baseline = settled_fd_count(daemon);

    let socket = home.home().socket_path();
    let barrier = Barrier::new(CLIENTS);
    let outcomes: Vec<Outcome> = thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|index| {
                let (socket, barrier) = (&socket, &barrier);
                scope.spawn(move || -> Outcome {
                    let mut client = Client::connect(socket)
                        .map_err(|error| format!("client {index}: connect: {error}"))?;
                    barrier.wait();
                    let start = Instant::now();
                    let mut rounds = 0;
                    while start.elapsed() < LOAD_TIME {
                        let fail = |what: &str, got: String| {
                            format!("client {index}, round {rounds}: {what}: {got}")
                        };
                        let pong = client.ping().map_err(|e| fail("ping", e.to_string()))?;
                        if pong.pid != daemon {
                            return Err(fail("ping", format!("pid {} not {daemon}", pong.pid)));
                        }
                        let list = client.list().map_err(|e| fail("list", e.to_string()))?;
                        let summary: Vec<_> = list
                            .iter()
                            .map(|process| (process.name.as_str(), process.status, process.pid))
                            .collect();
                        let right = summary.len() == 2
                            && summary.contains(&("busy", ProcessStatus::Running, Some(busy_pid)))
                            && summary.contains(&("known", ProcessStatus::Stopped, None));
                        if !right {
                            return Err(fail("list", format!("{summary:?}")));
                        }
                        let logs = client
                            .logs("known", 4)
                            .map_err(|e| fail("logs", e.to_string()))?;
                        let lines: Vec<_> = logs
                            .lines
                            .iter()
                            .map(|line| String::from_utf8_lossy(&line.line).into_owned())
                            .collect();
                        if lines != expected_tail {
                            return Err(fail("logs", format!("{lines:?}")));
                        }
                        rounds += 1;
                    }
                    Ok(rounds)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| {
                client
                    .join()
                    .unwrap_or_else(|_| Err("a client thread panicked".to_owned()))
            })
            .collect()
    });

    let failures: Vec<&String> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients got a wrong answer or an error; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .map(|failure| failure.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let rounds: Vec<u64> = outcomes.into_iter().flatten().collect();
    let total: u64 = rounds.iter().sum();
    let fewest = rounds.iter().min().copied().unwrap_or_default();
    println!(
        "{CLIENTS} clients for {LOAD_TIME:?}: {total} rounds of ping + list + logs \
         ({} requests), the slowest client did {fewest} rounds",
        total * 3
    );
    assert!(
        fewest > 0,
        "a client did not complete one round in {LOAD_TIME:?}"
    );

    // Every client is gone: the daemon is back to the descriptors it had before.
    wait_until(
        WAIT,
        "the daemon's fd count to return to its baseline",
        || {
            let fds = open_fds(daemon);
            if fds.len() <= baseline {
                Ok(())
            } else {
                Err(format!("{} open, baseline {baseline}: {fds:#?}", fds.len()))
            }
        },
    );
    assert_eq!(home.ping().pid, daemon, "the daemon changed under load");
    assert_eq!(
        home.get("busy").pid,
        busy.pid,
        "the running process changed"
    );
}
