//! Lists the processes velos manages, like a bare `velos list`, with the async client.
//!
//! Run it while a daemon is up (`velos ping` starts one), for `$VELOS_HOME` or `~/.velos`:
//!
//! ```text
//! cargo run -p velos-sdk --example list
//! ```
//!
//! Any executor drives the client; this one uses `futures_lite::future::block_on`.

use std::process::ExitCode;

async fn list() -> velos_sdk::Result<()> {
    let mut client = velos_sdk::Client::connect_default().await?;
    for process in client.list().await? {
        let pid = process.pid.map_or("-".into(), |pid| pid.to_string());
        println!(
            "{:>3} {:<20} {:>7} {}",
            process.id, process.name, pid, process.status
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match futures_lite::future::block_on(list()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message, then its causes (`Protocol` and `Io` keep theirs as `source()`).
            let mut line = format!("error: {error}");
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                line.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
