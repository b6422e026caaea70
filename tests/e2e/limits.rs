//! Every numeric start setting has a range (issue 9, item 6): a value outside it is
//! refused with the allowed range, by the CLI's flags, by a config file (naming its line),
//! and by the daemon itself for SDK clients. Nothing is started. And an error repeats at
//! most 80 characters of what was typed or sent (issue 9, item 13).

use velos_proto::{ErrorCode, StartParams};

use crate::harness::{TestHome, fixture};

#[test]
fn flags_outside_their_range_are_refused_with_the_range() {
    let home = TestHome::new();
    let sleeper = fixture("sleeper.sh");
    let cases: [(&[&str], &str); 5] = [
        (&["--log-files", "4294967295"], "allowed 0 to 100"),
        (&["--max-restarts", "4294967295"], "allowed 0 to 1000000"),
        (
            &["--kill-timeout", "100days"],
            "longer than the maximum, 1h",
        ),
        (&["--min-uptime", "30days"], "longer than the maximum, 1day"),
        (&["--max-log-size", "10"], "or 0 for no rotation"),
    ];
    for (flags, allowed) in cases {
        let mut args = vec!["start", sleeper.as_str()];
        args.extend_from_slice(flags);
        let output = home.velos(&args);
        let error = output.error();
        assert!(
            error.contains(flags[0]) && error.contains(allowed),
            "{flags:?}: {output}"
        );
    }
    // In range at both ends.
    home.velos(&[
        "start",
        &sleeper,
        "--log-files",
        "100",
        "--kill-timeout",
        "1h",
        "--max-log-size",
        "0",
    ])
    .success();
    assert_eq!(home.list().len(), 1);
}

#[test]
fn the_daemon_refuses_settings_outside_their_range_from_any_client() {
    let home = TestHome::new();
    let mut client = home.sdk();
    let params = StartParams {
        script: fixture("sleeper.sh"),
        log_files: Some(u32::MAX),
        ..StartParams::default()
    };
    match client.start(params) {
        Err(velos_sdk::Error::Daemon { code, message }) => {
            assert_eq!(code, ErrorCode::InvalidParams);
            assert_eq!(
                message,
                "log_files 4294967295 is out of range: allowed 0 to 100"
            );
        }
        other => panic!("expected invalid-params, got {other:?}"),
    }
    let params = StartParams {
        script: fixture("sleeper.sh"),
        kill_timeout_ms: Some(u64::MAX),
        ..StartParams::default()
    };
    let refused = client
        .start(params)
        .expect_err("a kill timeout of 584 million years");
    assert!(refused.to_string().contains("kill_timeout_ms"), "{refused}");
    assert!(client.list().expect("list").is_empty());
}

#[test]
fn a_config_file_value_outside_its_range_names_its_line() {
    let home = TestHome::new();
    let dir = home.path().join("project");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::copy(fixture("sleeper.sh"), dir.join("sleeper.sh")).expect("copy");
    std::fs::write(
        dir.join("velos.toml"),
        "[[apps]]\nname = \"web\"\nscript = \"sleeper.sh\"\nlog_files = 4294967295\n",
    )
    .expect("write velos.toml");
    let output = home.cmd(&["start", "velos.toml"]).current_dir(&dir).run();
    let error = output.error();
    assert!(
        error.contains("line 4") && error.contains("log_files") && error.contains("0 to 100"),
        "{output}"
    );
    assert!(home.list().is_empty());
}

#[test]
fn errors_repeat_at_most_80_characters_of_a_huge_input() {
    let home = TestHome::new();
    let huge = "a".repeat(100_000);
    let sleeper = fixture("sleeper.sh");
    let env = format!("NOEQUALS{huge}");
    let cases: [&[&str]; 5] = [
        &["stop", &huge],
        &["logs", &huge],
        &["start", &sleeper, "--name", &huge],
        &["start", &sleeper, "--cwd", &huge],
        &["start", &sleeper, "--env", &env],
    ];
    for args in cases {
        let output = home.velos(args);
        assert!(!output.status.success(), "{:?} succeeded", &args[..1]);
        let stderr = output.stderr_str();
        let longest = stderr.lines().map(str::len).max().unwrap_or(0);
        assert!(
            longest < 400 && stderr.contains("bytes)"),
            "`velos {}` echoed {longest} characters:\n{}",
            args[0],
            &stderr[..stderr.len().min(600)]
        );
    }
    // The daemon's own messages, for any client.
    let mut client = home.sdk();
    let refused = client.stop(huge.as_str()).expect_err("no such process");
    let message = refused.to_string();
    assert!(
        message.len() < 200 && message.contains("…(100000 bytes)"),
        "{}",
        &message[..message.len().min(600)]
    );
}
