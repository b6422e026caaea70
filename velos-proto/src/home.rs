//! The velos home directory and every path in it, plus the rules for process names.
//!
//! ```text
//! $VELOS_HOME (or ~/.velos), mode 0700
//! ├── velos.sock            the daemon's socket (0600)
//! ├── velos.pid             the daemon's pid; also its lock (flock)
//! ├── velosd.log            the daemon's own stdout and stderr
//! ├── state.msgpack         the process list, rewritten on every change
//! ├── dump.msgpack          the list `velos save` wrote, for `velos resurrect`
//! └── logs/<name>-out.log   each process's stdout (and -err.log for stderr)
//! ```
//!
//! Client and daemon both use this module, so they always agree on where things are.
//! It computes paths only; creating them is the daemon's job.

use std::path::{Path, PathBuf};

use crate::Stream;

/// The environment variable that overrides the home directory.
pub const HOME_ENV: &str = "VELOS_HOME";

/// The longest process name.
pub const MAX_NAME_LEN: usize = 64;

/// The velos home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

/// Why a home directory could not be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot find the home directory: set VELOS_HOME to the directory velos should use")]
pub struct NoHomeError;

impl Home {
    /// `$VELOS_HOME` if set and not empty, else `~/.velos`.
    pub fn from_env() -> Result<Home, NoHomeError> {
        match std::env::var_os(HOME_ENV) {
            Some(root) if !root.is_empty() => Ok(Home::at(root)),
            _ => dirs::home_dir()
                .map(|home| Home::at(home.join(".velos")))
                .ok_or(NoHomeError),
        }
    }

    /// A home at the given directory.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `velos.sock`
    pub fn socket_path(&self) -> PathBuf {
        self.root.join("velos.sock")
    }

    /// `velos.pid`
    pub fn pid_path(&self) -> PathBuf {
        self.root.join("velos.pid")
    }

    /// `velosd.log`
    pub fn daemon_log_path(&self) -> PathBuf {
        self.root.join("velosd.log")
    }

    /// `state.msgpack`: the current process list, kept by the daemon.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.msgpack")
    }

    /// `dump.msgpack`: the process list `velos save` wrote.
    pub fn dump_path(&self) -> PathBuf {
        self.root.join("dump.msgpack")
    }

    /// `metrics.listen`: the address the daemon serves Prometheus metrics on, while
    /// `velos metrics enable` is in force (no file: metrics off).
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.listen")
    }

    /// `logs/`
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// `logs/<name>-out.log` or `logs/<name>-err.log`.
    ///
    /// `name` must have passed [`validate_name`], which is what keeps the path inside
    /// `logs/`: a valid name has no `/` and does not start with `.`.
    pub fn log_path(&self, name: &str, stream: Stream) -> PathBuf {
        self.logs_dir()
            .join(format!("{name}-{}.log", stream.as_str()))
    }

    /// The log of instance `instance` of the app `name`: instance 0's is
    /// [`Home::log_path`], instance K's `logs/<name>-out-K.log` (`-err-K.log`). No other
    /// app's file has such a name: a name's own files end in `-out.log`, and the digits
    /// after the last `-out-` are the instance.
    pub fn instance_log_path(&self, name: &str, instance: u32, stream: Stream) -> PathBuf {
        if instance == 0 {
            return self.log_path(name, stream);
        }
        self.logs_dir()
            .join(format!("{name}-{}-{instance}.log", stream.as_str()))
    }
}

/// The longest socket path a Unix socket address holds: `sun_path` is 108 bytes on Linux
/// (104 on macOS and the BSDs), one of them the terminating NUL.
pub const MAX_SOCKET_PATH_BYTES: usize = if cfg!(any(target_os = "linux", target_os = "android")) {
    107
} else {
    103
};

/// A socket path longer than [`MAX_SOCKET_PATH_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the socket path {} is {len} bytes, over the {max}-byte limit of Unix socket addresses: set VELOS_HOME to a shorter directory",
    path.display()
)]
pub struct SocketPathTooLong {
    /// The path.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: usize,
    /// [`MAX_SOCKET_PATH_BYTES`].
    pub max: usize,
}

/// Checks that `socket` fits in a Unix socket address.
///
/// # Examples
/// ```
/// use velos_proto::home::check_socket_path;
/// assert!(check_socket_path(std::path::Path::new("/home/me/.velos/velos.sock")).is_ok());
/// let long = format!("/{}/velos.sock", "x".repeat(120));
/// assert!(check_socket_path(std::path::Path::new(&long)).is_err());
/// ```
pub fn check_socket_path(socket: &Path) -> Result<(), SocketPathTooLong> {
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH_BYTES {
        return Err(SocketPathTooLong {
            path: socket.to_owned(),
            len,
            max: MAX_SOCKET_PATH_BYTES,
        });
    }
    Ok(())
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("a process name cannot be empty")]
    Empty,
    /// Over [`MAX_NAME_LEN`].
    #[error("process name '{0}' is longer than 64 characters")]
    TooLong(String),
    /// A character outside `A-Z a-z 0-9 . _ -`.
    #[error("process name '{0}' may only use letters, digits, '.', '_' and '-'")]
    BadCharacter(String),
    /// Starts with `.` or `-`.
    #[error("process name '{0}' cannot start with '.' or '-'")]
    BadStart(String),
    /// All digits, which would read as an id.
    #[error("process name '{0}' is all digits, which reads as an id; add a letter")]
    AllDigits(String),
    /// `all`, which means every process.
    #[error("'all' means every process and cannot be a process name")]
    Reserved,
    /// Ends in a config file's extension (`app.toml`), which the CLI reads as a file.
    #[error(
        "process name '{0}' ends like a config file ({1}), which 'velos stop {0}' would read as one; choose another name"
    )]
    ConfigExtension(String, &'static str),
}

/// The extensions of config files (velos.toml and PM2's ecosystem files), which the CLI
/// reads as a file wherever a process name could stand: no name may end in one.
pub const CONFIG_EXTENSIONS: [&str; 6] = [".toml", ".json", ".js", ".cjs", ".yaml", ".yml"];

/// The config extension `text` ends in (any case), if any.
///
/// # Examples
/// ```
/// use velos_proto::home::config_extension;
/// assert_eq!(config_extension("velos.toml"), Some(".toml"));
/// assert_eq!(config_extension("ecosystem.config.JS"), Some(".js"));
/// assert_eq!(config_extension("api"), None);
/// ```
pub fn config_extension(text: &str) -> Option<&'static str> {
    CONFIG_EXTENSIONS.into_iter().find(|extension| {
        text.len() >= extension.len()
            && text.as_bytes()[text.len() - extension.len()..]
                .eq_ignore_ascii_case(extension.as_bytes())
    })
}

/// Checks a process name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with
/// `.` or `-`, not all digits, not `all`, and not ending in a config file's extension
/// ([`CONFIG_EXTENSIONS`]).
///
/// # Examples
/// ```
/// use velos_proto::home::validate_name;
/// assert!(validate_name("api-v2.worker_1").is_ok());
/// assert!(validate_name("../etc").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let quoted = || crate::echo(name).into_owned();
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > MAX_NAME_LEN {
        Err(NameError::TooLong(quoted()))
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err(NameError::BadCharacter(quoted()))
    } else if name.starts_with(['.', '-']) {
        Err(NameError::BadStart(quoted()))
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        Err(NameError::AllDigits(quoted()))
    } else if name == "all" {
        Err(NameError::Reserved)
    } else if let Some(extension) = config_extension(name) {
        Err(NameError::ConfigExtension(quoted(), extension))
    } else {
        Ok(())
    }
}

/// The name a script gets when none is given: its file stem (`app.js` -> `app`).
pub fn default_name(script: &Path) -> Option<String> {
    script
        .file_stem()
        .and_then(|stem| stem.to_str())
        .map(str::to_owned)
}

/// Why [`process_name`] found no name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessNameError {
    /// The name given breaks the rules.
    #[error("{0}")]
    Given(#[from] NameError),
    /// No name was given, and the script's file stem breaks the rules.
    #[error(
        "cannot use '{}' from the script's file name as a process name ({reason})",
        crate::echo(.stem)
    )]
    Default {
        /// The file stem.
        stem: String,
        /// Why it is not a valid name.
        reason: NameError,
    },
}

/// The name of a process started from `script`: `given`, or else the script's file stem
/// ([`default_name`]), checked against the rules ([`validate_name`]). The one naming
/// rule, which the CLI applies before it asks and the daemon when a request has no name.
///
/// # Examples
/// ```
/// use std::path::Path;
/// use velos_proto::home::process_name;
/// assert_eq!(process_name(None, Path::new("/srv/app.js")).unwrap(), "app");
/// assert_eq!(process_name(Some("api"), Path::new("/srv/app.js")).unwrap(), "api");
/// assert!(process_name(None, Path::new("/srv/123.js")).is_err());
/// ```
pub fn process_name(given: Option<&str>, script: &Path) -> Result<String, ProcessNameError> {
    match given {
        Some(name) => {
            validate_name(name)?;
            Ok(name.to_owned())
        }
        None => {
            let stem = default_name(script).unwrap_or_default();
            match validate_name(&stem) {
                Ok(()) => Ok(stem),
                Err(reason) => Err(ProcessNameError::Default { stem, reason }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass() {
        for name in ["app", "a", "api-v2", "worker_1.prod", "A9", &"x".repeat(64)] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_name(&"x".repeat(65)),
            Err(NameError::TooLong(_))
        ));
        for name in ["a/b", "../x", "a b", "é", "a\0", "x;rm"] {
            assert!(
                matches!(validate_name(name), Err(NameError::BadCharacter(_))),
                "{name}"
            );
        }
        for name in [".hidden", "..", "-rf"] {
            assert!(
                matches!(validate_name(name), Err(NameError::BadStart(_))),
                "{name}"
            );
        }
        assert!(matches!(validate_name("123"), Err(NameError::AllDigits(_))));
        assert_eq!(validate_name("all"), Err(NameError::Reserved));
        for name in [
            "app.toml",
            "web.json",
            "eco.config.js",
            "x.cjs",
            "a.yaml",
            "b.YML",
        ] {
            assert!(
                matches!(validate_name(name), Err(NameError::ConfigExtension(..))),
                "{name}"
            );
        }
        for name in ["socket.io", "app.mjs", "json", "toml-sync", "app.jsx"] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn log_paths_of_valid_names_stay_in_logs() {
        let home = Home::at("/h");
        assert_eq!(
            home.log_path("api", Stream::Err),
            PathBuf::from("/h/logs/api-err.log")
        );
        assert_eq!(
            home.instance_log_path("api", 0, Stream::Out),
            PathBuf::from("/h/logs/api-out.log")
        );
        assert_eq!(
            home.instance_log_path("api", 3, Stream::Out),
            PathBuf::from("/h/logs/api-out-3.log")
        );
    }

    #[test]
    fn default_name_is_the_file_stem() {
        assert_eq!(default_name(Path::new("/x/app.js")).as_deref(), Some("app"));
        assert_eq!(default_name(Path::new("run")).as_deref(), Some("run"));
    }

    #[test]
    fn a_process_is_named_as_given_or_after_its_script() {
        assert_eq!(process_name(None, Path::new("/x/app.js")).unwrap(), "app");
        assert_eq!(
            process_name(Some("web"), Path::new("/x/app.js")).unwrap(),
            "web"
        );
        assert_eq!(
            process_name(Some("all"), Path::new("/x/app.js")),
            Err(ProcessNameError::Given(NameError::Reserved))
        );
        assert_eq!(
            process_name(None, Path::new("/x/123.js"))
                .unwrap_err()
                .to_string(),
            "cannot use '123' from the script's file name as a process name (process name \
             '123' is all digits, which reads as an id; add a letter)"
        );
    }
}
