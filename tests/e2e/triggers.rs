//! Restarts by reason: every restart is counted under its reason (`crash` for the restart
//! policy's, `manual` for `velos restart`/`reload`), and the latest one is kept with what
//! caused it and when (`restart_counts`, `last_restart` in `info --json`, a `restarted`
//! line in `velos info`).

use rustix::process::Signal;
use serde_json::json;

use crate::harness::{TestHome, WAIT, fixture, signal_pid, wait_until};

#[test]
fn a_crash_and_a_restart_are_counted_by_their_reasons() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    let first = home.wait_running("app").pid.expect("a pid");
    // A signal nobody asked for: the restart policy starts it again.
    signal_pid(first, Signal::KILL);
    let crashed = wait_until(WAIT, "the automatic restart", || {
        let info = home.info("app");
        let restarted = info["status"] == "running"
            && info["pid"]
                .as_i64()
                .is_some_and(|pid| pid != i64::from(first));
        if restarted {
            Ok(info)
        } else {
            Err(info.to_string())
        }
    });
    assert_eq!(
        crashed["restart_counts"],
        json!({"crash": 1, "watch": 0, "memory": 0, "cron": 0, "manual": 0}),
        "{crashed:#}"
    );
    assert_eq!(crashed["last_restart"]["reason"], "crash", "{crashed:#}");
    assert_eq!(
        crashed["last_restart"]["detail"], "was killed by SIGKILL",
        "{crashed:#}"
    );

    home.velos(&["restart", "app"]).success();
    let restarted = home.info("app");
    assert_eq!(restarted["restarts"], 2, "{restarted:#}");
    assert_eq!(
        restarted["restart_counts"],
        json!({"crash": 1, "watch": 0, "memory": 0, "cron": 0, "manual": 1}),
        "{restarted:#}"
    );
    let last = &restarted["last_restart"];
    assert_eq!(last["reason"], "manual", "{restarted:#}");
    assert_eq!(last["detail"], "restart asked", "{restarted:#}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let time_ms = last["time_ms"].as_u64().expect("a time");
    assert!(
        time_ms <= now_ms && now_ms - time_ms < 60_000,
        "restarted at {time_ms}, now {now_ms}"
    );

    let text = home.velos(&["info", "app"]).stdout_str();
    assert!(
        text.contains("restarts      2 (autorestart 1, manual 1)\n"),
        "{text}"
    );
    assert!(
        text.contains("restarted     restart asked (manual) at "),
        "{text}"
    );
}

#[test]
fn a_reload_counts_as_manual() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .success();
    home.wait_running("app");
    home.velos(&["reload", "app"]).success();
    let info = home.info("app");
    assert_eq!(info["restart_counts"]["manual"], 1, "{info:#}");
    assert_eq!(info["last_restart"]["detail"], "reload asked", "{info:#}");
}
