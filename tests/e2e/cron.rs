//! `--cron-restart EXPR`: a schedule in PM2's cron syntax (5 fields, or 6 with seconds)
//! restarts a running app at its times, counted as `cron`; a stopped app is not restarted
//! and its schedule is not armed while stopped (`cron_next_ms` is null), and a start arms
//! it again; a schedule that is not one is refused before anything changes.

use std::time::{Duration, Instant};

use crate::harness::{TestHome, WAIT, fixture, wait_until};

#[test]
fn a_schedule_with_seconds_restarts_the_app_and_not_once_it_is_stopped() {
    let home = TestHome::new();
    home.velos(&[
        "start",
        &fixture("sleeper.sh"),
        "--name",
        "tick",
        "--cron-restart",
        "*/2 * * * * *",
    ])
    .success();
    let first = home.wait_running("tick").pid.expect("a pid");
    let armed = home.info("tick");
    assert_eq!(armed["cron_restart"], "*/2 * * * * *", "{armed:#}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let next = armed["cron_next_ms"].as_u64().expect("the next time");
    assert!(
        next > now_ms - 1000 && next <= now_ms + 2500,
        "next {next}, now {now_ms}"
    );

    // Within about 3 s, one restart by the schedule.
    let restarted = wait_until(Duration::from_secs(6), "a restart by the schedule", || {
        let entry = home.info("tick");
        if entry["restart_counts"]["cron"]
            .as_u64()
            .is_some_and(|n| n >= 1)
        {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    });
    assert_eq!(restarted["last_restart"]["reason"], "cron", "{restarted:#}");
    assert_eq!(
        restarted["last_restart"]["detail"], "cron */2 * * * * *",
        "{restarted:#}"
    );
    assert_eq!(restarted["restart_counts"]["crash"], 0, "{restarted:#}");
    let running = home.wait_running("tick");
    assert_ne!(running.pid, Some(first), "a new run");
    let text = home.velos(&["info", "tick"]).stdout_str();
    assert!(
        text.contains("cron restart  */2 * * * * * (next "),
        "{text}"
    );

    // Stopped: no restart, no schedule armed.
    home.velos(&["stop", "tick"]).success();
    let stopped = home.info("tick");
    let restarts = stopped["restarts"].clone();
    assert!(stopped["cron_next_ms"].is_null(), "{stopped:#}");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        let entry = home.info("tick");
        assert!(
            entry["status"] == "stopped" && entry["restarts"] == restarts && entry["pid"].is_null(),
            "after {:?} stopped: {entry:#}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Started again: armed again.
    home.velos(&["restart", "tick"]).success();
    let again = wait_until(WAIT, "a restart by the schedule after the start", || {
        let entry = home.info("tick");
        let cron = entry["restart_counts"]["cron"].as_u64().unwrap_or(0);
        let before = restarted["restart_counts"]["cron"].as_u64().unwrap_or(0);
        if entry["cron_next_ms"].is_u64() && cron > before {
            Ok(entry)
        } else {
            Err(entry.to_string())
        }
    });
    assert_eq!(again["status"], "running", "{again:#}");
    home.velos(&["delete", "tick"]).success();
}

#[test]
fn a_schedule_that_is_not_one_is_refused_and_nothing_changes() {
    let home = TestHome::new();
    for bad in ["61 * * * *", "every day", "* * *"] {
        let output = home.velos(&[
            "start",
            &fixture("sleeper.sh"),
            "--name",
            "bad",
            "--cron-restart",
            bad,
        ]);
        let error = output.error();
        assert!(
            error.contains("--cron-restart") && error.contains("0 3 * * *"),
            "{bad:?}: {error}"
        );
        assert_eq!(
            home.velos(&["list", "--json"]).json(),
            serde_json::json!([])
        );
    }
}
