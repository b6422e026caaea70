//! Noticing that the socket file was deleted or replaced while the daemon runs.
//!
//! A socket file removed by hand (or by an over-eager clean-up script), or renamed over
//! by another file, leaves the daemon listening on a name nobody can reach, while it
//! still holds the pid file lock, so no other daemon can take over either. On Linux, an
//! inotify watch on the home directory reports any change to the name and the server
//! looks at what is there now (see `server::serve`): its own socket still (its own
//! re-binding is reported too), something stale to replace, or another live daemon's
//! socket, which it leaves alone. Elsewhere the watch never fires (see `platform`), and
//! `velos kill` (or SIGTERM to the pid in `velos.pid`) is the way out.

use std::path::Path;

use crate::platform::NameWatch;

/// Resolves when the socket's name is deleted, renamed away, renamed over or created.
pub struct SocketWatch {
    watch: Option<NameWatch>,
}

impl SocketWatch {
    /// Watches `socket` (inside the home directory).
    pub fn new(socket: &Path) -> SocketWatch {
        let dir = socket.parent().unwrap_or(Path::new("/"));
        let name = socket.file_name().unwrap_or_default();
        let watch = match NameWatch::new(dir, name) {
            Ok(watch) => Some(watch),
            Err(error) => {
                crate::log(format_args!(
                    "cannot watch {} ({error}): a deleted socket will not be replaced",
                    dir.display()
                ));
                None
            }
        };
        SocketWatch { watch }
    }

    /// Waits until something happens to the socket's name.
    pub async fn changed(&mut self) {
        match &mut self.watch {
            Some(watch) => watch.changed().await,
            None => std::future::pending().await,
        }
    }
}
