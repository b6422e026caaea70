//! Answers too large for a frame, and starts too large to keep: processes whose arguments
//! add up to more than 16 MiB make `stop all` and `list` fail with one clear line (after
//! the stop was carried out), never a lost connection; a start whose arguments and
//! environment exceed 1 MiB is refused before anything is kept.

use velos_proto::{ProcessStatus, StartParams};

use crate::harness::{TestHome, fixture};

/// Arguments of 1,000,000 bytes in all (8 of 125,000: one argument may not exceed 128 KiB
/// at exec): just under the 1 MiB a start may carry.
fn large_args() -> Vec<String> {
    (0..8).map(|i| format!("{i}").repeat(125_000)).collect()
}

#[test]
fn answers_over_the_frame_limit_are_a_one_line_error_after_the_work_is_done() {
    /// 17 processes of 1,000,000 bytes of arguments: a list of 17 MB, over 16 MiB.
    const PROCESSES: usize = 17;
    let home = TestHome::new();
    let mut sdk = home.sdk();
    for index in 0..PROCESSES {
        let info = sdk
            .start(StartParams {
                script: fixture("sleeper.sh"),
                name: Some(format!("big{index}")),
                args: large_args(),
                ..StartParams::default()
            })
            .unwrap_or_else(|error| panic!("start big{index}: {error}"));
        if let Some(pid) = info.pid {
            home.record(pid as i32);
        }
    }

    for args in [&["list"][..], &["list", "--json"], &["stop", "all"]] {
        let output = home.velos(args);
        let message = output.error();
        assert!(
            message.contains("16 MiB") && output.stderr_str().lines().count() == 1,
            "velos {args:?}: expected one `error:` line naming the 16 MiB limit, got:\n{output}"
        );
        println!("velos {}: {message}", args.join(" "));
    }
    // The stop was carried out although its answer could not be sent.
    for index in 0..PROCESSES {
        let name = format!("big{index}");
        let info = sdk
            .info(name.as_str())
            .unwrap_or_else(|error| panic!("info {name}: {error}"));
        assert_eq!(info.status, ProcessStatus::Stopped, "{name} after stop all");
    }
    // The daemon is fine, and a list that fits again is answered.
    home.velos(&["delete", "big0"]).success();
    let list = home.velos(&["list", "--json"]);
    list.success();
}

#[test]
fn a_start_of_more_than_1_mib_of_arguments_and_environment_is_refused() {
    let home = TestHome::new();
    let mut sdk = home.sdk();
    let mut args = large_args();
    args.push("x".repeat(50_000));
    let started = sdk.start(StartParams {
        script: fixture("sleeper.sh"),
        name: Some("huge".into()),
        args,
        ..StartParams::default()
    });
    let message = match started {
        Ok(info) => panic!(
            "a start of 1,050,000 bytes of arguments was accepted: {}",
            info.name
        ),
        Err(error) => error.to_string(),
    };
    assert!(
        message.contains("1 MiB") && !message.contains('\n'),
        "expected a one-line message naming the 1 MiB limit, got {message:?}"
    );
    let env = (0..200)
        .map(|i| (format!("VAR{i}"), "v".repeat(6_000)))
        .collect();
    let started = sdk.start(StartParams {
        script: fixture("sleeper.sh"),
        name: Some("huge-env".into()),
        env: Some(env),
        ..StartParams::default()
    });
    match started {
        Ok(info) => panic!(
            "a start of 1.2 MB of environment was accepted: {}",
            info.name
        ),
        Err(error) => assert!(error.to_string().contains("1 MiB"), "{error}"),
    }
    assert!(home.list().is_empty(), "a refused start added a process");
}
