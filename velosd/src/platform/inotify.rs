//! Watching one name in a directory with inotify (Linux): what `socket_watch` uses to
//! notice its socket file deleted or replaced.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use async_io::Async;
use rustix::fs::inotify::{CreateFlags, WatchFlags};

/// Resolves when `name` in the watched directory is deleted, renamed away, renamed over
/// or created.
pub struct NameWatch {
    inotify: Async<OwnedFd>,
    name: CString,
}

impl NameWatch {
    /// Watches `name` inside `dir`.
    pub fn new(dir: &Path, name: &std::ffi::OsStr) -> io::Result<NameWatch> {
        let name = CString::new(name.as_bytes()).unwrap_or_default();
        let fd = rustix::fs::inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        rustix::fs::inotify::add_watch(
            &fd,
            dir,
            WatchFlags::DELETE | WatchFlags::MOVED_FROM | WatchFlags::MOVED_TO | WatchFlags::CREATE,
        )?;
        Ok(NameWatch {
            inotify: Async::new(fd)?,
            name,
        })
    }

    /// Waits until something happens to the name; never resolves if the watch breaks.
    pub async fn changed(&mut self) {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        loop {
            if self.inotify.readable().await.is_err() {
                return std::future::pending().await;
            }
            let mut events = rustix::fs::inotify::Reader::new(self.inotify.get_ref(), &mut buf);
            // Until EAGAIN: everything there was has been read; then wait for more.
            while let Ok(event) = events.next() {
                if event.file_name() == Some(self.name.as_c_str()) {
                    return;
                }
            }
        }
    }
}
