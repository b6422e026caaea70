//! `velos scale <name> N|+N|-N`: as many instances of an app as asked.
//!
//! The count is read here (`-1` is a count, not a flag: clap takes it as a value), the
//! daemon does the rest (`process.scale`) and answers with the app's instances, one line
//! each on stdout.

use std::io::{self, Write};

use anyhow::{Result, anyhow};
use futures_lite::future::block_on;
use velos_proto::{ProcessInfo, ScaleParams};

use super::{daemon, explain_change};

/// Runs `velos scale`.
pub fn run(name: &str, count: &str) -> Result<()> {
    let params = ScaleParams::parse(name, count).map_err(|err| anyhow!(err))?;
    let what = format!("the scaling of '{name}'");
    let instances = block_on(daemon()?.scale(params)).map_err(|err| explain_change(err, &what))?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", summary(name, &instances))?;
    for process in &instances {
        writeln!(stdout, "  {}", instance_line(process))?;
    }
    Ok(())
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
    use velos_proto::ProcessStatus;

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
