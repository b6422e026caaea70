//! The pid file, which is also the lock that makes a daemon the only one.
//!
//! Order: open (creating) `velos.pid`, take a non-blocking exclusive `flock`, check the
//! path still names the file we locked (a daemon shutting down may have just removed
//! it), and only then write our pid. Checking for a live pid first and creating the
//! file after would race; the lock cannot. The lock goes with the process, so a daemon
//! killed with SIGKILL leaves a file that the next daemon simply locks again, and the pid
//! still in it tells that daemon (and `velosd.log`) the last one did not shut down
//! cleanly. The file is opened through `paths::open_in_home`: never a link, a FIFO or
//! another user's file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// A locked pid file; removed on drop.
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error("{}", match .pid { Some(pid) => format!("another velosd is already running (pid {pid})"), None => "another velosd is already running".to_owned() })]
    Held {
        /// Its pid, if the file says.
        pid: Option<u32>,
    },
    /// The file could not be opened or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The pid file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl PidFile {
    /// Takes the lock on `path` and writes our pid into it.
    pub fn acquire(path: &Path) -> Result<PidFile, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        loop {
            let mut file = crate::paths::open_in_home(
                path,
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false),
            )
            .map_err(io)?;
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Held {
                        pid: text.trim().parse().ok(),
                    });
                }
                Err(errno) => return Err(io(errno.into())),
            }
            let locked = file.metadata().map_err(io)?;
            match std::fs::metadata(path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {}
                // Removed or replaced between open and lock: lock the file that is there now.
                _ => continue,
            }
            // A clean shutdown removes the file: a pid still in it is a daemon that died.
            let mut previous = String::new();
            let _ = file.read_to_string(&mut previous);
            if let Ok(pid) = previous.trim().parse::<u32>() {
                crate::log(format_args!(
                    "the previous velosd (pid {pid}) did not shut down cleanly; 'velos resurrect' (or 'velosd --resurrect') brings back its process list"
                ));
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(PidFile {
                file,
                path: path.to_owned(),
            });
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so no daemon starting now can mistake it for free.
        let _ = std::fs::remove_file(&self.path);
        let _ = &self.file;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("velosd-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("velos.pid");
        let first = PidFile::acquire(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to the open file, so a second open in the same process
        // conflicts just as another process would.
        match PidFile::acquire(&path) {
            Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(!path.exists(), "the pid file is removed on drop");
        let again = PidFile::acquire(&path).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
