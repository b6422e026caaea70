//! `velos stop|restart|delete`: of one process, of `all`, or of the apps of a config file.
//!
//! A name, id or `all` is one request; the daemon does `all` in parallel and answers when
//! every process it touched has exited. A config file (`velos stop velos.toml`, `--only`
//! some of its apps) is one request per app, in file order. Apps that are not in the list
//! are skipped with a note on stderr, except by `restart`, which starts them (as PM2 does
//! with an ecosystem file), and restarts the others with the file's current settings
//! and instances (their environment too with `--update-env` or `--env NAME`; see
//! `apply.rs`); every app is checked before anything changes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::{DeleteParams, ProcessInfo, ProcessStatus, RestartParams, StartParams, Target};
use velos_sdk::Client;

use super::apply::{Apply, apply_file};
use super::outcome::{Outcomes, is_up, why_not_up};
use super::{daemon, explain, explain_change, start};
use crate::cli::FileArgs;
use crate::config::{self, Config, Selection};

/// What `stop`, `restart` and `delete` do to their targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Stop,
    Restart { update_env: bool },
    Delete { logs: bool },
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Stop => "stop",
            Change::Restart { .. } => "restart",
            Change::Delete { .. } => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Change::Stop => "stopped",
            Change::Restart { .. } => "restarted",
            Change::Delete { .. } => "deleted",
        }
    }
}

/// `velos stop|restart|delete <name|id|all|file.toml>`
pub fn run(target: &str, change: Change, file: &FileArgs) -> Result<()> {
    if config::is_config(target) {
        return run_config(target, change, file);
    }
    not_a_file(target, file)?;
    let target = Target::parse(target);
    let mut client = daemon()?;
    let env = change_env(change, start::current_env());
    let what = format!("the {} of '{target}'", change.verb());
    let changed = request(&mut client, target.clone(), change, env)
        .map_err(|err| explain_change(err, &what))?;

    if changed.is_empty() && target == Target::All {
        eprintln!("no processes to {}", change.verb());
        return Ok(());
    }
    let mut outcomes = Outcomes::new(change.verb());
    let changed = wait_until_ready(&mut client, change, changed, &mut outcomes);
    let one_instance = matches!(target, Target::Instance { .. });
    report_changed(change, &changed, &mut outcomes, one_instance)?;
    outcomes.finish()
}

/// Refuses `--only` and `--env NAME` for a target that is not a config file.
pub fn not_a_file(target: &str, file: &FileArgs) -> Result<()> {
    match file.given().first() {
        Some(flag) => anyhow::bail!(
            "{flag} picks apps of a config file, and '{}' is not one",
            velos_proto::echo(target)
        ),
        None => Ok(()),
    }
}

/// The processes a restart answered with: each waited for until ready, then a line
/// for each that runs, and the others counted in `outcomes`.
pub fn report_restarted(
    client: &mut Client,
    changed: Vec<ProcessInfo>,
    outcomes: &mut Outcomes,
) -> Result<()> {
    let change = Change::Restart { update_env: false };
    let changed = wait_until_ready(client, change, changed, outcomes);
    report_changed(change, &changed, outcomes, false)
}

/// The apps of the list, by name, each with its instances by instance number.
pub fn listed_apps(client: &mut Client) -> Result<BTreeMap<String, Vec<ProcessInfo>>> {
    let mut apps: BTreeMap<String, Vec<ProcessInfo>> = BTreeMap::new();
    for process in block_on(client.list()).map_err(explain)? {
        apps.entry(process.name.clone()).or_default().push(process);
    }
    for instances in apps.values_mut() {
        instances.sort_by_key(|process| process.instance);
    }
    Ok(apps)
}

/// After a restart: each process with a ready mode is waited for until it is ready, as
/// `velos start` does; one that does not become ready is counted as a failure with the
/// reason (its last log lines on stderr) and left out of what is reported.
fn wait_until_ready(
    client: &mut Client,
    change: Change,
    changed: Vec<ProcessInfo>,
    outcomes: &mut Outcomes,
) -> Vec<ProcessInfo> {
    if !matches!(change, Change::Restart { .. }) {
        return changed;
    }
    // Instances of an app of several are named `name:K`.
    let several: std::collections::HashSet<String> = crate::output::apps_of_several(&changed)
        .into_iter()
        .map(str::to_owned)
        .collect();
    changed
        .into_iter()
        .filter_map(|process| {
            let labelled = several.contains(&process.name) || process.instance > 0;
            match start::wait_until_ready(client, process, labelled) {
                Ok(process) => Some(process),
                Err(err) => {
                    outcomes.failed(format!("{err:#}"));
                    None
                }
            }
        })
        .collect()
}

/// Prints a line for each process that ended up as asked, and counts the others. An
/// instance is named as the user addresses it, `web:2`, when its app answered with
/// several, when it is not instance 0, or when the user named one instance
/// (`one_instance`).
fn report_changed(
    change: Change,
    changed: &[ProcessInfo],
    outcomes: &mut Outcomes,
    one_instance: bool,
) -> Result<()> {
    let several = crate::output::apps_of_several(changed);
    let mut stdout = io::stdout().lock();
    for process in changed {
        let shown = if one_instance {
            format!("{}:{}", process.name, process.instance)
        } else {
            crate::output::label(process, &several)
        };
        match failure(change, process, &shown) {
            Some(line) => outcomes.failed(line),
            None => {
                outcomes.succeeded();
                writeln!(stdout, "{}", change_line(change, process, &shown))?;
            }
        }
    }
    Ok(())
}

/// Why `process` (shown as `shown`) did not end up as `change` asked, if it did not: a
/// restarted process must run, a stopped one must not.
fn failure(change: Change, process: &ProcessInfo, shown: &str) -> Option<String> {
    let id = process.id;
    match change {
        Change::Restart { .. } if !is_up(process) => Some(format!(
            "'{shown}' (id {id}) did not restart: {} (see 'velos logs {shown}')",
            why_not_up(process)
        )),
        Change::Stop if process.pid.is_some() && process.status == ProcessStatus::Running => {
            Some(format!(
                "'{shown}' (id {id}) is running again: another command started it while it \
                 stopped (run 'velos stop {shown}' again)"
            ))
        }
        _ => None,
    }
}

/// The environment a restart sends: this shell's with `--update-env`, else none (the
/// remembered one).
fn change_env(change: Change, env: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (change == Change::Restart { update_env: true }).then_some(env)
}

/// One request.
fn request(
    client: &mut Client,
    target: Target,
    change: Change,
    env: Option<BTreeMap<String, String>>,
) -> velos_sdk::Result<Vec<ProcessInfo>> {
    match change {
        Change::Stop => block_on(client.stop(target)),
        Change::Restart { .. } => block_on(client.restart_with(RestartParams {
            target,
            env,
            settings: None,
        })),
        Change::Delete { logs } => block_on(client.delete_with(DeleteParams { target, logs })),
    }
}

/// What `restart FILE` and `reload FILE` do with each app of the file, decided for every
/// app before anything changes (so a bad one changes nothing).
pub enum FilePlan {
    /// Not in the list: start it.
    Start(StartParams),
    /// In the list (these instances): give it the file's settings.
    Apply(StartParams, Vec<ProcessInfo>),
}

/// The plan of `restart FILE` or `reload FILE` for every app of `config`, in file
/// order: settings resolved, with the environment it has kept unless `update_env`.
pub fn file_plans(
    config: &Config,
    listed: &mut BTreeMap<String, Vec<ProcessInfo>>,
    update_env: bool,
) -> Result<Vec<(String, FilePlan)>> {
    let base_env = start::current_env();
    config
        .names()
        .map(|name| {
            let mut params = config.start_params(name, &base_env)?;
            let plan = match listed.remove(name) {
                Some(instances) => {
                    if !update_env {
                        params.env = None;
                    }
                    FilePlan::Apply(params, instances)
                }
                None => FilePlan::Start(params),
            };
            Ok((name.to_owned(), plan))
        })
        .collect()
}

/// `velos stop|restart|delete velos.toml`
fn run_config(path: &str, change: Change, file: &FileArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let selection = Selection::new(&file.only, file.env.clone());
    let config = Config::load(path, &cwd, &selection)?;
    let mut client = daemon()?;
    let mut outcomes = Outcomes::new(change.verb());

    if let Change::Restart { update_env } = change {
        config.warn();
        // --env NAME asks for the file's environment, as --update-env does.
        let update_env = update_env || file.env.is_some();
        apply_file(
            &mut client,
            &config,
            update_env,
            Apply::Restart,
            &mut outcomes,
        )?;
        return outcomes.finish();
    }

    let listed = listed_apps(&mut client)?;

    for name in config.names() {
        if !listed.contains_key(name) {
            eprintln!(
                "'{name}' (from {}) is not in the list; skipped",
                config.shown()
            );
            continue;
        }
        let target = Target::Name(name.to_owned());
        let what = format!("the {} of '{name}'", change.verb());
        let changed = request(&mut client, target, change, None)
            .map_err(|err| explain_change(err, &what))
            .with_context(|| format!("{} '{name}' from {}", verb_ing(change), config.shown()))?;
        report_changed(change, &changed, &mut outcomes, false)?;
    }
    outcomes.finish()
}

fn verb_ing(change: Change) -> &'static str {
    match change {
        Change::Stop => "stopping",
        Change::Restart { .. } => "restarting",
        Change::Delete { .. } => "deleting",
    }
}

/// `stopped 'api' (id 0)`, `restarted 'api:1' (id 1, pid 1234)`: `name` is the process
/// as the user addresses it.
pub fn change_line(change: Change, process: &ProcessInfo, name: &str) -> String {
    let id = process.id;
    match (change, process.pid) {
        (Change::Restart { .. }, Some(pid)) => {
            format!("{} '{name}' (id {id}, pid {pid})", change.past())
        }
        (Change::Restart { .. }, None) => format!(
            "{} '{name}' (id {id}), now {}{}",
            change.past(),
            process.status,
            process
                .error
                .as_deref()
                .map(|error| format!(": {error}"))
                .unwrap_or_default()
        ),
        _ if process.killed => format!(
            "{} '{name}' (id {id}): still running {} after {}, so velos sent SIGKILL",
            change.past(),
            humantime::format_duration(std::time::Duration::from_millis(process.kill_timeout_ms)),
            if process.kill_signal.is_empty() {
                "SIGTERM"
            } else {
                &process.kill_signal
            }
        ),
        _ => format!("{} '{name}' (id {id})", change.past()),
    }
}

#[cfg(test)]
mod tests {
    use velos_proto::ProcessStatus;

    use super::*;
    use crate::output::tests::process;

    #[test]
    fn each_change_says_what_happened_to_whom() {
        let mut stopped = process(3, "api", ProcessStatus::Stopped);
        stopped.pid = None;
        assert_eq!(
            change_line(Change::Stop, &stopped, "api"),
            "stopped 'api' (id 3)"
        );
        let mut killed = stopped.clone();
        killed.killed = true;
        killed.kill_timeout_ms = 500;
        killed.kill_signal = "SIGINT".into();
        assert_eq!(
            change_line(Change::Stop, &killed, "api"),
            "stopped 'api' (id 3): still running 500ms after SIGINT, so velos sent SIGKILL"
        );
        assert_eq!(
            change_line(Change::Delete { logs: false }, &stopped, "api"),
            "deleted 'api' (id 3)"
        );
        let mut running = process(3, "api", ProcessStatus::Running);
        running.pid = Some(77);
        assert_eq!(
            change_line(Change::Restart { update_env: false }, &running, "api"),
            "restarted 'api' (id 3, pid 77)"
        );
        let mut errored = process(3, "api", ProcessStatus::Errored);
        errored.error = Some("node: not found".into());
        assert_eq!(
            change_line(Change::Restart { update_env: true }, &errored, "api"),
            "restarted 'api' (id 3), now errored: node: not found"
        );
    }

    #[test]
    fn a_restart_that_leaves_it_down_or_a_stop_that_leaves_it_up_is_a_failure() {
        let restart = Change::Restart { update_env: false };
        let mut errored = process(3, "api", ProcessStatus::Errored);
        errored.pid = None;
        errored.error = Some("could not run '/x/app.sh'".into());
        assert_eq!(
            failure(restart, &errored, "api").as_deref(),
            Some(
                "'api' (id 3) did not restart: errored: could not run '/x/app.sh' (see 'velos \
                 logs api')"
            )
        );
        let mut running = process(3, "api", ProcessStatus::Running);
        running.pid = Some(77);
        assert_eq!(failure(restart, &running, "api"), None);
        assert!(failure(Change::Stop, &running, "api").is_some());
        assert_eq!(failure(Change::Stop, &errored, "api"), None);
        assert_eq!(
            failure(Change::Delete { logs: true }, &running, "api"),
            None
        );
    }

    #[test]
    fn only_restart_with_update_env_sends_an_environment() {
        let env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(
            change_env(Change::Restart { update_env: true }, env.clone()),
            Some(env.clone())
        );
        assert_eq!(
            change_env(Change::Restart { update_env: false }, env.clone()),
            None
        );
        assert_eq!(change_env(Change::Stop, env), None);
    }
}
