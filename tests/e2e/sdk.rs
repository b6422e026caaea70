//! The SDK behaves as the CLI does (issue 8, defect 12): `StartParams::new` resolves a
//! relative script against the caller's directory and sends the caller's environment and
//! directory, so the process runs as `velos start` would run it; events name the signal
//! that ended a run.

use std::path::Path;

use velos_proto::{EventKind, StartParams, Stream};

use crate::harness::{TestHome, fixture};

#[test]
fn start_params_new_runs_a_relative_script_in_the_callers_directory_and_environment() {
    let home = TestHome::new();
    let mut client = home.sdk();
    // Cargo runs tests in the crate's directory, where `fixtures/` is.
    let here = std::env::current_dir().expect("the test's directory");
    assert_eq!(here, Path::new(env!("CARGO_MANIFEST_DIR")));
    let script = home.path().join("where.sh");
    std::fs::write(
        &script,
        "echo \"cwd: $(pwd)\"\necho \"home: ${VELOS_HOME:-unset}\"\necho done\n",
    )
    .expect("write a script");
    // A path relative to this test's directory.
    let relative = pathdiff(&script, &here);

    let mut params = StartParams::new(&relative).expect("StartParams::new");
    params.name = Some("where".into());
    let started = client.start(params).expect("start");
    // Lexical, as the CLI's: `..` stays as typed.
    assert_eq!(
        Path::new(&started.script),
        here.join(&relative),
        "{started:#?}"
    );
    assert_eq!(Path::new(&started.cwd), here, "{started:#?}");
    home.wait_status("where", "stopped");
    home.wait_log("where", Stream::Out, "done");
    let out = String::from_utf8(home.log_file("where", Stream::Out)).expect("UTF-8");
    assert!(
        out.contains(&format!("cwd: {}\n", here.display())),
        "not the caller's directory:\n{out}"
    );
    // The daemon's environment has this home's VELOS_HOME (the CLI that started it had);
    // this test's own environment does not.
    let expected = std::env::var("VELOS_HOME").unwrap_or_else(|_| "unset".into());
    assert!(
        out.contains(&format!("home: {expected}\n")),
        "not the caller's environment:\n{out}"
    );

    let missing = StartParams::new("fixtures/no-such-script.sh").unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "script 'fixtures/no-such-script.sh' not found (looked at {})",
            here.join("fixtures/no-such-script.sh").display()
        )
    );
}

#[test]
fn events_name_the_signal_that_ended_a_run() {
    let home = TestHome::new();
    let mut events = home.events();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "calm"])
        .success();
    home.wait_running("calm");
    home.velos(&["stop", "calm"]).success();
    let seen = events.until("'calm' stopped", |event| event.kind == EventKind::Stopped);
    let exited = seen
        .iter()
        .find(|event| event.kind == EventKind::Exited)
        .expect("an exited event");
    assert_eq!(exited.signal_name(), Some("SIGTERM"), "{seen:#?}");
    assert_eq!(exited.signal, Some(15), "{seen:#?}");
}

/// `path` relative to `base` (both absolute), with `..` where needed.
fn pathdiff(path: &Path, base: &Path) -> std::path::PathBuf {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut relative = std::path::PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for part in &path[common..] {
        relative.push(part);
    }
    relative
}
