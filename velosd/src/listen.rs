//! The sockets the daemon listens on for an app (`--listen`), bound once and held for as
//! long as the app exists.
//!
//! A start request's `listen` addresses are read ([`parse`]) and bound ([`Listeners::bind`])
//! before the app's entry is made, so an address that is taken or cannot be read fails the
//! start and leaves the table as it was. The bound sockets live in one [`Listeners`],
//! shared (`Arc`) by the app's [`Spec`](crate::state::Spec): every run of the app (a restart,
//! and every instance or generation that clones the spec) gets the very same sockets, and
//! the last owner to go (the entry's delete) closes them and removes a `unix:` socket file.
//! So a new instance or a replacement of an app must clone its spec, never bind the start
//! request's addresses again: the second bind of an address fails, in use by the first.
//! Because the daemon holds the socket, connections that arrive while no run accepts
//! (during a restart) wait in the kernel's backlog instead of being refused.
//!
//! Each run receives them through systemd's socket-activation protocol (`sd_listen_fds(3)`):
//! descriptors 3, 4, … in the order given, `LISTEN_FDS`, `LISTEN_PID` (the run's own pid),
//! `LISTEN_FDNAMES`, and `PORT` when there is exactly one TCP listener. That part happens
//! between fork and exec, in [`crate::handoff`].
//!
//! The daemon's own copies are close-on-exec, so nothing else it spawns inherits them.
//! The descriptor numbers 3 to 3 + [`MAX_LISTENERS`] are reserved at start-up
//! ([`reserve_descriptors`]) so that nothing the daemon opens later lands where a child
//! expects its sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::Error;

/// The most addresses one app may listen on.
pub const MAX_LISTENERS: usize = 16;

/// The first descriptor a run receives (after stdin, stdout and stderr), as
/// `SD_LISTEN_FDS_START`.
pub const FIRST_FD: RawFd = 3;

/// The `listen(2)` backlog: connections the kernel keeps waiting while no run accepts,
/// say during a restart. systemd's default (`Backlog=`, SOMAXCONN); Linux caps it at
/// `net.core.somaxconn` (4096 since Linux 5.4). A run that calls `listen()` again on its
/// descriptor (Node does, with 511) sets its own.
pub const BACKLOG: i32 = 4096;

/// An address to listen on, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP address; port 0 lets the kernel choose.
    Tcp(SocketAddr),
    /// A Unix stream socket at this absolute path.
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(address) => write!(f, "{address}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Reads a listen address: `PORT` (every IPv4 interface), `HOST:PORT` where HOST is an IPv4
/// address or `localhost`, `[IPv6]:PORT`, or `unix:/absolute/path`.
pub fn parse(text: &str) -> Result<Address, Error> {
    let bad = |reason: &'static str| Error::BadListenAddress {
        address: text.to_owned(),
        reason,
    };
    if let Some(path) = text.strip_prefix("unix:") {
        let path = Path::new(path);
        if path.as_os_str().is_empty() {
            return Err(bad("the path after 'unix:' is empty"));
        }
        if !path.is_absolute() {
            return Err(bad("a unix socket path must be absolute"));
        }
        return Ok(Address::Unix(path.to_owned()));
    }
    let port = |text: &str| {
        text.parse::<u16>()
            .map_err(|_| bad("the port must be a number from 0 to 65535"))
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Address::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port(text)?,
        )));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(Address::Tcp(address));
    }
    match text.rsplit_once(':') {
        Some(("localhost", digits)) => Ok(Address::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port(digits)?,
        ))),
        Some((_, digits)) if digits.parse::<u16>().is_err() => {
            Err(bad("the port must be a number from 0 to 65535"))
        }
        Some(_) => Err(bad(
            "the host must be an IP address (127.0.0.1, [::1]) or localhost",
        )),
        None => Err(bad(
            "expected PORT, HOST:PORT, [IPv6]:PORT or unix:/absolute/path",
        )),
    }
}

/// One bound, listening socket.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    /// The address as bound (the real port when 0 was asked).
    address: Address,
    /// A Unix socket file's device and inode, so that only our own file is removed.
    file: Option<(u64, u64)>,
}

impl Listener {
    /// Binds and listens on `address`.
    fn bind(address: &Address) -> Result<Listener, Error> {
        let failed = |source: std::io::Error| Error::Listen {
            address: address.to_string(),
            source,
        };
        match address {
            Address::Tcp(socket) => {
                let family = match socket {
                    SocketAddr::V4(_) => AddressFamily::INET,
                    SocketAddr::V6(_) => AddressFamily::INET6,
                };
                let fd = rustix::net::socket_with(
                    family,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .map_err(|e| failed(e.into()))?;
                // As servers do: a port whose previous owner left connections in
                // TIME_WAIT can be bound again at once.
                rustix::net::sockopt::set_socket_reuseaddr(&fd, true)
                    .map_err(|e| failed(e.into()))?;
                rustix::net::bind(&fd, socket).map_err(|e| failed(e.into()))?;
                rustix::net::listen(&fd, BACKLOG).map_err(|e| failed(e.into()))?;
                let listener = std::net::TcpListener::from(fd);
                let bound = listener.local_addr().map_err(failed)?;
                Ok(Listener {
                    fd: listener.into(),
                    address: Address::Tcp(bound),
                    file: None,
                })
            }
            Address::Unix(path) => {
                clear_stale_socket(path).map_err(|reason| Error::Listen {
                    address: address.to_string(),
                    source: reason,
                })?;
                let unix = SocketAddrUnix::new(path.as_path()).map_err(|_| {
                    failed(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "the path is too long for a unix socket (at most 107 bytes)",
                    ))
                })?;
                let fd = rustix::net::socket_with(
                    AddressFamily::UNIX,
                    SocketType::STREAM,
                    SocketFlags::CLOEXEC,
                    None,
                )
                .map_err(|e| failed(e.into()))?;
                rustix::net::bind(&fd, &unix).map_err(|e| failed(e.into()))?;
                let file = std::fs::symlink_metadata(path)
                    .ok()
                    .map(|meta| (meta.dev(), meta.ino()));
                let listener = Listener {
                    fd,
                    address: address.clone(),
                    file,
                };
                // Dropped on failure, which removes the file just made.
                rustix::net::listen(&listener.fd, BACKLOG).map_err(|e| failed(e.into()))?;
                Ok(listener)
            }
        }
    }

    /// The daemon's descriptor (close-on-exec).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

/// Makes way for a Unix socket at `path`: nothing there, or a socket file nobody listens
/// on (left by a daemon that died), which is removed. A live socket is in use; any other
/// file is not ours to replace.
fn clear_stale_socket(path: &Path) -> Result<(), std::io::Error> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the file exists and is not a socket, and velos does not replace it (remove it, \
             or choose another path)",
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
    }
    std::fs::remove_file(path)
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only the file this socket made: another program may have put its own there since.
        if let (Address::Unix(path), Some(made)) = (&self.address, self.file)
            && let Ok(meta) = std::fs::symlink_metadata(path)
            && (meta.dev(), meta.ino()) == made
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The sockets of one app, in the order asked, shared by all its runs.
#[derive(Debug)]
pub struct Listeners {
    sockets: Vec<Listener>,
    /// The name each descriptor gets in `LISTEN_FDNAMES`: the app's, as systemd names
    /// descriptors after their socket unit.
    name: String,
}

impl Listeners {
    /// Binds every address of `texts` for the app `name`; nothing when `texts` is empty.
    /// On any failure, those already bound are closed again.
    pub fn bind(name: &str, texts: &[String]) -> Result<Option<Arc<Listeners>>, Error> {
        if texts.is_empty() {
            return Ok(None);
        }
        if texts.len() > MAX_LISTENERS {
            return Err(Error::TooManyListeners(texts.len()));
        }
        let addresses = texts
            .iter()
            .map(|text| parse(text))
            .collect::<Result<Vec<Address>, Error>>()?;
        let sockets = addresses
            .iter()
            .map(Listener::bind)
            .collect::<Result<Vec<Listener>, Error>>()?;
        Ok(Some(Arc::new(Listeners {
            sockets,
            name: name.to_owned(),
        })))
    }

    /// The sockets, in order: descriptor 3 first.
    pub fn sockets(&self) -> &[Listener] {
        &self.sockets
    }

    /// The bound addresses as `info` shows them and a saved list keeps them.
    pub fn addresses(&self) -> Vec<String> {
        self.sockets
            .iter()
            .map(|socket| socket.address.to_string())
            .collect()
    }

    /// The socket-activation variables a run gets, except `LISTEN_PID` (which only the
    /// run itself knows): `LISTEN_FDS`, `LISTEN_FDNAMES`, and `PORT` when there is exactly
    /// one TCP listener.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut variables = vec![
            ("LISTEN_FDS".to_owned(), self.sockets.len().to_string()),
            (
                "LISTEN_FDNAMES".to_owned(),
                vec![self.name.as_str(); self.sockets.len()].join(":"),
            ),
        ];
        let mut tcp = self
            .sockets
            .iter()
            .filter_map(|socket| match socket.address {
                Address::Tcp(address) => Some(address.port()),
                Address::Unix(_) => None,
            });
        if let (Some(port), None) = (tcp.next(), tcp.next()) {
            variables.push(("PORT".to_owned(), port.to_string()));
        }
        variables
    }
}

/// The variables of the socket-activation protocol, which a run gets only from velos
/// (never from the daemon's or the caller's environment).
pub const VARIABLES: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Keeps descriptors 3 to 3 + [`MAX_LISTENERS`] taken (by `/dev/null`, close-on-exec) for
/// the daemon's whole life, so that no descriptor the daemon opens later gets one of those
/// numbers. A run's sockets are moved there between fork and exec; were the pipe on which
/// the standard library reports a failed exec among them, that report would be lost.
/// Called once, at start-up, before anything else is opened.
pub fn reserve_descriptors() {
    let Ok(null) = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    let last = FIRST_FD + RawFd::try_from(MAX_LISTENERS).unwrap_or(16);
    let mut kept = Vec::new();
    for _ in FIRST_FD..last {
        // The lowest free number at or above 3: one of ours while any is free.
        match rustix::io::fcntl_dupfd_cloexec(&null, FIRST_FD) {
            Ok(fd) if fd.as_raw_fd() < last => kept.push(fd),
            _ => break,
        }
    }
    // Held for the daemon's life. If `null` itself is in the range, it stays open too.
    if null.as_raw_fd() < last {
        kept.push(null);
    }
    std::mem::forget(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_documented() {
        let tcp = |text: &str| match parse(text) {
            Ok(Address::Tcp(address)) => address.to_string(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(tcp("8080"), "0.0.0.0:8080");
        assert_eq!(tcp("0"), "0.0.0.0:0");
        assert_eq!(tcp("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(tcp("localhost:3000"), "127.0.0.1:3000");
        assert_eq!(tcp("[::]:80"), "[::]:80");
        assert_eq!(tcp("[::1]:9000"), "[::1]:9000");
        assert_eq!(
            parse("unix:/run/app.sock").unwrap(),
            Address::Unix("/run/app.sock".into())
        );
        for bad in [
            "",
            "70000",
            "127.0.0.1:70000",
            "example.com:80",
            "unix:",
            "unix:relative.sock",
            "nonsense",
            "127.0.0.1",
        ] {
            let error = parse(bad).expect_err(bad).to_string();
            assert!(error.starts_with("bad listen address"), "{error}");
            assert!(!error.contains('\n'));
        }
    }

    #[test]
    fn one_tcp_listener_gives_port_and_names_follow_the_app() {
        let listeners = Listeners::bind("web", &["127.0.0.1:0".to_owned()])
            .unwrap()
            .unwrap();
        let bound = listeners.addresses()[0].parse::<SocketAddr>().unwrap();
        let port = bound.port();
        assert_ne!(port, 0, "the real port is reported");
        let variables = listeners.variables();
        assert_eq!(
            variables,
            [
                ("LISTEN_FDS".to_owned(), "1".to_owned()),
                ("LISTEN_FDNAMES".to_owned(), "web".to_owned()),
                ("PORT".to_owned(), port.to_string()),
            ]
        );
        let two = Listeners::bind("web", &["127.0.0.1:0".to_owned(), "127.0.0.1:0".to_owned()])
            .unwrap()
            .unwrap();
        let names: Vec<String> = two.variables().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["LISTEN_FDS", "LISTEN_FDNAMES"], "no PORT with two");
        // IPv6 loopback, where the machine has it.
        match Listeners::bind("web", &["[::1]:0".to_owned()]) {
            Ok(six) => {
                let address = six.unwrap().addresses().remove(0);
                assert!(
                    address.starts_with("[::1]:") && !address.ends_with(":0"),
                    "{address}"
                );
            }
            Err(error) => assert!(
                error.to_string().contains("no interface")
                    || error.to_string().contains("not supported"),
                "IPv6 loopback missing is the only excuse: {error}"
            ),
        }
    }

    #[test]
    fn a_taken_port_fails_and_unix_files_are_ours_only() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap().to_string();
        let error = Listeners::bind("web", std::slice::from_ref(&address)).unwrap_err();
        assert!(
            error.to_string().contains("address already in use"),
            "{error}"
        );

        let dir = std::env::temp_dir().join(format!("velosd-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, "keep me").unwrap();
        let error = Listeners::bind("web", &[format!("unix:{}", plain.display())]).unwrap_err();
        assert!(error.to_string().contains("not a socket"), "{error}");
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");

        let socket = dir.join("s.sock");
        let listeners = Listeners::bind("web", &[format!("unix:{}", socket.display())])
            .unwrap()
            .unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
        let again = Listeners::bind("other", &[format!("unix:{}", socket.display())]);
        assert!(again.is_err(), "a live socket is in use");
        drop(listeners);
        assert!(!socket.exists(), "the socket file goes with the app");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
