//! What `velos logs` writes to a terminal: an app's control characters (escape sequences
//! that clear the screen, retitle the window or set the clipboard) shown escaped, unless
//! `--raw`; and, without a name, names padded so that every line's text starts in one
//! column. The terminal is a real pty (`script`).

use std::process::{Command, Stdio};

use crate::harness::{TestHome, bins, logged_lines, on_path};

/// Runs `velos ARGS` on a pty (behind `wrapper`, a command prefix such as `timeout 5 `) and
/// returns the command line and what `script` reported.
#[cfg(target_os = "linux")]
fn run_on_a_pty(home: &TestHome, wrapper: &str, args: &[&str]) -> (String, std::process::Output) {
    let mut command_line = format!("{wrapper}{}", bins().velos.display());
    for arg in args {
        command_line.push(' ');
        command_line.push_str(arg);
    }
    let output = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins().velosd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    (command_line, output)
}

/// Runs `velos ARGS` on a pty and returns what it wrote there.
#[cfg(target_os = "linux")]
fn on_a_terminal(home: &TestHome, args: &[&str]) -> Vec<u8> {
    let (command_line, output) = run_on_a_pty(home, "", args);
    assert!(
        output.status.success(),
        "`{command_line}` on a pty: {output:?}"
    );
    output.stdout
}

#[cfg(target_os = "linux")]
#[test]
fn logs_on_a_terminal_show_control_characters_escaped_unless_raw() {
    if !on_path("script") {
        eprintln!("skipped: no `script` (util-linux) to make a pty");
        return;
    }
    let home = TestHome::new();
    // A window title, the clipboard (OSC 52), a screen clear, a tab.
    let evil =
        r"printf 'GET /\033]0;pwned\007\033]52;c;ZWNobyBoaQ==\007\033[2J\tend\n'; exec sleep 1000";
    home.velos(&["start", "/bin/sh", "--name", "evil", "--", "-c", evil])
        .success();
    home.wait_log("evil", velos_sdk::Stream::Out, "end");

    for args in [&["logs", "evil"][..], &["logs", "evil", "-f", "-n", "1"]] {
        let mut shown = on_a_terminal_until(&home, args, b"end");
        shown.retain(|&b| b != b'\r');
        let text = String::from_utf8_lossy(&shown);
        assert!(
            !shown.contains(&0x1b) && !shown.contains(&0x07),
            "{args:?}: raw control characters reached the terminal: {text:?}"
        );
        assert!(
            text.contains(r"evil | GET /\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J"),
            "{args:?}: {text:?}"
        );
        assert!(text.contains("\tend"), "a tab stays a tab: {text:?}");
    }

    // --raw is the bytes as written, terminal or not; so is a pipe.
    let raw = on_a_terminal(&home, &["logs", "evil", "--raw"]);
    assert!(raw.windows(4).any(|w| w == b"\x1b]0;"), "{raw:?}");
    let piped = home.velos(&["logs", "evil"]);
    assert!(piped.success().stdout.windows(4).any(|w| w == b"\x1b]0;"));
}

/// Runs `velos ARGS` (which may not end by itself, as `-f`) on a pty until its output
/// holds `until`, then ends it; returns the output.
#[cfg(target_os = "linux")]
fn on_a_terminal_until(home: &TestHome, args: &[&str], until: &[u8]) -> Vec<u8> {
    if !args.contains(&"-f") {
        return on_a_terminal(home, args);
    }
    let (command_line, output) = run_on_a_pty(home, "timeout 5 ", args);
    assert!(
        output.stdout.windows(until.len()).any(|w| w == until),
        "`{command_line}` on a pty never showed {:?}: {output:?}",
        String::from_utf8_lossy(until)
    );
    output.stdout
}

#[test]
fn logs_without_a_name_line_up_the_names() {
    let home = TestHome::new();
    for name in ["a", "longer-name"] {
        home.velos(&[
            "start",
            &crate::harness::fixture("lines.sh"),
            "--name",
            name,
            "--",
            "2",
        ])
        .success();
        home.wait_logs_show(&["logs", name], name, &["done"]);
    }
    let output = home.velos(&["logs", "-n", "1"]);
    let text = output.success().stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert_eq!(lines[0], "          a | done", "{output}");
    assert_eq!(lines[1], "longer-name | done", "{output}");
    // Still found by `grep 'a |'`.
    assert_eq!(logged_lines(&text, "a"), ["done"]);
}
