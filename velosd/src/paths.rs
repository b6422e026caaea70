//! The home directory, its `logs/` folder and every file the daemon opens in them:
//! private to the user, and never someone else's.
//!
//! Which paths exist is decided in `velos_proto::home`, shared with the clients; this
//! module creates the directories (0700) and opens the files. A home is only safe to use
//! if nobody else could have put anything in it: root running velos with a `VELOS_HOME`
//! owned by another user would otherwise append to, overwrite or run whatever that user
//! planted there. So:
//!
//! - the home and `logs/` must belong to the daemon's uid and not be writable by group
//!   or others; a looser but safe mode (0755) is tightened to 0700 through the
//!   descriptor;
//! - every file is opened with `O_NOFOLLOW` (a symbolic link is refused, not followed)
//!   and `O_NONBLOCK` (a FIFO cannot hang the daemon), then checked with `fstat`: a
//!   regular file, of our uid, not writable by group or others. Its mode is set with
//!   `fchmod`, never by path;
//! - a temporary file is created fresh (`O_EXCL`), never truncated in place.
//!
//! Log file paths cannot leave `logs/`: they are built from names that passed
//! `validate_name`, which allows no `/` and no leading `.`.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use rustix::fs::{FileType, Mode, OFlags};
use velos_proto::Home;

/// Creates the home and `logs/` (0700), or checks existing ones and makes them 0700.
/// Refuses a home whose socket path is too long for a Unix socket address.
pub fn create_home(home: &Home) -> anyhow::Result<()> {
    velos_proto::home::check_socket_path(&home.socket_path())?;
    create_private_dir(home.root(), true)?;
    check_parents(home.root())?;
    create_private_dir(&home.logs_dir(), false)
}

/// Checks every directory above the home, as written and as resolved (`OpenSSH`'s
/// `StrictModes` does the same for `authorized_keys`): each must belong to root or to
/// us, and one that others may write must have the sticky bit (like `/tmp`). Otherwise
/// the user it belongs to (or anyone, for a writable one) could rename the checked home
/// away and put one of their own in its place while the daemon runs.
fn check_parents(root: &Path) -> anyhow::Result<()> {
    let resolved = std::fs::canonicalize(root)
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let ours = rustix::process::geteuid().as_raw();
    for path in [root, resolved.as_path()] {
        for parent in path.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                continue;
            }
            let stat = rustix::fs::stat(parent)
                .with_context(|| format!("cannot use {}", parent.display()))?;
            let mode = stat.st_mode & 0o7777;
            if stat.st_uid != ours && stat.st_uid != 0 {
                let trusted = if ours == 0 {
                    "root".to_owned()
                } else {
                    format!("root or {} that velos runs as", uid_label(ours))
                };
                anyhow::bail!(
                    "{}, a parent of {}, belongs to {}, not to {trusted}, so that user could put a home of their own in its place: \
                     use a directory whose parents belong to you or root (set VELOS_HOME)",
                    parent.display(),
                    root.display(),
                    uid_label(stat.st_uid),
                );
            }
            if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                anyhow::bail!(
                    "{}, a parent of {}, is writable by group or others (mode {mode:o}) without the sticky bit, so anyone could put a home of their own in its place: \
                     use another directory (set VELOS_HOME), or 'chmod go-w {}'",
                    parent.display(),
                    root.display(),
                    parent.display()
                );
            }
        }
    }
    Ok(())
}

/// `follow`: the home itself may be a link (`~/.velos -> /data/velos`), checked where it
/// leads; `logs/` may not.
fn create_private_dir(path: &Path, follow: bool) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let dir = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|errno| opening_error(errno, "a directory"))
        .with_context(|| format!("cannot use {}", path.display()))?;
    let stat = rustix::fs::fstat(&dir).with_context(|| format!("cannot use {}", path.display()))?;
    let ours = rustix::process::geteuid().as_raw();
    if stat.st_uid != ours {
        anyhow::bail!(
            "{} belongs to {}, not to {} that velos runs as, and using it would let that user act as you: \
             use a directory of your own (set VELOS_HOME), or run velos as that user",
            path.display(),
            uid_label(stat.st_uid),
            uid_label(ours)
        );
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        anyhow::bail!(
            "{} is writable by group or others (mode {mode:o}), so anyone could have planted files in it: \
             check its contents, then 'chmod 700 {}'",
            path.display(),
            path.display()
        );
    }
    if mode != 0o700 {
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700))
            .with_context(|| format!("cannot make {} private (0700)", path.display()))?;
    }
    Ok(())
}

/// Opens the file at `path` in the home as `options` say (create, append, ...), adding
/// `O_NOFOLLOW`, `O_NONBLOCK` and `O_CLOEXEC` and creating it 0600; then checks it (see
/// the module docs) and makes it 0600 if its mode lets others read it. The descriptor
/// is returned blocking again.
pub fn open_in_home(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32)
        .mode(0o600)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(raw) => opening_error(rustix::io::Errno::from_raw_os_error(raw), "a regular file"),
            None => error,
        })?;
    check_file(&file)?;
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(file)
}

/// Creates `path` afresh for writing (0600): whatever is at that name (a leftover, a
/// link, a FIFO) is removed first, and the new file is created with `O_EXCL`, so nothing
/// planted there can be written through.
pub fn create_fresh_in_home(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    open_in_home(path, OpenOptions::new().write(true).create_new(true))
}

/// Sets the socket at `path` to 0600 without following a link: through an `O_PATH`
/// descriptor of the socket itself (Linux; elsewhere by path, in the home checked above;
/// see `platform`).
pub fn make_socket_private(path: &Path) -> io::Result<()> {
    crate::platform::set_socket_mode(path, 0o600)
}

/// Checks an open file of the home: regular, ours, not writable by group or others;
/// tightens a mode others could read.
fn check_file(file: &File) -> io::Result<()> {
    let stat = rustix::fs::fstat(file)?;
    let kind = FileType::from_raw_mode(stat.st_mode);
    if kind != FileType::RegularFile {
        return Err(refused(format!(
            "it is {}, not a regular file: remove it",
            kind_name(kind)
        )));
    }
    let ours = rustix::process::geteuid().as_raw();
    if stat.st_uid != ours {
        return Err(refused(format!(
            "it belongs to {}, not to {} that velos runs as: remove it (velos uses only its own user's files)",
            uid_label(stat.st_uid),
            uid_label(ours)
        )));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(format!(
            "it is writable by group or others (mode {mode:o}): check it, then remove it or 'chmod 600' it"
        )));
    }
    if mode != 0o600 {
        rustix::fs::fchmod(file, Mode::from_raw_mode(0o600))?;
    }
    Ok(())
}

/// The error for a failed open, in words for the cases this module causes itself.
fn opening_error(errno: rustix::io::Errno, wanted: &str) -> io::Error {
    match errno {
        // O_NOFOLLOW on a link.
        rustix::io::Errno::LOOP => refused(format!(
            "it is a symbolic link, and velos follows no links in its home: remove it and use {wanted}"
        )),
        // A FIFO with no reader, opened for writing without blocking.
        rustix::io::Errno::NXIO => {
            refused(format!("it is a FIFO or device, not {wanted}: remove it"))
        }
        rustix::io::Errno::NOTDIR => refused(format!("it is not {wanted}: remove it")),
        other => other.into(),
    }
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Refused(message))
}

/// A file velos will not use (see the module docs), as opposed to one it could not open.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Whether `error` is this module refusing a file (a link, a FIFO, another user's).
pub fn is_refused(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Refused>())
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "something else",
    }
}

/// `uid 1000 (app)`, or `uid 1000` when `/etc/passwd` does not name it.
fn uid_label(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        });
    match name {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("velosd-paths-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn home_and_logs_are_private() {
        let root = temp_dir("private");
        std::fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        let home = Home::at(&root);
        create_home(&home).unwrap();
        for dir in [home.root().to_owned(), home.logs_dir()] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_home_others_can_write_is_refused() {
        let root = temp_dir("writable");
        std::fs::set_permissions(&root, Permissions::from_mode(0o777)).unwrap();
        let error = create_home(&Home::at(&root)).unwrap_err().to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_home_in_a_directory_anyone_may_write_needs_the_sticky_bit() {
        let parent = temp_dir("parent");
        let home = Home::at(parent.join("home"));
        std::fs::set_permissions(&parent, Permissions::from_mode(0o777)).unwrap();
        let error = create_home(&home).unwrap_err().to_string();
        assert!(error.contains("without the sticky bit"), "{error}");
        std::fs::set_permissions(&parent, Permissions::from_mode(0o1777)).unwrap();
        create_home(&home).unwrap();
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn links_fifos_and_loose_files_are_refused_and_modes_tightened() {
        let root = temp_dir("files");
        let target = root.join("target");
        std::fs::write(&target, "secret").unwrap();
        let link = root.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let append = || OpenOptions::new().create(true).append(true).clone();
        let error = open_in_home(&link, &mut append()).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");

        let fifo = root.join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let error = open_in_home(&fifo, &mut append()).unwrap_err().to_string();
        assert!(error.contains("FIFO"), "{error}");
        let error = open_in_home(&fifo, OpenOptions::new().read(true))
            .unwrap_err()
            .to_string();
        assert!(error.contains("FIFO"), "{error}");

        std::fs::set_permissions(&target, Permissions::from_mode(0o666)).unwrap();
        let error = open_in_home(&target, OpenOptions::new().read(true))
            .unwrap_err()
            .to_string();
        assert!(error.contains("writable by group or others"), "{error}");
        std::fs::set_permissions(&target, Permissions::from_mode(0o644)).unwrap();
        open_in_home(&target, OpenOptions::new().read(true)).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // A fresh file replaces the link rather than writing through it.
        let mut file = create_fresh_in_home(&link).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
