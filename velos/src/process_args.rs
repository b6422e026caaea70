//! One process as the user described it, and the one way from there to a [`StartParams`].
//!
//! Two steps, like ripgrep's low-level and high-level arguments. Parsing gives a
//! [`ProcessArgs`]: the command line (`cli::StartArgs`) and every config-file entry
//! (`config`) are read into one, with values already typed and within their ranges, paths
//! still as written. [`ProcessArgs::resolve`] then does the I/O, once, for both: the
//! script and the working directory resolved against a directory and checked, the name
//! chosen by velos-proto's rule ([`process_name`]), the environment put together, every
//! duration in the request's milliseconds, every path in its UTF-8 strings.
//!
//! A failure says which field it is about ([`Field`]), so that a config file can name the
//! line the value is on, and the command line the flag.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use velos_proto::home::{ProcessNameError, process_name};
use velos_proto::script::{find_program, utf8};
use velos_proto::{RestartMode, StartParams, echo};

/// One process to start, as parsed: typed values, paths as written.
#[derive(Clone, Default)]
pub struct ProcessArgs {
    /// The script or program, relative to the directory it is resolved against.
    pub script: String,
    /// The process name; the script's file stem when absent.
    pub name: Option<String>,
    /// Arguments passed to the script.
    pub args: Vec<String>,
    /// The program that runs the script, instead of the one velos picks.
    pub interpreter: Option<String>,
    /// Arguments for the interpreter, before the script.
    pub interpreter_args: Vec<String>,
    /// The working directory, relative to the directory it is resolved against; that
    /// directory when absent.
    pub cwd: Option<String>,
    /// The script is relative to the working directory rather than to the directory
    /// resolved against (PM2's rule for ecosystem files).
    pub script_in_cwd: bool,
    /// Variables set on top of the base environment, later ones winning.
    pub env: Vec<(String, String)>,
    /// Time between SIGTERM and SIGKILL on stop.
    pub kill_timeout: Option<Duration>,
    /// Start it again when it exits unexpectedly.
    pub autorestart: Option<bool>,
    /// Quick failures in a row before giving up.
    pub max_restarts: Option<u32>,
    /// How long a run must last to count as a success.
    pub min_uptime: Option<Duration>,
    /// Restart it when its whole tree stays over this many resident bytes.
    pub max_memory: Option<u64>,
    /// How long the tree must stay over `max_memory` first.
    pub max_memory_for: Option<Duration>,
    /// Rotate each log file at this many bytes (0: never).
    pub max_log_size: Option<u64>,
    /// Rotated log files kept.
    pub log_files: Option<u32>,
    /// Addresses the daemon listens on for it; a relative `unix:` path is relative to the
    /// directory it is resolved against.
    pub listen: Vec<String>,
    /// How it says it is ready (a `ReadyMode` as text, already checked).
    pub ready: Option<String>,
    /// How long it may take to be ready.
    pub ready_timeout: Option<Duration>,
    /// How many instances to start.
    pub instances: Option<u32>,
    /// The variable that tells each instance its number besides `VELOS_INSTANCE`.
    pub instance_var: Option<String>,
    /// A variable whose number instance K gets plus K.
    pub increment_var: Option<String>,
    /// The stop signal, by name (already checked).
    pub kill_signal: Option<String>,
    /// Which exits are restarted; wins over `autorestart`.
    pub restart: Option<RestartMode>,
    /// Exit codes that are a clean stop.
    pub stop_exit_codes: Vec<u8>,
    /// A restart schedule in cron syntax (checked by the daemon).
    pub cron_restart: Option<String>,
    /// Paths whose changes restart it, relative to the working directory; not watched
    /// when empty.
    pub watch: Vec<String>,
    /// Globs of paths whose changes do not count (already checked), on top of the
    /// built-in ones.
    pub watch_ignore: Vec<String>,
    /// Quiet after the last change before the restart.
    pub watch_delay: Option<Duration>,
    /// Lines go to the log files after their time (`--time`).
    pub time: bool,
}

// Hand-written: the environment may hold secrets.
impl fmt::Debug for ProcessArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessArgs")
            .field("script", &self.script)
            .field("name", &self.name)
            .field("cwd", &self.cwd)
            .field("env", &self.env.len())
            .finish_non_exhaustive()
    }
}

/// The field a resolution failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The script.
    Script,
    /// The working directory.
    Cwd,
    /// The name, given or taken from the script.
    Name,
    /// A watched path.
    Watch,
}

/// Why a [`ProcessArgs`] cannot be started: one line, and the field it is about.
#[derive(Debug)]
pub struct Invalid {
    /// The field.
    pub field: Field,
    /// What is wrong, in one line.
    pub message: String,
    /// Whether the problem is the name taken from the script's file stem (then giving a
    /// name is the way out).
    pub default_name: bool,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    fn new(field: Field, message: impl fmt::Display) -> Invalid {
        Invalid {
            field,
            message: message.to_string(),
            default_name: false,
        }
    }
}

impl ProcessArgs {
    /// The start request: the script and the working directory resolved against `dir`
    /// and checked, the name chosen and checked, `env` on top of `base`.
    pub fn resolve(
        self,
        dir: &Path,
        mut base: BTreeMap<String, String>,
    ) -> Result<StartParams, Invalid> {
        base.extend(self.env);
        let workdir = match &self.cwd {
            Some(cwd) => resolve_dir(cwd, dir)?,
            None => dir.to_path_buf(),
        };
        let script_dir = if self.script_in_cwd { &workdir } else { dir };
        let (program, args) = split_command(self.script, self.args, script_dir)?;
        let path = base.get("PATH").map(OsStr::new);
        let script = find_program(Path::new(&program), script_dir, path)
            .map_err(|err| Invalid::new(Field::Script, err))?;
        let name = process_name(self.name.as_deref(), &script).map_err(|err| Invalid {
            default_name: matches!(err, ProcessNameError::Default { .. }),
            ..Invalid::new(Field::Name, err)
        })?;
        Ok(StartParams {
            script: utf8(&script, "script path").map_err(|err| Invalid::new(Field::Script, err))?,
            name: Some(name),
            args,
            interpreter: self.interpreter,
            cwd: Some(
                utf8(&workdir, "working directory").map_err(|err| Invalid::new(Field::Cwd, err))?,
            ),
            env: Some(base),
            kill_timeout_ms: self.kill_timeout.map(millis),
            autorestart: self.autorestart,
            max_restarts: self.max_restarts,
            min_uptime_ms: self.min_uptime.map(millis),
            max_memory_bytes: self.max_memory,
            max_memory_for_ms: self.max_memory_for.map(millis),
            max_log_bytes: self.max_log_size,
            log_files: self.log_files,
            interpreter_args: self.interpreter_args,
            listen: self
                .listen
                .iter()
                .map(|address| resolve_listen(address, dir))
                .collect(),
            ready: self.ready,
            ready_timeout_ms: self.ready_timeout.map(millis),
            instances: self.instances,
            instance_var: self.instance_var,
            increment_var: self.increment_var,
            kill_signal: self.kill_signal,
            restart: self.restart,
            stop_exit_codes: self.stop_exit_codes,
            cron_restart: self.cron_restart,
            watch: resolve_watch(&self.watch, &workdir)?,
            watch_ignore: self.watch_ignore,
            watch_delay_ms: self.watch_delay.map(millis),
            time: self.time,
        })
    }
}

/// The watched paths, absolute (relative ones against the working directory `workdir`),
/// each checked to exist: a typo is said at start, not found missing by a watch that
/// sees nothing.
fn resolve_watch(paths: &[String], workdir: &Path) -> Result<Vec<String>, Invalid> {
    let mut resolved: Vec<String> = Vec::new();
    for path in paths {
        let absolute = std::path::absolute(workdir.join(path))
            .map_err(|err| Invalid::new(Field::Watch, format!("cannot watch '{path}': {err}")))?;
        // `.`, `..` and a trailing `/` taken out, without following links.
        let absolute: PathBuf = absolute.components().fold(PathBuf::new(), |mut out, part| {
            match part {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
            out
        });
        if let Err(err) = absolute.metadata() {
            return Err(Invalid::new(
                Field::Watch,
                format!(
                    "cannot watch '{}': {} (give an existing file or directory to --watch)",
                    echo(path),
                    if err.kind() == io::ErrorKind::NotFound {
                        "no such file or directory".to_owned()
                    } else {
                        err.to_string()
                    }
                ),
            ));
        }
        let text =
            utf8(&absolute, "watched path").map_err(|err| Invalid::new(Field::Watch, err))?;
        if !resolved.contains(&text) {
            resolved.push(text);
        }
    }
    Ok(resolved)
}

/// The program and its arguments. A script with spaces that is not a file (in `dir`) is
/// a command, split into words as a shell splits them (quotes and backslashes respected,
/// nothing expanded, no shell run): `"python3 -m http.server 8000"` runs `python3` with
/// `-m http.server 8000` before `args`.
fn split_command(
    script: String,
    args: Vec<String>,
    dir: &Path,
) -> Result<(String, Vec<String>), Invalid> {
    if !script.contains(char::is_whitespace) || dir.join(&script).exists() {
        return Ok((script, args));
    }
    let shown = echo(&script);
    let Some(mut words) = shlex::split(&script) else {
        return Err(Invalid::new(
            Field::Script,
            format!("cannot split the command '{shown}' into words: a quote is not closed"),
        ));
    };
    if words.is_empty() {
        return Err(Invalid::new(Field::Script, "the script is empty"));
    }
    let program = words.remove(0);
    words.extend(args);
    Ok((program, words))
}

/// A listen address with a relative `unix:` path made absolute against `dir`; the daemon
/// checks the rest.
fn resolve_listen(address: &str, dir: &Path) -> String {
    match address.strip_prefix("unix:") {
        Some(path) if !path.is_empty() && !Path::new(path).is_absolute() => {
            format!("unix:{}", dir.join(path).display())
        }
        _ => address.to_owned(),
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `cwd` as an absolute path against `dir`, which must be a directory.
fn resolve_dir(cwd: &str, dir: &Path) -> Result<PathBuf, Invalid> {
    let shown = echo(cwd);
    let invalid = |message: String| Invalid::new(Field::Cwd, message);
    let path = std::path::absolute(dir.join(cwd))
        .map_err(|err| invalid(format!("resolving the path of '{shown}': {err}")))?;
    let looked_at = echo(&path.to_string_lossy()).into_owned();
    match path.metadata() {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(invalid(format!(
            "working directory '{shown}' is not a directory"
        ))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(invalid(format!(
            "working directory '{shown}' does not exist (looked at {looked_at})"
        ))),
        Err(err) => Err(invalid(format!("reading {looked_at}: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with `app.js`, `123.js` and `sub/` in it.
    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        std::fs::write(dir.path().join("123.js"), "").unwrap();
        dir
    }

    fn args(script: &str) -> ProcessArgs {
        ProcessArgs {
            script: script.into(),
            ..ProcessArgs::default()
        }
    }

    #[test]
    fn paths_resolve_against_the_directory_and_values_reach_the_request() {
        let project = project();
        let dir = project.path();
        let base = BTreeMap::from([
            ("PORT".to_owned(), "80".to_owned()),
            ("HOME".to_owned(), "/h".to_owned()),
        ]);
        let params = ProcessArgs {
            script: "../app.js".into(),
            args: vec!["--port".into(), "3000".into()],
            env: vec![("PORT".into(), "3000".into()), ("NEW".into(), "1".into())],
            kill_timeout: Some(Duration::from_millis(1500)),
            min_uptime: Some(Duration::from_secs(2)),
            autorestart: Some(false),
            max_restarts: Some(3),
            max_log_size: Some(2048),
            log_files: Some(2),
            max_memory: Some(512 << 20),
            max_memory_for: Some(Duration::from_secs(5)),
            interpreter: Some("node".into()),
            listen: vec![
                "8080".into(),
                "unix:app.sock".into(),
                "unix:/run/a.sock".into(),
            ],
            ..args("")
        }
        .resolve(&dir.join("sub"), base)
        .unwrap();
        assert_eq!(
            Path::new(&params.script),
            std::path::absolute(dir.join("sub/../app.js")).unwrap()
        );
        assert_eq!(params.name.as_deref(), Some("app"));
        assert_eq!(params.cwd.as_deref(), dir.join("sub").to_str());
        assert_eq!(params.args, ["--port", "3000"]);
        let env = params.env.unwrap();
        assert_eq!(
            (
                env["PORT"].as_str(),
                env["NEW"].as_str(),
                env["HOME"].as_str()
            ),
            ("3000", "1", "/h")
        );
        assert_eq!(params.kill_timeout_ms, Some(1500));
        assert_eq!(params.min_uptime_ms, Some(2000));
        assert_eq!(params.autorestart, Some(false));
        assert_eq!(params.max_restarts, Some(3));
        assert_eq!(params.max_log_bytes, Some(2048));
        assert_eq!(params.log_files, Some(2));
        assert_eq!(params.max_memory_bytes, Some(512 << 20));
        assert_eq!(params.max_memory_for_ms, Some(5000));
        assert_eq!(params.interpreter.as_deref(), Some("node"));
        assert_eq!(
            params.listen,
            [
                "8080".to_owned(),
                format!("unix:{}", dir.join("sub/app.sock").display()),
                "unix:/run/a.sock".to_owned()
            ]
        );
    }

    #[test]
    fn commands_are_split_into_words_and_programs_found_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let project = project();
        let dir = project.path();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("serve"), "").unwrap();
        std::fs::set_permissions(bin.join("serve"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.join("my app.js"), "").unwrap();
        let base = || BTreeMap::from([("PATH".to_owned(), bin.to_str().unwrap().to_owned())]);

        let params = ProcessArgs {
            args: vec!["--verbose".into()],
            ..args(r#"serve -m "a b" 'c d' e\ f"#)
        }
        .resolve(dir, base())
        .unwrap();
        assert_eq!(Path::new(&params.script), bin.join("serve"));
        assert_eq!(params.args, ["-m", "a b", "c d", "e f", "--verbose"]);
        assert_eq!(params.name.as_deref(), Some("serve"));

        // A file whose name has a space is a file, not a command.
        let params = ProcessArgs {
            name: Some("mine".into()),
            ..args("my app.js")
        }
        .resolve(dir, base())
        .unwrap();
        assert_eq!(Path::new(&params.script), dir.join("my app.js"));
        assert!(params.args.is_empty());

        // --env PATH=... is the PATH programs are looked up on.
        let params = ProcessArgs {
            env: vec![("PATH".into(), bin.to_str().unwrap().into())],
            ..args("serve")
        }
        .resolve(dir, BTreeMap::new())
        .unwrap();
        assert_eq!(Path::new(&params.script), bin.join("serve"));

        let err = args("serve 'x").resolve(dir, base()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot split the command 'serve 'x' into words: a quote is not closed"
        );
        let err = args("nothing-here").resolve(dir, base()).unwrap_err();
        assert!(err.to_string().ends_with("and on PATH)"), "{err}");
    }

    #[test]
    fn each_failure_names_its_field() {
        let project = project();
        let dir = project.path();
        let err = args("x.js").resolve(dir, BTreeMap::new()).unwrap_err();
        assert_eq!(err.field, Field::Script);
        assert_eq!(
            err.to_string(),
            format!(
                "script 'x.js' not found (looked at {} and on PATH)",
                dir.join("x.js").display()
            )
        );
        let err = ProcessArgs {
            cwd: Some("nowhere".into()),
            ..args("app.js")
        }
        .resolve(dir, BTreeMap::new())
        .unwrap_err();
        assert_eq!(err.field, Field::Cwd);
        assert!(
            err.to_string()
                .starts_with("working directory 'nowhere' does not exist (looked at "),
            "{err}"
        );
        let err = ProcessArgs {
            cwd: Some("app.js".into()),
            ..args("app.js")
        }
        .resolve(dir, BTreeMap::new())
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "working directory 'app.js' is not a directory"
        );
        let err = ProcessArgs {
            name: Some("all".into()),
            ..args("app.js")
        }
        .resolve(dir, BTreeMap::new())
        .unwrap_err();
        assert_eq!((err.field, err.default_name), (Field::Name, false));
        let err = args("123.js").resolve(dir, BTreeMap::new()).unwrap_err();
        assert_eq!((err.field, err.default_name), (Field::Name, true));
    }
}
