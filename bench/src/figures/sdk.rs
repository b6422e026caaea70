//! SDK round trips: requests per second of `ping` and `list` (100 processes) through
//! `velos_sdk::blocking::Client`, over one connection and over 8 concurrent ones (a thread
//! each). PM2 has no Rust SDK, so this group is velos only.
//!
//! Every connection is open before the clock starts; each thread then sends requests one
//! after another until the window ends, and the rates of all threads are added up.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use velos_sdk::blocking::Client;

use super::{Bench, Figure, Group, Readings};
use crate::manager::Manager;
use crate::report::Unit;
use crate::stats::Stats;

/// Concurrent connections of the second figure of each request.
const CONNECTIONS: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Request {
    Ping,
    List,
}

/// This group's rows.
pub fn figures() -> Vec<Figure> {
    let rate =
        |key, label: &str| Figure::new(key, Group::Sdk, label, Unit::Rate("req/s")).velos_only();
    vec![
        rate("sdk_ping_1", "SDK ping, 1 connection"),
        rate("sdk_ping_8", "SDK ping, 8 connections"),
        rate("sdk_list_1", "SDK list (100 processes), 1 connection"),
        rate("sdk_list_8", "SDK list (100 processes), 8 connections"),
    ]
}

/// Measures the round trips against `manager`'s daemon, if it has an SDK.
pub fn measure(bench: &Bench, manager: &dyn Manager, readings: &mut Readings) {
    let Some(socket) = manager.sdk_socket() else {
        return;
    };
    let (window, runs) = if bench.quick {
        (Duration::from_millis(200), 1)
    } else {
        (Duration::from_secs(1), 3)
    };
    for (name, request) in [("ping", Request::Ping), ("list", Request::List)] {
        for connections in [1, CONNECTIONS] {
            let key = format!("sdk_{name}_{connections}");
            let rates: Result<Vec<f64>> = (0..runs)
                .map(|_| rate(&socket, connections, request, window))
                .collect();
            readings.set_result(
                &key,
                rates.map(|rates| Stats::of(&rates).expect("at least one run")),
            );
            readings.how(
                &key,
                format!(
                    "{} s windows, blocking client, sum over connections",
                    window.as_secs_f64()
                ),
            );
        }
    }
}

/// Requests per second over `connections` connections during `window`.
fn rate(socket: &Path, connections: usize, request: Request, window: Duration) -> Result<f64> {
    let clients = (0..connections)
        .map(|_| Client::connect(socket).map_err(|e| anyhow!("connecting: {e}")))
        .collect::<Result<Vec<Client>>>()?;
    let barrier = Barrier::new(connections);
    let rates = std::thread::scope(|scope| {
        let threads: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<f64> {
                    barrier.wait();
                    let started = Instant::now();
                    let mut done = 0u64;
                    while started.elapsed() < window {
                        match request {
                            Request::Ping => {
                                client.ping().map_err(|e| anyhow!("ping: {e}"))?;
                            }
                            Request::List => {
                                let list = client.list().map_err(|e| anyhow!("list: {e}"))?;
                                if list.len() != 100 {
                                    bail!("list gave {} processes, not 100", list.len());
                                }
                            }
                        }
                        done += 1;
                    }
                    Ok(done as f64 / started.elapsed().as_secs_f64())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow!("a client thread panicked"))?
            })
            .collect::<Result<Vec<f64>>>()
    })?;
    Ok(rates.iter().sum())
}
