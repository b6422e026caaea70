//! A start request as `velos start` makes it: [`StartParams::new`], and the script
//! resolution it shares with the CLI ([`resolve_script`]).
//!
//! The daemon reads every path in a request as given and runs the process with what the
//! request says, so a request with no environment or working directory gets the daemon's.
//! A client acting for a person wants the CLI's behaviour instead: the script relative to
//! the caller's working directory, checked before anything is sent; the caller's
//! environment and working directory remembered for restarts. That is what
//! [`StartParams::new`] gives, with the CLI's own code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::StartParams;

/// Why a script cannot be started, found before the daemon is asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// Nothing exists at the path.
    #[error(
        "script '{}' not found (looked at {})",
        crate::echo(script),
        crate::echo(&looked_at.to_string_lossy())
    )]
    NotFound {
        /// The path as given.
        script: String,
        /// The absolute path that was looked at.
        looked_at: PathBuf,
    },
    /// A bare program name (no `/`) that is neither a file in the directory nor an
    /// executable on `PATH`.
    #[error(
        "script '{}' not found (looked at {} and on PATH)",
        crate::echo(script),
        crate::echo(&looked_at.to_string_lossy())
    )]
    NotOnPath {
        /// The name as given.
        script: String,
        /// The absolute path that was looked at first.
        looked_at: PathBuf,
    },
    /// The path names a directory.
    #[error("script '{}' is a directory, not a file to run", crate::echo(script))]
    IsDirectory {
        /// The path as given.
        script: String,
    },
    /// The path could not be checked (permission denied, a loop, ...).
    #[error("cannot read {}: {source}", crate::echo(&path.to_string_lossy()))]
    Unreadable {
        /// The absolute path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A path that cannot travel in a request (which holds UTF-8 strings).
    #[error("the {what} {} is not valid UTF-8", crate::echo(&path.to_string_lossy()))]
    NotUtf8 {
        /// Which path: `script path`, `working directory`.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The caller's working directory is unknown (deleted, or unreadable).
    #[error("cannot read the current directory: {0}")]
    NoCurrentDir(std::io::Error),
}

impl StartParams {
    /// A request to start `script` as `velos start` would: the path resolved against the
    /// caller's working directory (lexically; symlinks are kept as typed) and checked to
    /// name a file, or a bare program name looked up on `PATH` ([`find_program`]), the
    /// caller's whole environment (variables that are not UTF-8 are left
    /// out), and the caller's working directory. The daemon remembers both for restarts.
    /// Every other field keeps its default; set them on the result.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn example() -> Result<(), velos_proto::ScriptError> {
    /// let mut params = velos_proto::StartParams::new("server.js")?;
    /// params.name = Some("api".into());
    /// params.args = vec!["--port".into(), "8080".into()];
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(script: impl AsRef<Path>) -> Result<StartParams, ScriptError> {
        let cwd = std::env::current_dir().map_err(ScriptError::NoCurrentDir)?;
        let script = find_program(script.as_ref(), &cwd, std::env::var_os("PATH").as_deref())?;
        Ok(StartParams {
            script: utf8(&script, "script path")?,
            cwd: Some(utf8(&cwd, "working directory")?),
            env: Some(current_env()),
            ..StartParams::default()
        })
    }
}

/// `script` as an absolute path against `cwd`, which must exist and not be a directory.
/// Lexical only (no symlinks resolved): the user's path is the one to remember.
pub fn resolve_script(script: &Path, cwd: &Path) -> Result<PathBuf, ScriptError> {
    let shown = script.to_string_lossy().into_owned();
    let path = std::path::absolute(cwd.join(script)).map_err(|source| ScriptError::Unreadable {
        path: cwd.join(script),
        source,
    })?;
    match path.metadata() {
        Ok(meta) if meta.is_dir() => Err(ScriptError::IsDirectory { script: shown }),
        Ok(_) => Ok(path),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(ScriptError::NotFound {
            script: shown,
            looked_at: path,
        }),
        Err(source) => Err(ScriptError::Unreadable { path, source }),
    }
}

/// `script` as [`resolve_script`] finds it, or else, when it is a bare name (no `/`) that
/// is not a file in `cwd`, the first executable of that name in the directories of `path`
/// (a `PATH` value), as PM2 and a shell do (`npm`, `redis-server`).
pub fn find_program(
    script: &Path,
    cwd: &Path,
    path: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ScriptError> {
    match resolve_script(script, cwd) {
        Err(ScriptError::NotFound {
            script: shown,
            looked_at,
        }) => {
            let bare = script.components().count() == 1
                && !script.as_os_str().as_encoded_bytes().contains(&b'/');
            let found = path
                .filter(|_| bare)
                .into_iter()
                .flat_map(std::env::split_paths)
                // An empty entry means the current directory, which was looked at.
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join(script))
                .find(|candidate| is_executable_file(candidate));
            match (found, bare) {
                (Some(found), _) => Ok(found),
                (None, true) => Err(ScriptError::NotOnPath {
                    script: shown,
                    looked_at,
                }),
                (None, false) => Err(ScriptError::NotFound {
                    script: shown,
                    looked_at,
                }),
            }
        }
        other => other,
    }
}

/// A file (after links) with an executable bit.
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `path` as a string for a request.
pub fn utf8(path: &Path, what: &'static str) -> Result<String, ScriptError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ScriptError::NotUtf8 {
            what,
            path: path.to_path_buf(),
        })
}

/// This process's environment. Variables that are not UTF-8 cannot travel in a request
/// and are left out.
pub fn current_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("velos-proto-script-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("app.js"), "").unwrap();
        dir
    }

    #[test]
    fn scripts_resolve_against_the_directory_and_must_be_files() {
        let dir = project();
        let found = resolve_script(Path::new("../app.js"), &dir.join("sub")).unwrap();
        assert!(found.is_absolute());
        assert_eq!(
            found,
            std::path::absolute(dir.join("sub/../app.js")).unwrap()
        );
        let err = resolve_script(Path::new("x.js"), &dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "script 'x.js' not found (looked at {})",
                dir.join("x.js").display()
            )
        );
        let err = resolve_script(Path::new("sub"), &dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "script 'sub' is a directory, not a file to run"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bare_names_are_looked_up_on_path_after_the_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("velos-proto-path-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("app.js"), "").unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("tool"), "").unwrap();
        std::fs::write(bin.join("plain"), "").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent", bin.to_str().unwrap()]).unwrap();
        let path = Some(path.as_os_str());
        let sub = dir.join("sub");
        assert_eq!(
            find_program(Path::new("tool"), &sub, path).unwrap(),
            bin.join("tool")
        );
        // A file in the directory wins over PATH.
        assert_eq!(
            find_program(Path::new("app.js"), &dir, path).unwrap(),
            dir.join("app.js")
        );
        let err = find_program(Path::new("plain"), &sub, path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "script 'plain' not found (looked at {} and on PATH)",
                sub.join("plain").display()
            )
        );
        // A path with a slash is never looked up.
        let err = find_program(Path::new("./tool"), &sub, path).unwrap_err();
        assert!(matches!(err, ScriptError::NotFound { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn new_takes_the_callers_environment_and_directory() {
        let cwd = std::env::current_dir().unwrap();
        let here = std::fs::read_dir(&cwd)
            .unwrap()
            .filter_map(Result::ok)
            .find(|entry| entry.path().is_file())
            .expect("a file in the crate directory");
        let params = StartParams::new(here.file_name()).unwrap();
        assert_eq!(Path::new(&params.script), cwd.join(here.file_name()));
        assert_eq!(params.cwd.as_deref(), cwd.to_str());
        assert_eq!(params.env, Some(current_env()));
        assert!(StartParams::new("no-such-script.js").is_err());
    }
}
