//! The `notify` ready mode: systemd's `sd_notify` protocol on a datagram socket of the
//! daemon's.
//!
//! Each run with `--ready notify` gets its own socket, `notify-<id>-<run>.sock` in the
//! home (mode 0600: only the daemon's user can send), named in its `NOTIFY_SOCKET`. Any
//! process of its tree may send a datagram of newline-separated `KEY=VALUE` assignments
//! (`systemd-notify --ready`, Python's `socket` in five lines, the sd-notify crates).
//! `READY=1` makes the run ready; `STATUS=...` is kept and shown by `info`. Other keys
//! are ignored, as systemd ignores those it does not know.
//!
//! A socket per run says whose a datagram is by where it arrives. One shared socket would
//! have to map the sender's pid (`SCM_CREDENTIALS`) to a run by reading `/proc`, and the
//! commonest sender, `systemd-notify`, has often exited by then. The socket lives as long
//! as the run's probe (`readiness.rs`): its file goes when the run's leader exits. A
//! daemon that was SIGKILLed cannot remove them: the next one does, at start
//! ([`remove_stale`]), before any run of its own binds one.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use async_io::Async;

/// The longest datagram read; systemd allows the same (a longer one is cut).
pub const MAX_DATAGRAM: usize = 4096;
/// The longest `STATUS=` kept, in bytes.
pub const MAX_STATUS: usize = 200;

/// One run's notify socket; its file is removed when it is dropped.
pub struct RunSocket {
    path: PathBuf,
    /// The socket.
    pub socket: Async<UnixDatagram>,
}

impl RunSocket {
    /// Binds the socket of run `run` of process `id` in `home` (replacing a stale file
    /// of that name: the daemon holds its home's lock).
    pub fn bind(home: &Path, id: u32, run: u64) -> std::io::Result<RunSocket> {
        let path = home.join(format!("notify-{id}-{run}.sock"));
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let socket = UnixDatagram::bind(&path)?;
        let bound = RunSocket {
            socket: Async::new(socket)?,
            path,
        };
        crate::platform::set_socket_mode(&bound.path, 0o600)?;
        Ok(bound)
    }

    /// Its path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the notify sockets a previous daemon of `home` left (it was SIGKILLed, so its
/// runs' sockets outlived it). Called once the home's lock is held and before any run
/// starts, so none of them is in use. Only sockets named as [`RunSocket::bind`] names them
/// are removed. Returns how many went.
pub fn remove_stale(home: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(home) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_socket = entry.file_type().is_ok_and(|kind| {
            use std::os::unix::fs::FileTypeExt;
            kind.is_socket()
        });
        if is_socket
            && name.to_str().is_some_and(is_run_socket_name)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Whether `name` is `notify-<id>-<run>.sock`.
fn is_run_socket_name(name: &str) -> bool {
    let numbers = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix("notify-")
        .and_then(|rest| rest.strip_suffix(".sock"))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(id, run)| numbers(id) && numbers(run))
}

/// What one datagram said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// `READY=1`.
    pub ready: bool,
    /// The last `STATUS=` in it, at most [`MAX_STATUS`] bytes.
    pub status: Option<String>,
}

impl Notice {
    /// Reads the assignments of one datagram.
    pub fn parse(datagram: &[u8]) -> Notice {
        let mut notice = Notice::default();
        for line in datagram.split(|&b| b == b'\n') {
            if line == b"READY=1" {
                notice.ready = true;
            } else if let Some(status) = line.strip_prefix(b"STATUS=") {
                let status = String::from_utf8_lossy(status);
                let mut end = status.len().min(MAX_STATUS);
                while !status.is_char_boundary(end) {
                    end -= 1;
                }
                notice.status = Some(status[..end].to_owned());
            }
        }
        notice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_run_socket_names_are_stale_sockets() {
        assert!(is_run_socket_name("notify-0-1.sock"));
        assert!(is_run_socket_name("notify-12-345.sock"));
        for other in [
            "notify-0.sock",
            "notify--1.sock",
            "notify-a-1.sock",
            "notify-0-1.sock.bak",
            "velos.sock",
            "notify-0-1-2.sock",
        ] {
            assert!(!is_run_socket_name(other), "{other}");
        }
    }

    #[test]
    fn stale_run_sockets_go_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("velosd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stale = RunSocket::bind(&dir, 3, 7).unwrap();
        let path = stale.path().to_owned();
        // A daemon that died does not drop it.
        std::mem::forget(stale);
        std::fs::write(dir.join("notify-4-1.sock"), b"a file, not a socket").unwrap();
        assert_eq!(remove_stale(&dir), 1);
        assert!(!path.exists());
        assert!(dir.join("notify-4-1.sock").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ready_and_status_are_read_and_other_keys_ignored() {
        assert_eq!(
            Notice::parse(b"STATUS=warming up\nREADY=1\nMAINPID=4"),
            Notice {
                ready: true,
                status: Some("warming up".into())
            }
        );
        assert_eq!(Notice::parse(b"READY=0\nWATCHDOG=1"), Notice::default());
        let long = format!("STATUS={}", "é".repeat(150));
        let status = Notice::parse(long.as_bytes()).status.unwrap();
        assert!(status.len() <= MAX_STATUS && status.starts_with('é'));
    }
}
