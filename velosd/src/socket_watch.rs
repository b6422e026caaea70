//! Noticing that the socket file was deleted or replaced while the daemon runs.
//!
//! A socket file removed by hand (or by an over-eager clean-up script), or renamed over
//! by another file, leaves the daemon listening on a name nobody can reach, while it
//! still holds the pid file lock, so no other daemon can take over either. On Linux, an
//! inotify watch on the home directory reports any change to the name and the server
//! looks at what is there now (see `server::serve`): its own socket still (its own
//! re-binding is reported too), something stale to replace, or another live daemon's
//! socket, which it leaves alone. Elsewhere the watch never fires, and `velos kill` (or
//! SIGTERM to the pid in `velos.pid`) is the way out.

use std::path::Path;

/// Resolves when the socket's name is deleted, renamed away, renamed over or created.
pub struct SocketWatch {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    inotify: Option<async_io::Async<std::os::fd::OwnedFd>>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    name: std::ffi::CString,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl SocketWatch {
    /// Watches `socket` (inside the home directory).
    pub fn new(socket: &Path) -> SocketWatch {
        use rustix::fs::inotify::{CreateFlags, WatchFlags};
        use std::os::unix::ffi::OsStrExt;

        let dir = socket.parent().unwrap_or(Path::new("/"));
        let name = socket
            .file_name()
            .and_then(|name| std::ffi::CString::new(name.as_bytes()).ok())
            .unwrap_or_default();
        let inotify = rustix::fs::inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .and_then(|fd| {
                rustix::fs::inotify::add_watch(
                    &fd,
                    dir,
                    WatchFlags::DELETE
                        | WatchFlags::MOVED_FROM
                        | WatchFlags::MOVED_TO
                        | WatchFlags::CREATE,
                )?;
                Ok(fd)
            })
            .map_err(std::io::Error::from)
            .and_then(async_io::Async::new);
        let inotify = match inotify {
            Ok(inotify) => Some(inotify),
            Err(error) => {
                crate::log(format_args!(
                    "cannot watch {} ({error}): a deleted socket will not be replaced",
                    dir.display()
                ));
                None
            }
        };
        SocketWatch { inotify, name }
    }

    /// Waits until something happens to the socket's name.
    pub async fn changed(&mut self) {
        let Some(inotify) = &self.inotify else {
            return std::future::pending().await;
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        loop {
            if inotify.readable().await.is_err() {
                return std::future::pending().await;
            }
            let mut events = rustix::fs::inotify::Reader::new(inotify.get_ref(), &mut buf);
            // Until EAGAIN: everything there was has been read; then wait for more.
            while let Ok(event) = events.next() {
                if event.file_name() == Some(self.name.as_c_str()) {
                    return;
                }
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl SocketWatch {
    /// No watch on this system.
    pub fn new(_socket: &Path) -> SocketWatch {
        SocketWatch {}
    }

    /// Never resolves.
    pub async fn changed(&mut self) {
        std::future::pending().await
    }
}
