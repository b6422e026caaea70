//! `velos start`: from what was typed to a [`StartParams`], then one request.
//!
//! Everything that can be checked here is checked before the daemon is asked (or even
//! started): the script must exist, relative to the current directory, and the name must
//! follow the rules. The daemon checks both again; this side exists for clear messages
//! about what the user typed. The process gets this shell's working directory and its
//! whole environment, which the daemon remembers for restarts.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures_lite::future::block_on;
use velos_proto::home::{default_name, validate_name};
use velos_proto::{ProcessInfo, ProcessStatus, StartParams};

use super::{daemon, explain};
use crate::cli::StartArgs;

/// Runs `velos start`.
pub fn run(args: StartArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let params = start_params(args, &cwd, current_env())?;
    let started = block_on(daemon()?.start(params)).map_err(explain)?;
    if started.status == ProcessStatus::Errored {
        bail!("{}", failure_message(&started));
    }
    writeln!(io::stdout().lock(), "{}", started_line(&started))?;
    Ok(())
}

/// The request for `args`, with paths resolved against `cwd`.
fn start_params(args: StartArgs, cwd: &Path, env: BTreeMap<String, String>) -> Result<StartParams> {
    let script = resolve_script(&args.script, cwd)?;
    check_name(args.name.as_deref(), &script)?;
    Ok(StartParams {
        script: utf8(&script, "script path")?,
        // Left out when not given: the daemon names it after the file stem.
        name: args.name,
        args: args.args,
        interpreter: args.interpreter,
        cwd: Some(utf8(cwd, "current directory")?),
        env: Some(env),
        kill_timeout_ms: args
            .kill_timeout
            .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        autorestart: args.no_autorestart.then_some(false),
        ..StartParams::default()
    })
}

/// The script as an absolute path, which must exist.
fn resolve_script(script: &str, cwd: &Path) -> Result<PathBuf> {
    // Lexical only (no symlinks resolved): the user's path is the one to remember.
    let path = std::path::absolute(cwd.join(script))
        .with_context(|| format!("resolving the path of '{script}'"))?;
    match path.metadata() {
        Ok(meta) if meta.is_dir() => {
            bail!("script '{script}' is a directory, not a file to run")
        }
        Ok(_) => Ok(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            bail!("script '{script}' not found (looked at {})", path.display())
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Checks the given name, or the one the daemon would choose, against the name rules.
fn check_name(name: Option<&str>, script: &Path) -> Result<()> {
    match name {
        Some(name) => validate_name(name)?,
        None => {
            let name = default_name(script).unwrap_or_default();
            if let Err(err) = validate_name(&name) {
                bail!("{err}; give it a name with --name NAME");
            }
        }
    }
    Ok(())
}

fn utf8(path: &Path, what: &str) -> Result<String> {
    match path.to_str() {
        Some(text) => Ok(text.to_owned()),
        None => bail!("the {what} {} is not valid UTF-8", path.display()),
    }
}

/// This process's environment. Variables that are not UTF-8 cannot travel in the request
/// and are left out.
pub fn current_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// `started 'app' (id 0, pid 1234)`
fn started_line(process: &ProcessInfo) -> String {
    match process.pid {
        Some(pid) => format!("started '{}' (id {}, pid {pid})", process.name, process.id),
        None => format!("started '{}' (id {})", process.name, process.id),
    }
}

/// Why a process that could not start did not, and what to do about it.
fn failure_message(process: &ProcessInfo) -> String {
    let name = &process.name;
    let reason = process.error.as_deref().unwrap_or("it exited at once");
    format!(
        "'{name}' (id {}) could not start: {reason} (see 'velos logs {name}'; remove it with \
         'velos delete {name}')",
        process.id
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn args(script: &str) -> StartArgs {
        StartArgs {
            script: script.into(),
            name: None,
            kill_timeout: None,
            interpreter: None,
            no_autorestart: false,
            args: vec![],
        }
    }

    /// A directory with `app.js` in it.
    fn project() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "velos-start-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("app.js"), "").unwrap();
        dir
    }

    #[test]
    fn relative_scripts_are_resolved_against_the_working_directory() {
        let dir = project();
        let env = BTreeMap::from([("PORT".to_owned(), "3000".to_owned())]);
        let mut typed = args("../app.js");
        typed.kill_timeout = Some(Duration::from_millis(1500));
        typed.args = vec!["--port".into(), "3000".into()];
        let params = start_params(typed, &dir.join("sub"), env.clone()).unwrap();
        assert_eq!(
            Path::new(&params.script),
            std::path::absolute(dir.join("sub/../app.js")).unwrap()
        );
        assert!(Path::new(&params.script).is_absolute());
        assert_eq!(params.name, None);
        assert_eq!(params.kill_timeout_ms, Some(1500));
        assert_eq!(params.args, ["--port", "3000"]);
        assert_eq!(params.cwd.as_deref(), dir.join("sub").to_str());
        assert_eq!(params.env, Some(env));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_script_is_refused_with_where_we_looked() {
        let dir = project();
        let err = start_params(args("x.js"), &dir, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "script 'x.js' not found (looked at {})",
                dir.join("x.js").display()
            )
        );
        let err = start_params(args("sub"), &dir, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "script 'sub' is a directory, not a file to run"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_are_checked_before_anything_is_sent() {
        let dir = project();
        for bad in ["all", "123", "a b", ".x", ""] {
            let mut typed = args("app.js");
            typed.name = Some(bad.into());
            assert!(start_params(typed, &dir, BTreeMap::new()).is_err(), "{bad}");
        }
        let mut typed = args("app.js");
        typed.name = Some("api-v2".into());
        let params = start_params(typed, &dir, BTreeMap::new()).unwrap();
        assert_eq!(params.name.as_deref(), Some("api-v2"));

        std::fs::write(dir.join("123.js"), "").unwrap();
        let err = start_params(args("123.js"), &dir, BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string().ends_with("give it a name with --name NAME"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_started_line_names_id_and_pid() {
        let mut process = ProcessInfo {
            id: 0,
            name: "app".into(),
            pid: Some(1234),
            status: ProcessStatus::Running,
            exit_code: None,
            signal: None,
            restarts: 0,
            uptime_ms: Some(0),
            script: "/srv/app.js".into(),
            interpreter: Some("node".into()),
            args: vec![],
            cwd: "/srv".into(),
            kill_timeout_ms: 5000,
            out_log: String::new(),
            err_log: String::new(),
            error: None,
            log_error: None,
            autorestart: true,
            max_restarts: 16,
            min_uptime_ms: 1000,
            max_log_bytes: None,
            log_files: 5,
            restart_in_ms: None,
            cpu_percent: None,
            memory_bytes: None,
        };
        assert_eq!(started_line(&process), "started 'app' (id 0, pid 1234)");
        process.status = ProcessStatus::Errored;
        process.pid = None;
        process.error = Some("cannot run 'node': not found".into());
        assert!(failure_message(&process).starts_with(
            "'app' (id 0) could not start: cannot run 'node': not found (see 'velos logs app'"
        ));
    }
}
