//! `velos startup`: a service definition that runs `velosd --no-daemon --resurrect` at
//! login or boot, printed to stdout, with where to put it on stderr.
//!
//! The daemon in the foreground (`--no-daemon`) lets the service manager watch it; the
//! systemd unit is `Type=notify`: velosd sends `READY=1` once its socket answers (see
//! velosd's `service_notify`), so `systemctl start` returns when `velos` commands work;
//! `--resurrect` brings back `$VELOS_HOME/state.msgpack`, which the daemon keeps current,
//! so what was running when the machine went down runs again. On SIGTERM velosd stops
//! every process gracefully and keeps the list, so `systemctl --user stop velos` and a
//! shutdown both leave it intact for the next start.
//!
//! Paths are absolute: the daemon binary (found as the CLI finds it, `$VELOS_DAEMON`,
//! beside `velos`, or on `PATH`) and the home (`VELOS_HOME` as this CLI resolves it).
//! Nothing here talks to the daemon.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use velos_proto::Home;

use crate::autostart;
use crate::cli::InitSystem;

/// The systemd unit's name, and so its file's stem.
const UNIT: &str = "velos";
/// The launchd agent's label, and so its file's stem.
const LABEL: &str = "velos";

/// Runs `velos startup`.
pub fn run(system: Option<InitSystem>) -> Result<()> {
    let system = system.unwrap_or(if cfg!(target_os = "macos") {
        InitSystem::Launchd
    } else {
        InitSystem::Systemd
    });
    let home = Home::from_env()?;
    let home = std::path::absolute(home.root())
        .with_context(|| format!("resolving {}", home.root().display()))?;
    let daemon = daemon_path()?;
    let (text, hint) = match system {
        InitSystem::Systemd => (
            systemd_unit(&daemon, &home),
            format!(
                "save this as ~/.config/systemd/user/{UNIT}.service, then run: systemctl --user \
                 daemon-reload && systemctl --user enable --now {UNIT} (and 'loginctl \
                 enable-linger' to start it at boot without logging in)"
            ),
        ),
        InitSystem::Launchd => (
            launchd_plist(&daemon, &home),
            format!(
                "save this as ~/Library/LaunchAgents/{LABEL}.plist, then run: launchctl load -w \
                 ~/Library/LaunchAgents/{LABEL}.plist"
            ),
        ),
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    eprintln!("{hint}");
    Ok(())
}

/// The daemon binary the CLI would start, as an absolute path to an existing file.
fn daemon_path() -> Result<PathBuf> {
    let binary = autostart::daemon_binary();
    let found = if binary.components().count() == 1 {
        // A bare name: look on PATH, as running it would.
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(&binary))
                    .find(|candidate| candidate.is_file())
            })
            .with_context(|| {
                format!(
                    "cannot find '{}' beside velos or on PATH (set {} to the velosd binary)",
                    binary.display(),
                    autostart::DAEMON_ENV
                )
            })?
    } else {
        binary
    };
    if !found.is_file() {
        bail!(
            "the daemon binary {} does not exist (set {} to the velosd binary)",
            found.display(),
            autostart::DAEMON_ENV
        );
    }
    std::path::absolute(&found).with_context(|| format!("resolving {}", found.display()))
}

/// A systemd user unit.
fn systemd_unit(daemon: &Path, home: &Path) -> String {
    let daemon = systemd_word(&daemon.to_string_lossy());
    let environment = systemd_word(&format!("VELOS_HOME={}", home.to_string_lossy()));
    format!(
        "\
# velos: the process manager's daemon, and the processes it was running (velos startup)
[Unit]
Description=velos process manager
After=network.target

[Service]
# velosd says READY=1 on $NOTIFY_SOCKET once its socket answers; with WatchdogSec= set,
# it also sends WATCHDOG=1 every half of it.
Type=notify
Environment={environment}
ExecStart={daemon} --no-daemon --resurrect
# velosd stops every process gracefully on SIGTERM; only then is the rest killed.
KillMode=mixed
TimeoutStopSec=120
Restart=on-failure

[Install]
WantedBy=default.target
"
    )
}

/// One word of a systemd unit line: `%` doubled (specifiers), and quoted when it holds
/// spaces, quotes or backslashes.
fn systemd_word(text: &str) -> String {
    let text = text.replace('%', "%%");
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// A launchd agent.
fn launchd_plist(daemon: &Path, home: &Path) -> String {
    let daemon = xml_text(&daemon.to_string_lossy());
    let log = xml_text(&home.join("velosd.log").to_string_lossy());
    let home = xml_text(&home.to_string_lossy());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- velos: the process manager's daemon, and the processes it was running (velos startup) -->
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>{LABEL}</string>
    <key>ProgramArguments</key>
    <array>
        <string>{daemon}</string>
        <string>--no-daemon</string>
        <string>--resurrect</string>
    </array>
    <key>EnvironmentVariables</key>
    <dict>
        <key>VELOS_HOME</key>
        <string>{home}</string>
    </dict>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
        <key>SuccessfulExit</key>
        <false/>
    </dict>
    <key>StandardErrorPath</key>
    <string>{log}</string>
</dict>
</plist>
"#
    )
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_daemon_in_the_foreground_with_resurrect() {
        let unit = systemd_unit(Path::new("/opt/velos/velosd"), Path::new("/home/me/.velos"));
        assert!(unit.contains("\nExecStart=/opt/velos/velosd --no-daemon --resurrect\n"));
        assert!(unit.contains("\nEnvironment=VELOS_HOME=/home/me/.velos\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
    }

    #[test]
    fn odd_paths_are_quoted_for_systemd() {
        assert_eq!(systemd_word("/a/b"), "/a/b");
        assert_eq!(systemd_word("/my apps/velosd"), "\"/my apps/velosd\"");
        assert_eq!(systemd_word("/100%/x"), "/100%%/x");
        assert_eq!(systemd_word(r#"/a"b"#), r#""/a\"b""#);
    }

    #[test]
    fn the_plist_is_escaped_xml() {
        let plist = launchd_plist(Path::new("/Apps/R&D/velosd"), Path::new("/Users/me/.velos"));
        assert!(plist.contains("<string>/Apps/R&amp;D/velosd</string>"));
        assert!(plist.contains("<string>--resurrect</string>"));
        assert!(plist.contains("<string>/Users/me/.velos</string>"));
        assert!(plist.contains("<string>/Users/me/.velos/velosd.log</string>"));
    }
}
