//! `velos scale <name> N|+N|-N`: as many instances of an app as asked.
//!
//! The count is read here (`-1` is a count, not a flag: clap takes it as a value), the
//! daemon does the rest (`process.scale`) and answers with the app's instances once the
//! new ones are spawned; new instances of an app with a ready mode are then waited for
//! until ready, as `velos start` waits. One line per instance on stdout.

use std::io::{self, Write};

use anyhow::{Result, anyhow};
use futures_lite::future::block_on;
use velos_proto::{ProcessInfo, ProcessStatus, ScaleParams};

use super::{daemon, explain_change, start};

/// Runs `velos scale`.
pub fn run(name: &str, count: &str) -> Result<()> {
    let params = ScaleParams::parse(name, count).map_err(|err| anyhow!(err))?;
    let what = format!("the scaling of '{name}'");
    let mut client = daemon()?;
    let instances = block_on(client.scale(params)).map_err(|err| explain_change(err, &what))?;
    // New instances of an app with a ready mode are `starting`: wait until each is ready,
    // as `velos start` does.
    let mut failure = None;
    let labelled = instances.len() > 1;
    let mut ready = Vec::with_capacity(instances.len());
    for process in instances {
        if process.status != ProcessStatus::Starting {
            ready.push(process);
            continue;
        }
        match start::wait_until_ready(&mut client, process, labelled) {
            Ok(process) => ready.push(process),
            Err(err) => {
                failure.get_or_insert(err);
            }
        }
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", summary(name, &ready))?;
    for process in &ready {
        writeln!(stdout, "  {}", instance_line(process))?;
    }
    failure.map_or(Ok(()), Err)
}

/// `'web' has 3 instances`
fn summary(name: &str, instances: &[ProcessInfo]) -> String {
    match instances.len() {
        1 => format!("'{name}' has 1 instance"),
        n => format!("'{name}' has {n} instances"),
    }
}

/// `web:2 (id 5, pid 1234, running)`
fn instance_line(process: &ProcessInfo) -> String {
    let label = format!("{}:{}", process.name, process.instance);
    match process.pid {
        Some(pid) => format!("{label} (id {}, pid {pid}, {})", process.id, process.status),
        None => format!("{label} (id {}, {})", process.id, process.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::process;

    #[test]
    fn each_instance_gets_a_line() {
        let mut web = process(5, "web", ProcessStatus::Running);
        web.instance = 2;
        web.pid = Some(1234);
        assert_eq!(instance_line(&web), "web:2 (id 5, pid 1234, running)");
        assert_eq!(summary("web", &[web.clone(), web]), "'web' has 2 instances");
    }
}
