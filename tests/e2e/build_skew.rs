//! A daemon of another build than the `velosd` the CLI would start (started before a
//! rebuild): commands that ping it say so on one stderr line with the remedy, and the
//! remedy (save, kill, resurrect) brings the processes back on the new build, silent again.

use std::fs::File;
use std::time::{Duration, SystemTime};

use crate::harness::{Output, TestHome, bins, fixture};

/// The remedy the warning names.
const REMEDY: &str = "velos save && velos kill && velos resurrect";

/// Runs `velos ARGS` with `daemon` as its `velosd`.
#[track_caller]
fn velos_with(home: &TestHome, daemon: &str, args: &[&str]) -> Output {
    home.cmd(args).env("VELOS_DAEMON", daemon).run()
}

#[test]
fn a_daemon_older_than_its_binary_is_named_with_the_remedy() {
    let home = TestHome::new();
    // A velosd of our own, to "rebuild" without touching the one other tests use.
    let daemon = home.path().join("velosd");
    std::fs::copy(&bins().velosd, &daemon).expect("copying velosd");
    let daemon = daemon.to_str().expect("a UTF-8 temp path");
    let sleeper = fixture("sleeper.sh");

    let first = velos_with(&home, daemon, &["start", &sleeper, "--name", "a"]);
    first.success();
    assert!(
        !first.stderr_str().contains("warning"),
        "the same build warned: {}",
        first.stderr_str()
    );

    // A rebuild replaces the file: here its mtime moves on while the daemon runs.
    File::open(daemon)
        .and_then(|file| file.set_modified(SystemTime::now() + Duration::from_secs(60)))
        .expect("setting the mtime of the copy");
    for args in [
        &["start", &sleeper, "--name", "b", "--restart", "always"][..],
        &["ping"][..],
    ] {
        let output = velos_with(&home, daemon, args);
        output.success();
        let stderr = output.stderr_str();
        let warnings: Vec<_> = stderr.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "velos {args:?} said: {stderr}");
        assert!(
            warnings[0].contains("another build") && warnings[0].contains(REMEDY),
            "velos {args:?} said: {stderr}"
        );
    }

    // The remedy: the processes come back under a daemon of the new build.
    for args in [&["save"][..], &["kill"][..], &["resurrect"][..]] {
        velos_with(&home, daemon, args).success();
    }
    let after = velos_with(&home, daemon, &["ping"]);
    after.success();
    assert!(
        !after.stderr_str().contains("warning"),
        "warned after the remedy: {}",
        after.stderr_str()
    );
    let names: Vec<_> = home.list().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["a", "b"]);
}
