//! Warning when the running daemon is another build than the `velosd` this CLI would
//! start: a daemon started before a rebuild (or a reinstall) keeps running the old code,
//! which ignores start options it does not know (`--restart always` runs with the old
//! default) while both report the same version.
//!
//! The check rides on the ping the CLI sends anyway ([`crate::autostart::connect`], `velos
//! ping`): the daemon reports the [`build_stamp`] of its executable taken at its start,
//! and the CLI compares it with the stamp of the file it would start now (one `stat`).
//! Requests sent without a ping (`list`, `info`) are not checked: no extra round trip.
//! At most one line per command, on stderr.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use velos_proto::{PingInfo, build_stamp};

use crate::autostart::daemon_binary;

/// What to run to replace the daemon by the current build, keeping its processes.
const REMEDY: &str = "velos save && velos kill && velos resurrect";

/// Set once the warning was printed: a command may ping more than once.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Prints the warning of [`skew`] on stderr, once per command.
pub fn warn(info: &PingInfo) {
    let binary = resolve(&daemon_binary());
    let ours = binary
        .as_deref()
        .and_then(|path| std::fs::metadata(path).ok())
        .map(|metadata| build_stamp(&metadata));
    if let Some(line) = skew(info, ours.as_deref(), binary.as_deref())
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        eprintln!("{line}");
    }
}

/// The warning when the daemon of `info` is not the build of `ours` (the stamp of the
/// `velosd` at `binary`); `None` when they agree, or when we cannot tell (no `velosd`
/// to compare with: starting one would fail anyway, with its own message).
pub fn skew(info: &PingInfo, ours: Option<&str>, binary: Option<&Path>) -> Option<String> {
    let (ours, binary) = (ours?, binary?);
    match info.build.as_deref() {
        Some(theirs) if theirs == ours => None,
        Some(_) => Some(format!(
            "warning: the running daemon (pid {}) is another build than {} (rebuilt or \
             replaced since it started) and ignores options it does not know: run '{REMEDY}' \
             to switch to the new build",
            info.pid,
            binary.display()
        )),
        // Every daemon since the field was added reports it: one without is older.
        None => Some(format!(
            "warning: the running daemon (pid {}) is an older build than this velos and \
             ignores options it does not know: run '{REMEDY}' to switch to the new build",
            info.pid
        )),
    }
}

/// The file `program` names: itself when it holds a `/`, else the first executable of
/// that name on `PATH` (as the launcher's `exec` would find it).
fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_absolute() {
        return Some(program.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(build: Option<&str>) -> PingInfo {
        PingInfo {
            pid: 77,
            build: build.map(str::to_owned),
            ..PingInfo::default()
        }
    }

    #[test]
    fn the_same_stamp_says_nothing() {
        let binary = Path::new("/opt/velos/velosd");
        assert_eq!(
            skew(&daemon(Some("9:1.5")), Some("9:1.5"), Some(binary)),
            None
        );
    }

    #[test]
    fn another_stamp_names_the_daemon_the_file_and_the_remedy() {
        let binary = Path::new("/opt/velos/velosd");
        let line = skew(&daemon(Some("9:1.5")), Some("10:2.0"), Some(binary)).unwrap();
        assert!(line.contains("pid 77"), "{line}");
        assert!(line.contains("/opt/velos/velosd"), "{line}");
        assert!(line.contains(REMEDY), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn a_daemon_without_a_stamp_is_older() {
        let binary = Path::new("/opt/velos/velosd");
        let line = skew(&daemon(None), Some("10:2.0"), Some(binary)).unwrap();
        assert!(line.contains("older build"), "{line}");
    }

    #[test]
    fn no_velosd_to_compare_with_says_nothing() {
        assert_eq!(skew(&daemon(Some("9:1.5")), None, None), None);
    }
}
