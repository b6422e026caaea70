//! No home to be found: with `HOME` and `VELOS_HOME` unset and a uid that `/etc/passwd`
//! does not know, every binary says to set `VELOS_HOME`, on one line, and exits 1. A static
//! glibc build used to die of SIGSEGV here (glibc loads an NSS module into a static process
//! to look the uid up); the static build `scripts/build` makes is musl's, which reads
//! `/etc/passwd` itself.
//!
//! `VELOS_TEST_BINS=target/bin cargo test -p velos-tests --test e2e no_home` runs this on
//! the release binaries `scripts/build` made (see the harness's `bins`).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::bins;

/// A uid with no entry in `/etc/passwd`, or `None` when none of the candidates is free.
fn uid_without_passwd_entry() -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let known: Vec<u32> = passwd
        .lines()
        .filter_map(|line| line.split(':').nth(2)?.parse().ok())
        .collect();
    (4242..4342).find(|uid| !known.contains(uid))
}

/// Runs `program ARGS` as `uid` with an environment holding only `PATH`; returns its exit
/// code and stderr, and fails the test if a signal ended it.
fn run_as(uid: u32, program: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if let Some(signal) = output.status.signal() {
        panic!(
            "{} {args:?} died of signal {signal} without HOME (stderr: {stderr:?})",
            program.display()
        );
    }
    (output.status.code().expect("an exit code"), stderr)
}

#[test]
fn without_home_or_a_passwd_entry_every_binary_says_to_set_velos_home() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: needs root to run the binaries as a uid without a passwd entry");
        return;
    }
    let Some(uid) = uid_without_passwd_entry() else {
        println!("skipped: every uid from 4242 to 4341 is in /etc/passwd");
        return;
    };
    let bins = bins();
    let message =
        "cannot find the home directory: set VELOS_HOME to the directory velos should use\n";
    for args in [&["list"][..], &["ping"], &["start", "/bin/true"], &["kill"]] {
        let (code, stderr) = run_as(uid, &bins.velos, args);
        assert_eq!(
            (code, stderr.as_str()),
            (1, format!("error: {message}").as_str()),
            "velos {args:?}"
        );
    }
    for args in [&[][..], &["--no-daemon"]] {
        let (code, stderr) = run_as(uid, &bins.velosd, args);
        assert_eq!(
            (code, stderr.as_str()),
            (1, format!("velosd: {message}").as_str()),
            "velosd {args:?}"
        );
    }
}
