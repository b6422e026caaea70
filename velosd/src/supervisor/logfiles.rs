//! The log files a process name owns under `logs/`, found by their exact names:
//! `<name>-out.log`, `<name>-err.log` and the rotated copies `<...>.N`. Used by
//! `velos delete --logs` (removes them) and by `velos flush NAME` for a name that is no
//! longer in the list (empties the current files, removes the rotated ones).
//!
//! Only regular files are touched: a symlink or a FIFO planted under a log's name is
//! left alone, and files are opened through `paths::open_in_home` (`O_NOFOLLOW |
//! O_NONBLOCK`, ours only). The name must have
//! passed `validate_name` (no `/`, no leading `.`), so nothing outside `logs/` is named.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Whether `file` is one of `name`'s log files; `Some(true)` for a rotated copy.
fn owned_by(file: &str, name: &str) -> Option<bool> {
    ["out", "err"].into_iter().find_map(|stream| {
        let rest = file.strip_prefix(name)?.strip_prefix('-')?;
        let rest = rest.strip_prefix(stream)?.strip_prefix(".log")?;
        if rest.is_empty() {
            return Some(false);
        }
        let back = rest.strip_prefix('.')?;
        (!back.is_empty() && back.bytes().all(|b| b.is_ascii_digit())).then_some(true)
    })
}

/// `name`'s regular log files in `logs_dir`, each with whether it is a rotated copy.
pub(super) fn files_of(logs_dir: &Path, name: &str) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(logs_dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let rotated = owned_by(entry.file_name().to_str()?, name)?;
            let is_file = entry.file_type().ok()?.is_file();
            is_file.then(|| (entry.path(), rotated))
        })
        .collect();
    files.sort();
    files
}

/// Removes every log file of `name` (current and rotated). Errors are ignored: a file
/// that cannot be removed is one the user can remove by hand, and the delete itself
/// succeeded.
pub(super) fn remove(logs_dir: &Path, name: &str) {
    for (path, _) in files_of(logs_dir, name) {
        let _ = std::fs::remove_file(path);
    }
}

/// Empties the current log files of `name` and removes the rotated ones. `false` when
/// there were none.
pub(super) fn flush(logs_dir: &Path, name: &str) -> bool {
    let files = files_of(logs_dir, name);
    for (path, rotated) in &files {
        if *rotated {
            let _ = std::fs::remove_file(path);
            continue;
        }
        if let Ok(file) = crate::paths::open_in_home(path, OpenOptions::new().write(true)) {
            let _ = file.set_len(0);
        }
    }
    !files.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_own_files_match() {
        assert_eq!(owned_by("job-out.log", "job"), Some(false));
        assert_eq!(owned_by("job-err.log", "job"), Some(false));
        assert_eq!(owned_by("job-out.log.12", "job"), Some(true));
        for other in [
            "jobs-out.log",
            "job-out-out.log",
            "job-out.log.",
            "job-out.log.1x",
            "job-out.log-out.log",
            "job-mid.log",
            "job.log",
        ] {
            assert_eq!(owned_by(other, "job"), None, "{other}");
        }
        // The process named `job-out` has its own files, not `job`'s.
        assert_eq!(owned_by("job-out-out.log", "job-out"), Some(false));
    }

    #[test]
    fn flush_empties_current_files_and_removes_rotated_ones_and_remove_removes_all() {
        let dir = std::env::temp_dir().join(format!("velosd-logfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in [
            "job-out.log",
            "job-out.log.1",
            "job-err.log",
            "jobs-out.log",
        ] {
            std::fs::write(dir.join(file), "x\n").unwrap();
        }
        std::os::unix::fs::symlink("/etc/hostname", dir.join("job-err.log.1")).unwrap();
        assert!(flush(&dir, "job"));
        assert_eq!(std::fs::read(dir.join("job-out.log")).unwrap(), b"");
        assert!(!dir.join("job-out.log.1").exists());
        assert!(
            dir.join("job-err.log.1").is_symlink(),
            "a symlink is not ours"
        );
        assert_eq!(std::fs::read(dir.join("jobs-out.log")).unwrap(), b"x\n");
        remove(&dir, "job");
        assert!(!dir.join("job-out.log").exists() && !dir.join("job-err.log").exists());
        assert!(dir.join("jobs-out.log").exists());
        assert!(!flush(&dir, "job"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
