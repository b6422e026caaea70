//! The daemon's resident memory (issue 14): the release daemon `scripts/build` makes stays
//! under 2 MiB when idle and under 4 MiB with 100 sleeping processes, as `velos-bench --only
//! memory` measures it (`velos ping`, then a ping over the socket, then `VmRSS`).
//!
//! Most of an idle daemon's RSS is its own code, mapped 64 KiB at a time around each page
//! it runs; `velosd/build.rs` links the code it runs side by side. Only a release build is
//! laid out so, so this runs on the binaries in `VELOS_TEST_BINS` (`.ci/run` does
//! `scripts/build`, then `VELOS_TEST_BINS=target/bin cargo test -p velos-tests --test e2e
//! footprint`); on the debug binaries the harness builds it says so and checks nothing.

use velos_proto::StartParams;

use crate::harness::{TestHome, wait_until};

const MIB: u64 = 1024 * 1024;

/// The daemon's `VmRSS`, in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

#[test]
fn the_release_daemon_stays_under_2_mib_idle_and_4_mib_with_100_processes() {
    if std::env::var_os("VELOS_TEST_BINS").is_none_or(|dir| dir.is_empty()) {
        println!(
            "skipped: measures the release binaries (scripts/build, then \
             VELOS_TEST_BINS=target/bin)"
        );
        return;
    }
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let pid = home.ping().pid as i32;
    let idle = rss(pid);
    assert!(
        idle <= 2 * MIB,
        "the idle daemon's RSS is {idle} bytes, over 2 MiB"
    );

    let mut client = home.sdk();
    for n in 0..100 {
        let params = StartParams {
            script: "/bin/sleep".to_owned(),
            name: Some(format!("s{n}")),
            args: vec!["600".to_owned()],
            ..StartParams::default()
        };
        client.start(params).expect("process.start");
    }
    wait_until(crate::harness::WAIT, "100 processes running", || {
        let list = home.list();
        list.len() == 100 && list.iter().all(|proc| proc.status == "running")
    });
    let busy = rss(pid);
    assert!(
        busy <= 4 * MIB,
        "with 100 processes the daemon's RSS is {busy} bytes, over 4 MiB"
    );
    eprintln!("daemon RSS: {idle} bytes idle, {busy} with 100 processes");
}
