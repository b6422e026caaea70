//! `velos start`: from what was typed to a [`StartParams`], then one request.
//!
//! Everything that can be checked here is checked before the daemon is asked (or even
//! started): the script and `--cwd` must exist, relative to the current directory, and
//! the name must follow the rules. The daemon checks again; this side exists for clear
//! messages about what the user typed. The process gets this shell's working directory
//! (or `--cwd`) and its whole environment plus `--env`, which the daemon remembers for
//! restarts. The script's resolution is velos-proto's (`script.rs`), which the SDK's
//! `StartParams::new` uses too.
//!
//! `velos start velos.toml` starts the apps of a config file instead (see
//! [`crate::config`]): every app to start is checked before the first one starts, and
//! apps whose name is already in the list are skipped with a note.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_lite::future::block_on;
pub use velos_proto::script::current_env;
use velos_proto::{ProcessInfo, ProcessStatus, StartParams, echo, methods};
use velos_sdk::{Client, Error as SdkError};

use super::outcome::Outcomes;
use super::{daemon, explain, explain_change};
use crate::cli::StartArgs;
use crate::config::{self, Config, Selection};

/// Runs `velos start`.
pub fn run(args: StartArgs) -> Result<()> {
    run_prepared(prepare(args)?, &mut io::stdout())
}

/// A start whose every check that needs no daemon is done: the script resolved, or the
/// config file read (which runs node for a `.js` file, so `velos runtime` does it before
/// it reaps every child it has).
pub enum Prepared {
    /// One script or program; `no_wait` is `--no-wait`.
    One { params: StartParams, no_wait: bool },
    /// The apps of a config file.
    Config(Config, StartArgs),
}

/// Checks what was typed and resolves it (see [`Prepared`]).
pub fn prepare(args: StartArgs) -> Result<Prepared> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if config::is_config(&args.script) {
        let flags = args.per_process_flags();
        if !flags.is_empty() {
            bail!(
                "{} cannot be used with a config file; set it per app in {}",
                flags.join(", "),
                args.script
            );
        }
        let config = Config::load(&args.script, &cwd, &selection(&args)?)?;
        return Ok(Prepared::Config(config, args));
    }
    if let Some(name) = args.env_names().first() {
        bail!(
            "--env {} names an environment of an ecosystem file; to set a variable, write \
             --env KEY=VALUE",
            echo(name)
        );
    }
    if !args.only.is_empty() {
        bail!(
            "--only picks apps of a config file, and '{}' is not one",
            echo(&args.script)
        );
    }
    let no_wait = args.no_wait;
    let params = start_params(args, &cwd, current_env())?;
    Ok(Prepared::One { params, no_wait })
}

/// Starts what [`prepare`] resolved; a line per process started goes to `out`.
pub fn run_prepared(prepared: Prepared, out: &mut dyn Write) -> Result<()> {
    let (params, no_wait) = match prepared {
        Prepared::Config(config, args) => return run_config(&config, &args, out),
        Prepared::One { params, no_wait } => (params, no_wait),
    };
    let what = format!("the start of '{}'", shown_name(&params));
    let count = params.instances.unwrap_or(1);
    let (mut client, started) = send_start(&params, &what)?;
    let instances = started_instances(&mut client, started, count)?;
    if let Some(first) = instances.first() {
        warn_about_watch(&mut client, first);
    }
    let labelled = instances.len() > 1;
    let mut failure = None;
    for process in instances {
        let ready = match no_wait {
            true => Ok(process),
            false => wait_until_ready(&mut client, process, labelled),
        };
        match ready.and_then(|process| report(&process, labelled)) {
            Ok(line) => writeln!(out, "{line}")?,
            Err(err) => {
                failure.get_or_insert(err);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Sends the start to the daemon in one round trip: to whatever accepts on the socket,
/// after a ping in the same write (`Client::call_after_ping`). A ping closed unanswered (a
/// daemon dying as it accepted) proves the start was never read: it goes through the
/// auto-start path then ([`daemon`]: ping first, a new daemon if need be), as it does
/// when nothing accepts. Any other failure, a timeout included, is the start's: it may
/// still happen, so it is never sent twice.
fn send_start(params: &StartParams, what: &str) -> Result<(Client, ProcessInfo)> {
    let home = velos_proto::Home::from_env()?;
    if let Some(mut client) = crate::autostart::connect_unpinged(&home)? {
        match block_on(client.call_after_ping::<methods::Start>(params)) {
            Ok((ping, started)) => {
                crate::build_skew::warn(&ping);
                let started = started.map_err(|err| explain_change(err, what))?;
                return Ok((client, started));
            }
            Err(
                SdkError::NotRunning { .. } | SdkError::Refused { .. } | SdkError::Disconnected,
            ) => {}
            Err(err) => return Err(explain_change(err, what)),
        }
    }
    let mut client = daemon()?;
    let started =
        block_on(client.start(params.clone())).map_err(|err| explain_change(err, what))?;
    Ok((client, started))
}

/// How long `velos start` waits for a `--watch` to be set up, to say at once when it
/// cannot watch everything (out of inotify watches); past this it says nothing, and
/// `velos info` tells later.
const WATCH_SETUP: Duration = Duration::from_secs(2);

/// For a watched process: waits (at most [`WATCH_SETUP`]) until its watch is set up, and
/// prints on stderr what keeps it from seeing every change, if anything does.
fn warn_about_watch(client: &mut Client, started: &ProcessInfo) {
    if started.watch.is_empty() {
        return;
    }
    let deadline = Instant::now() + WATCH_SETUP;
    let mut process = started.clone();
    while process.watched.is_none() && process.watch_error.is_none() && Instant::now() < deadline {
        std::thread::sleep(READY_POLL);
        match block_on(client.info(process.id)) {
            Ok(info) => process = info,
            Err(_) => return,
        }
    }
    if let Some(error) = &process.watch_error {
        eprintln!("warning: '{}' watch: {error}", process.name);
    }
}

/// How often `velos start` looks whether a process with a ready mode is ready yet.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long `velos start` waits beyond a process's ready timeout and kill timeout (the
/// daemon stops a process that was not ready in time) before it gives up on an answer.
const READY_SLACK: Duration = Duration::from_secs(10);
/// How many of its last log lines a process that did not become ready shows.
const LAST_LINES: u32 = 10;

/// For a process with a ready mode that is `starting`: waits until it is ready (then
/// its state), or until it failed: then its last log lines go to stderr and the error
/// says why. Any other process is returned as it is.
/// `labelled` names it `name:K` (an instance of an app of several).
pub fn wait_until_ready(
    client: &mut Client,
    started: ProcessInfo,
    labelled: bool,
) -> Result<ProcessInfo> {
    let Some(timeout) = started.ready_timeout_ms.filter(|_| started.ready.is_some()) else {
        return Ok(started);
    };
    let deadline = Instant::now()
        + Duration::from_millis(timeout)
        + Duration::from_millis(started.kill_timeout_ms)
        + READY_SLACK;
    let mut process = started;
    while process.status == ProcessStatus::Starting {
        if Instant::now() >= deadline {
            let shown = shown(&process, labelled);
            bail!(
                "'{shown}' (id {}) is still starting after {}; see 'velos info {shown}'",
                process.id,
                humantime::format_duration(Duration::from_millis(timeout)),
            );
        }
        std::thread::sleep(READY_POLL);
        process = block_on(client.info(process.id)).map_err(explain)?;
    }
    // Stopping: the daemon is ending a run that was not ready in time; wait for its
    // verdict.
    while process.status == ProcessStatus::Stopping && Instant::now() < deadline {
        std::thread::sleep(READY_POLL);
        process = block_on(client.info(process.id)).map_err(explain)?;
    }
    if process.status == ProcessStatus::Running {
        return Ok(process);
    }
    show_last_lines(client, &process, &shown(&process, labelled));
    bail!("{}", not_ready_message(&process, labelled))
}

/// The last lines of a process's logs, on stderr, for a start that failed; `shown` is
/// how the lines name it (`web:1`).
pub(super) fn show_last_lines(client: &mut Client, process: &ProcessInfo, shown: &str) {
    let Ok(logs) = block_on(client.logs(process.id, LAST_LINES)) else {
        return;
    };
    let mut err = io::stderr().lock();
    if logs.lines.is_empty() {
        let _ = writeln!(err, "'{shown}' wrote nothing");
        return;
    }
    let _ = writeln!(err, "last lines of '{shown}':");
    for line in logs.lines {
        let _ = writeln!(err, "  {}", String::from_utf8_lossy(&line.line).trim_end());
    }
}

/// Why a process with a ready mode did not become ready; `labelled` names it `name:K`.
fn not_ready_message(process: &ProcessInfo, labelled: bool) -> String {
    let name = &shown(process, labelled);
    let reason = match (&process.error, process.exit_code, process.signal) {
        (Some(error), _, _) => error.clone(),
        (None, Some(code), _) => format!("it exited with code {code} before it was ready"),
        (None, None, Some(signal)) => format!(
            "it was killed by {} before it was ready",
            velos_proto::signal_name(signal)
                .map_or_else(|| format!("signal {signal}"), str::to_owned)
        ),
        (None, None, None) => format!("it is {}", process.status),
    };
    let next = match process.status {
        ProcessStatus::Waiting => format!("velos starts it again; see 'velos logs {name}'"),
        _ => format!("see 'velos logs {name}'"),
    };
    format!(
        "'{name}' (id {}) did not become ready: {reason} ({next})",
        process.id
    )
}

/// What a start of `count` instances made: `first` (instance 0) alone, or every
/// instance of its app, by instance number.
fn started_instances(
    client: &mut Client,
    first: ProcessInfo,
    count: u32,
) -> Result<Vec<ProcessInfo>> {
    if count <= 1 {
        return Ok(vec![first]);
    }
    let mut instances: Vec<ProcessInfo> = block_on(client.list())
        .map_err(explain)?
        .into_iter()
        .filter(|process| process.name == first.name)
        .collect();
    instances.sort_by_key(|process| process.instance);
    Ok(instances)
}

/// The line saying a process started, or the error saying it could not; `labelled`
/// names it `name:K` (an instance of an app of several).
pub fn report(started: &ProcessInfo, labelled: bool) -> Result<String> {
    if started.status == ProcessStatus::Errored {
        bail!("{}", failure_message(started, labelled));
    }
    Ok(started_line(started, labelled))
}

/// What `velos start velos.toml` does with one app.
enum Plan {
    /// Its name is in the list already.
    Skip(Box<ProcessInfo>),
    /// Start it with these params.
    Start(Box<StartParams>),
}

/// `--only` and `--env NAME` of a start of a config file.
fn selection(args: &StartArgs) -> Result<Selection> {
    let names = args.env_names();
    if names.len() > 1 {
        bail!("give --env NAME once (got {})", echo(&names.join(", ")));
    }
    Ok(Selection::new(
        &args.only,
        names.first().map(|name| (*name).to_owned()),
    ))
}

/// `velos start velos.toml`, the file read already.
fn run_config(config: &Config, args: &StartArgs, out: &mut dyn Write) -> Result<()> {
    config.warn();
    let mut client = daemon()?;
    let mut listed: HashMap<String, ProcessInfo> = block_on(client.list())
        .map_err(explain)?
        .into_iter()
        .map(|process| (process.name.clone(), process))
        .collect();
    let env = current_env();
    let plans = config
        .names()
        .map(|name| match listed.remove(name) {
            Some(process) => Ok(Plan::Skip(Box::new(process))),
            None => config
                .start_params(name, &env)
                .map(|params| Plan::Start(Box::new(params))),
        })
        .collect::<Result<Vec<Plan>>>()?;

    // Every app is tried; one that cannot start is reported at the end and makes the
    // exit non-zero.
    let mut outcomes = Outcomes::new("start");
    for plan in plans {
        match plan {
            Plan::Skip(process) => writeln!(out, "{}", skipped_line(&process))?,
            Plan::Start(params) => {
                let name = params.name.clone().unwrap_or_default();
                let wait = !args.no_wait;
                start_one(
                    &mut client,
                    *params,
                    &name,
                    config,
                    &mut outcomes,
                    wait,
                    out,
                )?;
            }
        }
    }
    outcomes.finish()
}

/// Starts one app of a config file: its line on stdout when it runs (with `wait`, once
/// it is ready), else a failure in `outcomes`. Only a lost connection to the daemon ends
/// the whole command.
pub fn start_one(
    client: &mut Client,
    params: StartParams,
    name: &str,
    config: &Config,
    outcomes: &mut Outcomes,
    wait: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let count = params.instances.unwrap_or(1);
    let started = match block_on(client.start(params)) {
        Ok(started) => started,
        // The daemon's refusal is about this app; anything else (no answer, a lost
        // connection) would be the same for the next one.
        Err(err @ SdkError::Daemon { .. }) => {
            let err = explain(err).context(format!("starting '{name}' from {}", config.shown()));
            outcomes.failed(format!("{err:#}"));
            return Ok(());
        }
        Err(err) => {
            return Err(explain_change(err, &format!("the start of '{name}'")))
                .with_context(|| format!("starting '{name}' from {}", config.shown()));
        }
    };
    let instances = started_instances(client, started, count)?;
    let labelled = instances.len() > 1;
    for process in instances {
        let ready = match wait {
            true => wait_until_ready(client, process, labelled),
            false => Ok(process),
        };
        match ready.and_then(|process| report(&process, labelled)) {
            Ok(line) => {
                outcomes.succeeded();
                writeln!(out, "{line}")?;
            }
            Err(err) => outcomes.failed(err.to_string()),
        }
    }
    Ok(())
}

/// The name a start request gives (resolved requests always give one).
fn shown_name(params: &StartParams) -> &str {
    params.name.as_deref().unwrap_or_default()
}

/// `'api' is already running (id 0); skipped`
fn skipped_line(process: &ProcessInfo) -> String {
    let (name, id) = (&process.name, process.id);
    match process.status {
        ProcessStatus::Running => format!("'{name}' is already running (id {id}); skipped"),
        ProcessStatus::Waiting => {
            format!("'{name}' is already started (id {id}, waiting to restart); skipped")
        }
        status => format!(
            "'{name}' is already in the list (id {id}, {status}); skipped (start it with \
             'velos restart {name}')"
        ),
    }
}

/// The request for `args`, with paths resolved against `cwd`, and `--env` on top of `env`.
fn start_params(args: StartArgs, cwd: &Path, env: BTreeMap<String, String>) -> Result<StartParams> {
    args.into_process_args()
        .resolve(cwd, env)
        .map_err(|err| match err.default_name {
            true => anyhow!("{err}; give it a name with --name NAME"),
            false => anyhow!(err),
        })
}

/// `app`, or `app:K` when `labelled`.
fn shown(process: &ProcessInfo, labelled: bool) -> String {
    if labelled {
        format!("{}:{}", process.name, process.instance)
    } else {
        process.name.clone()
    }
}

/// `started 'app' (id 0, pid 1234)`
fn started_line(process: &ProcessInfo, labelled: bool) -> String {
    let name = shown(process, labelled);
    match process.pid {
        Some(pid) => format!("started '{name}' (id {}, pid {pid})", process.id),
        None => format!("started '{name}' (id {})", process.id),
    }
}

/// Why a process that could not start did not, and what to do about it.
fn failure_message(process: &ProcessInfo, labelled: bool) -> String {
    let name = shown(process, labelled);
    let reason = process.error.as_deref().unwrap_or("it exited at once");
    format!(
        "'{name}' (id {}) could not start: {reason} (see 'velos logs {name}'; remove it with \
         'velos delete {name}')",
        process.id
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::cli::EnvArg;
    use crate::output::tests::process;

    fn args(script: &str) -> StartArgs {
        StartArgs {
            script: script.into(),
            name: None,
            kill_timeout: None,
            interpreter: None,
            interpreter_args: None,
            only: vec![],
            cwd: None,
            env: vec![],
            no_autorestart: false,
            restart: None,
            stop_exit_codes: vec![],
            cron_restart: None,
            max_restarts: None,
            min_uptime: None,
            max_memory_restart: None,
            max_memory_for: None,
            max_log_size: None,
            log_files: None,
            listen: vec![],
            ready: None,
            ready_timeout: None,
            no_wait: false,
            instances: None,
            instance_var: None,
            increment_var: None,
            kill_signal: None,
            watch: None,
            watch_ignore: vec![],
            watch_delay: None,
            time: false,
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
        assert_eq!(
            params.name.as_deref(),
            Some("app"),
            "named after the file stem"
        );
        assert_eq!(params.kill_timeout_ms, Some(1500));
        assert_eq!(params.args, ["--port", "3000"]);
        assert_eq!(params.cwd.as_deref(), dir.join("sub").to_str());
        assert_eq!(params.env, Some(env));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cwd_env_and_restart_settings_reach_the_request() {
        let dir = project();
        let env = BTreeMap::from([
            ("PORT".to_owned(), "3000".to_owned()),
            ("HOME".to_owned(), "/h".to_owned()),
        ]);
        let mut typed = args("app.js");
        typed.cwd = Some("sub".into());
        typed.env = vec![
            EnvArg::Var("PORT".into(), "8080".into()),
            EnvArg::Var("NEW".into(), "1".into()),
        ];
        typed.no_autorestart = true;
        typed.max_restarts = Some(2);
        typed.min_uptime = Some(Duration::from_millis(2500));
        typed.max_log_size = Some(2048);
        typed.log_files = Some(3);
        let params = start_params(typed, &dir, env).unwrap();
        assert_eq!(params.cwd.as_deref(), dir.join("sub").to_str());
        let env = params.env.unwrap();
        assert_eq!(env["PORT"], "8080", "--env wins over the shell");
        assert_eq!((env["NEW"].as_str(), env["HOME"].as_str()), ("1", "/h"));
        assert_eq!(params.autorestart, Some(false));
        assert_eq!(params.max_restarts, Some(2));
        assert_eq!(params.min_uptime_ms, Some(2500));
        assert_eq!(params.max_log_bytes, Some(2048));
        assert_eq!(params.log_files, Some(3));

        let mut typed = args("app.js");
        typed.cwd = Some("nowhere".into());
        let err = start_params(typed, &dir, BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("working directory 'nowhere' does not exist"),
            "{err}"
        );
        let mut typed = args("app.js");
        typed.cwd = Some("app.js".into());
        let err = start_params(typed, &dir, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "working directory 'app.js' is not a directory"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_script_is_refused_with_where_we_looked() {
        let dir = project();
        let err = start_params(args("x.js"), &dir, BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "script 'x.js' not found (looked at {} and on PATH)",
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
        let mut process = process(0, "app", ProcessStatus::Running);
        process.pid = Some(1234);
        assert_eq!(
            started_line(&process, false),
            "started 'app' (id 0, pid 1234)"
        );
        assert_eq!(
            started_line(&process, true),
            "started 'app:0' (id 0, pid 1234)"
        );
        process.status = ProcessStatus::Errored;
        process.pid = None;
        process.error = Some("cannot run 'node': not found".into());
        assert!(failure_message(&process, false).starts_with(
            "'app' (id 0) could not start: cannot run 'node': not found (see 'velos logs app'"
        ));
        assert!(report(&process, false).is_err());
        process.status = ProcessStatus::Stopped;
        assert_eq!(
            skipped_line(&process),
            "'app' is already in the list (id 0, stopped); skipped (start it with 'velos restart app')"
        );
        process.status = ProcessStatus::Running;
        assert_eq!(
            skipped_line(&process),
            "'app' is already running (id 0); skipped"
        );
    }
}
