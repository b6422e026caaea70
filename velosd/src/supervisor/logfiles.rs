//! The log files a process name owns under `logs/`, found by their exact names:
//! `<name>-out.log`, `<name>-err.log`, instance K's `<name>-out-K.log` and
//! `<name>-err-K.log`, and the rotated copies `<...>.N`. Used by
//! `velos delete --logs` (removes them) and by `velos flush NAME` for a name that is no
//! longer in the list (empties the current files, removes the rotated ones).
//!
//! Only regular files are touched: a symlink or a FIFO planted under a log's name is
//! left alone, and files are opened through `paths::open_in_home` (`O_NOFOLLOW |
//! O_NONBLOCK`, ours only). The name must have
//! passed `validate_name` (no `/`, no leading `.`), so nothing outside `logs/` is named.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Whether `file` is a log file of instance `instance` of `name` (of any instance when
/// `None`); `Some(true)` for a rotated copy. Instance 0's files are `<name>-out.log`,
/// instance K's `<name>-out-K.log` (see `Home::instance_log_path`).
fn owned_by(file: &str, name: &str, instance: Option<u32>) -> Option<bool> {
    ["out", "err"].into_iter().find_map(|stream| {
        let rest = file.strip_prefix(name)?.strip_prefix('-')?;
        let rest = rest.strip_prefix(stream)?;
        let (number, rest) = match rest.strip_prefix('-') {
            Some(numbered) => {
                let digits = numbered.split('.').next()?;
                let number: u32 = digits.parse().ok()?;
                // Written as velos writes it: no sign, no leading zero, never 0.
                if number == 0 || number.to_string() != digits {
                    return None;
                }
                (number, &numbered[digits.len()..])
            }
            None => (0, rest),
        };
        if instance.is_some_and(|instance| instance != number) {
            return None;
        }
        let rest = rest.strip_prefix(".log")?;
        if rest.is_empty() {
            return Some(false);
        }
        let back = rest.strip_prefix('.')?;
        (!back.is_empty() && back.bytes().all(|b| b.is_ascii_digit())).then_some(true)
    })
}

/// The regular log files in `logs_dir` of instance `instance` of `name` (of every
/// instance when `None`), each with whether it is a rotated copy.
pub(super) fn files_of(logs_dir: &Path, name: &str, instance: Option<u32>) -> Vec<(PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(logs_dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let rotated = owned_by(entry.file_name().to_str()?, name, instance)?;
            let is_file = entry.file_type().ok()?.is_file();
            is_file.then(|| (entry.path(), rotated))
        })
        .collect();
    files.sort();
    files
}

/// Removes every log file of instance `instance` of `name` (current and rotated).
/// Errors are ignored: a file that cannot be removed is one the user can remove by hand,
/// and the delete itself succeeded.
pub(super) fn remove(logs_dir: &Path, name: &str, instance: u32) {
    for (path, _) in files_of(logs_dir, name, Some(instance)) {
        let _ = std::fs::remove_file(path);
    }
}

/// Empties the current log files of `name` (every instance's) and removes the rotated
/// ones. `false` when there were none.
pub(super) fn flush(logs_dir: &Path, name: &str) -> bool {
    let files = files_of(logs_dir, name, None);
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
        let any = |file| owned_by(file, "job", None);
        assert_eq!(any("job-out.log"), Some(false));
        assert_eq!(any("job-err.log"), Some(false));
        assert_eq!(any("job-out.log.12"), Some(true));
        assert_eq!(any("job-out-3.log"), Some(false));
        assert_eq!(any("job-err-3.log.2"), Some(true));
        for other in [
            "jobs-out.log",
            "job-out-out.log",
            "job-out.log.",
            "job-out.log.1x",
            "job-out.log-out.log",
            "job-mid.log",
            "job.log",
            "job-out-0.log",
            "job-out-03.log",
            "job-out-x.log",
            "job-out-3.logx",
        ] {
            assert_eq!(any(other), None, "{other}");
        }
        // The process named `job-out` has its own files, not `job`'s.
        assert_eq!(owned_by("job-out-out.log", "job-out", None), Some(false));
        // One instance's files are not another's.
        assert_eq!(owned_by("job-out-3.log", "job", Some(3)), Some(false));
        assert_eq!(owned_by("job-out-3.log", "job", Some(0)), None);
        assert_eq!(owned_by("job-out.log", "job", Some(3)), None);
        assert_eq!(owned_by("job-out.log.1", "job", Some(0)), Some(true));
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
        remove(&dir, "job", 0);
        assert!(!dir.join("job-out.log").exists() && !dir.join("job-err.log").exists());
        assert!(dir.join("jobs-out.log").exists());
        assert!(!flush(&dir, "job"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
