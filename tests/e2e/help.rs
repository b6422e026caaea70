//! Help and shell completions: every command's `--help` ends with an example, and
//! `velos completions` prints scripts that complete velos's commands.

use crate::harness::TestHome;

/// Every command of `velos --help`.
const COMMANDS: [&str; 16] = [
    "start",
    "stop",
    "restart",
    "delete",
    "list",
    "logs",
    "info",
    "metrics",
    "flush",
    "save",
    "resurrect",
    "startup",
    "completions",
    "ping",
    "kill",
    "help",
];

#[test]
fn every_command_help_ends_with_an_example() {
    let home = TestHome::new();
    let top = home.velos(&["--help"]);
    let text = top.success().stdout_str();
    for command in COMMANDS {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "`velos --help` does not list {command}\n{top}"
        );
    }
    assert!(text.contains("Example: velos"), "{top}");
    for command in COMMANDS.iter().filter(|command| **command != "help") {
        let help = home.velos(&[command, "--help"]);
        let text = help.success().stdout_str();
        let example = text
            .find("Example: velos")
            .unwrap_or_else(|| panic!("`velos {command} --help` has no example\n{help}"));
        // The example closes the description, before the usage and options.
        let usage = text.find("Usage:").unwrap_or(text.len());
        assert!(example < usage, "{help}");
    }
    assert!(!home.home().pid_path().exists(), "--help started a daemon");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let home = TestHome::new();
    for shell in ["bash", "zsh", "fish"] {
        let output = home.velos(&["completions", shell]);
        let text = output.success().stdout_str();
        assert!(text.contains("velos"), "{output}");
        for command in ["start", "logs", "resurrect"] {
            assert!(
                text.contains(command),
                "no {command} in the {shell} script\n{output}"
            );
        }
    }
    let bad = home.velos(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2), "{bad}");
}
