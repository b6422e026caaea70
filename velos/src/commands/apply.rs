//! `velos restart FILE` and `velos reload FILE` for an app already in the list: the file's
//! current settings and number of instances, then a line saying what changed.
//!
//! In this order, so that no instance is restarted only to be removed and new instances
//! start with the new settings: the instances the file no longer wants go first
//! (`process.scale`: the highest-numbered, stopped gracefully), then the others are
//! restarted or reloaded with the settings (`settings` of `process.restart` and
//! `process.reload`, checked by the daemon as a start is), then the instances the file
//! wants more are started (`process.scale`: with the settings of the lowest-numbered
//! instance, the new ones by then).

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_lite::future::block_on;
use velos_proto::{ProcessInfo, RestartParams, ScaleParams, StartParams, Target};
use velos_sdk::Client;

use super::outcome::Outcomes;
use super::{change, explain, explain_change, reload, start};
use crate::config::Config;
use crate::size::format_limit;

/// How an app of a file gets its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// `restart FILE`: every instance stops, then starts with them.
    Restart,
    /// `reload FILE`: each instance is replaced by a run with them, `parallel` at a time.
    Reload {
        /// How many at a time.
        parallel: u32,
    },
}

/// `restart FILE` and `reload FILE`: starts the apps of `config` that are not in the list
/// and gives the others the file's settings (`how`), counting each in `outcomes`.
pub fn apply_file(
    client: &mut Client,
    config: &Config,
    update_env: bool,
    how: Apply,
    outcomes: &mut Outcomes,
) -> Result<()> {
    let mut listed = change::listed_apps(client)?;
    for (name, plan) in change::file_plans(config, &mut listed, update_env)? {
        match plan {
            change::FilePlan::Start(params) => {
                start::start_one(
                    client,
                    params,
                    &name,
                    config,
                    outcomes,
                    true,
                    &mut io::stdout(),
                )?;
            }
            change::FilePlan::Apply(settings, before) => {
                apply(client, config, settings, &before, how, outcomes)?
            }
        }
    }
    Ok(())
}

/// Gives the app `name` of `config` the settings `settings` (the file's, resolved) and
/// the file's number of instances; `before` are its instances now, by instance number.
/// Prints a line per process as it goes and what changed at the end. A restarted process
/// that does not come up is counted in `outcomes`; a failed reload ends the command (the
/// old run keeps running), as `velos reload` does.
pub fn apply(
    client: &mut Client,
    config: &Config,
    settings: StartParams,
    before: &[ProcessInfo],
    how: Apply,
    outcomes: &mut Outcomes,
) -> Result<()> {
    let Some(first) = before.first() else {
        return Ok(());
    };
    let name = first.name.clone();
    let doing = match how {
        Apply::Restart => "restarting",
        Apply::Reload { .. } => "reloading",
    };
    let context = || format!("{doing} '{name}' from {}", config.shown());
    let wanted = settings.instances.unwrap_or(1).max(1);
    let current = u32::try_from(before.len()).unwrap_or(u32::MAX);

    if wanted < current {
        scale(client, &name, wanted).with_context(context)?;
    }
    let target = Target::Name(name.clone());
    match how {
        Apply::Restart => {
            let what = format!("the restart of '{name}'");
            let params = RestartParams {
                target,
                // The settings carry the environment (or none, to keep the one it has).
                env: None,
                settings: Some(Box::new(settings)),
            };
            let changed = block_on(client.restart_with(params))
                .map_err(|err| explain_change(err, &what))
                .with_context(context)?;
            change::report_restarted(client, changed, outcomes)?;
        }
        Apply::Reload { parallel } => {
            reload::reload(client, target, parallel, None, Some(settings))?;
        }
    }
    if wanted > current {
        let instances = scale(client, &name, wanted).with_context(context)?;
        let mut stdout = io::stdout().lock();
        for process in instances
            .into_iter()
            .filter(|process| !before.iter().any(|old| old.id == process.id))
        {
            match start::wait_until_ready(client, process, true)
                .and_then(|process| start::report(&process, true))
            {
                Ok(line) => {
                    outcomes.succeeded();
                    writeln!(stdout, "{line}")?;
                }
                Err(err) => outcomes.failed(format!("{err:#}")),
            }
        }
    }

    let after = app_instances(client, &name)?;
    let changes = changes(before, &after);
    if !changes.is_empty() {
        writeln!(
            io::stdout().lock(),
            "'{name}' (from {}) changed: {}",
            config.shown(),
            changes.join(", ")
        )?;
    }
    Ok(())
}

/// `process.scale` of `name` to `count` instances: its instances then.
fn scale(client: &mut Client, name: &str, count: u32) -> Result<Vec<ProcessInfo>> {
    let params = ScaleParams {
        name: name.to_owned(),
        to: Some(count),
        by: None,
    };
    block_on(client.scale(params))
        .map_err(|err| explain_change(err, &format!("the scaling of '{name}'")))
}

/// The instances of the app `name`, by instance number.
pub fn app_instances(client: &mut Client, name: &str) -> Result<Vec<ProcessInfo>> {
    let mut instances: Vec<ProcessInfo> = block_on(client.list())
        .map_err(explain)?
        .into_iter()
        .filter(|process| process.name == name)
        .collect();
    instances.sort_by_key(|process| process.instance);
    Ok(instances)
}

/// What differs between an app's instances `before` and `after`, one phrase per setting
/// (`args ["one"] -> ["two"]`, `kill timeout 5s -> 3s`, `instances 2 -> 3`), as the
/// lowest-numbered instances show them. The environment is not shown: its values may be
/// secrets.
fn changes(before: &[ProcessInfo], after: &[ProcessInfo]) -> Vec<String> {
    let mut changes = Vec::new();
    if let (Some(old), Some(new)) = (before.first(), after.first()) {
        let mut differs = |what: &str, old: String, new: String| {
            if old != new {
                changes.push(format!("{what} {old} -> {new}"));
            }
        };
        differs("script", old.script.clone(), new.script.clone());
        differs(
            "interpreter",
            or_none(&old.interpreter),
            or_none(&new.interpreter),
        );
        differs("args", format!("{:?}", old.args), format!("{:?}", new.args));
        differs("cwd", old.cwd.clone(), new.cwd.clone());
        differs(
            "kill timeout",
            millis(old.kill_timeout_ms),
            millis(new.kill_timeout_ms),
        );
        differs(
            "kill signal",
            old.kill_signal.clone(),
            new.kill_signal.clone(),
        );
        differs(
            "autorestart",
            old.autorestart.to_string(),
            new.autorestart.to_string(),
        );
        differs(
            "max restarts",
            old.max_restarts.to_string(),
            new.max_restarts.to_string(),
        );
        differs(
            "min uptime",
            millis(old.min_uptime_ms),
            millis(new.min_uptime_ms),
        );
        differs(
            "max log size",
            old.max_log_bytes
                .map_or("none".to_owned(), |b| format!("{b} bytes")),
            new.max_log_bytes
                .map_or("none".to_owned(), |b| format!("{b} bytes")),
        );
        differs(
            "log files",
            old.log_files.to_string(),
            new.log_files.to_string(),
        );
        differs("ready", or_none(&old.ready), or_none(&new.ready));
        differs(
            "ready timeout",
            old.ready_timeout_ms.map_or("none".to_owned(), millis),
            new.ready_timeout_ms.map_or("none".to_owned(), millis),
        );
        differs("restart", old.restart.to_string(), new.restart.to_string());
        differs(
            "stop exit codes",
            format!("{:?}", old.stop_exit_codes),
            format!("{:?}", new.stop_exit_codes),
        );
        differs(
            "watch",
            format!("{:?}", old.watch),
            format!("{:?}", new.watch),
        );
        differs(
            "watch ignore",
            format!("{:?}", old.watch_ignore),
            format!("{:?}", new.watch_ignore),
        );
        differs(
            "watch delay",
            old.watch_delay_ms.map_or("none".to_owned(), millis),
            new.watch_delay_ms.map_or("none".to_owned(), millis),
        );
        differs(
            "max memory restart",
            old.max_memory_bytes.map_or("none".to_owned(), format_limit),
            new.max_memory_bytes.map_or("none".to_owned(), format_limit),
        );
        differs(
            "max memory for",
            old.max_memory_for_ms.map_or("none".to_owned(), millis),
            new.max_memory_for_ms.map_or("none".to_owned(), millis),
        );
        differs(
            "cron restart",
            or_none(&old.cron_restart),
            or_none(&new.cron_restart),
        );
        differs("time", old.time.to_string(), new.time.to_string());
    }
    if before.len() != after.len() {
        changes.push(format!("instances {} -> {}", before.len(), after.len()));
    }
    changes
}

fn or_none(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "none".to_owned())
}

fn millis(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use velos_proto::ProcessStatus;

    use super::*;
    use crate::output::tests::process;

    #[test]
    fn changes_name_each_setting_that_differs_and_the_count() {
        let mut old = process(0, "web", ProcessStatus::Running);
        old.args = vec!["one".into()];
        old.kill_timeout_ms = 5000;
        let mut new = old.clone();
        new.args = vec!["two".into()];
        new.kill_timeout_ms = 3000;
        let mut third = new.clone();
        third.instance = 1;
        assert_eq!(
            changes(&[old.clone()], &[new.clone(), third]),
            [
                r#"args ["one"] -> ["two"]"#,
                "kill timeout 5s -> 3s",
                "instances 1 -> 2"
            ]
        );
        assert!(changes(&[old.clone()], &[old]).is_empty());
    }

    #[test]
    fn changes_name_the_restart_policy_and_the_triggers() {
        let old = process(0, "web", ProcessStatus::Running);
        let mut new = old.clone();
        new.restart = velos_proto::RestartMode::Always;
        new.stop_exit_codes = vec![3];
        new.watch = vec!["/srv/web".into()];
        new.max_memory_bytes = Some(200 << 20);
        new.max_memory_for_ms = Some(3000);
        new.cron_restart = Some("0 3 * * *".into());
        new.time = true;
        assert_eq!(
            changes(&[old], &[new]),
            [
                "restart on-failure -> always",
                "stop exit codes [] -> [3]",
                r#"watch [] -> ["/srv/web"]"#,
                "max memory restart none -> 200 MiB",
                "max memory for none -> 3s",
                "cron restart none -> 0 3 * * *",
                "time false -> true",
            ]
        );
    }
}
