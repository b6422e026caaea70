//! Output without a final newline (a prompt such as `Enter password: `): `velos logs` and
//! `velos logs -f` show it once the stream has been quiet for a moment, and its end, when
//! it comes, completes it in place rather than repeating it.

use std::time::Duration;

use velos_sdk::{FollowEvent, Stream};

use crate::harness::{Background, TestHome, WAIT, wait_until};

/// Starts `sh` as `name`: it prints `Enter password: ` with no newline, waits for the file
/// `go-NAME` in the home, then ends the line with `ok` and sleeps.
fn start_prompt(home: &TestHome, name: &str) {
    let go = home.path().join(format!("go-{name}"));
    let script = format!(
        "printf 'Enter password: '; while [ ! -e '{}' ]; do sleep 0.02; done; echo ok; exec sleep 1000",
        go.display()
    );
    home.velos(&["start", "/bin/sh", "--name", name, "--", "-c", &script])
        .success();
}

fn go(home: &TestHome, name: &str) {
    std::fs::write(home.path().join(format!("go-{name}")), b"").expect("write the go file");
}

#[test]
fn logs_show_a_prompt_without_a_newline_while_the_program_waits() {
    let home = TestHome::new();
    start_prompt(&home, "prompt");
    let shown = wait_until(WAIT, "the prompt in `velos logs`", || {
        let output = home.velos(&["logs", "prompt"]);
        let text = output.success().stdout_str();
        if text == "prompt | Enter password: \n" {
            Ok(text)
        } else {
            Err(format!("{output}"))
        }
    });
    assert_eq!(shown, "prompt | Enter password: \n");
    let raw = home.velos(&["logs", "prompt", "--raw"]);
    assert_eq!(raw.success().stdout_str(), "Enter password: ");

    go(&home, "prompt");
    home.wait_logs_show(&["logs", "prompt"], "prompt", &["Enter password: ok"]);
    let output = home.velos(&["logs", "prompt"]);
    assert_eq!(
        output.success().stdout_str(),
        "prompt | Enter password: ok\n",
        "the prompt is shown once, completed"
    );
}

#[test]
fn logs_follow_shows_a_prompt_once_quiet_then_completes_it_in_place() {
    let home = TestHome::new();
    let client = home.sdk();
    let follow = client
        .follow_logs(velos_sdk::Target::All, 0)
        .expect("log.follow");
    let mut events = Background::new(
        "follow_logs",
        follow.map(|event| event.expect("a follow event the SDK can read")),
    );
    start_prompt(&home, "prompt");
    // The prompt, while the program waits: a partial line.
    let seen = events.until(
        "the prompt",
        |event| matches!(event, FollowEvent::Line(line) if line.name == "prompt"),
    );
    let Some(FollowEvent::Line(prompt)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(prompt.line, b"Enter password: ");
    assert!(prompt.partial && !prompt.continued, "{prompt:?}");
    assert_eq!(prompt.stream, Stream::Out);

    // A CLI following from now on shows it too (as its first line), then the end in place.
    let mut cli = home.spawn(&["logs", "prompt", "-f", "-n", "5"]);
    std::thread::sleep(Duration::from_millis(300));
    go(&home, "prompt");
    let end = events.until(
        "the end of the line",
        |event| matches!(event, FollowEvent::Line(line) if line.name == "prompt"),
    );
    let Some(FollowEvent::Line(end)) = end.last() else {
        unreachable!()
    };
    assert_eq!(
        end.line, b"ok",
        "only the rest of the line, not the prompt again"
    );
    assert!(end.continued && !end.partial, "{end:?}");

    let line = cli.wait_line("the completed line", |line| line.contains("ok"));
    assert_eq!(line, "prompt | Enter password: ok");
}
