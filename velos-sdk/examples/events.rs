//! Prints what happens to the processes velos manages (started, exited, restarting,
//! errored, stopped, deleted) as it happens, with the async client's `events()` stream.
//!
//! Run it while a daemon is up (`velos ping` starts one), for `$VELOS_HOME` or `~/.velos`,
//! then start, stop or crash something from another terminal; Ctrl-C ends it:
//!
//! ```text
//! cargo run -p velos-sdk --example events
//! ```

use std::process::ExitCode;

use futures_lite::StreamExt;

async fn watch() -> velos_sdk::Result<()> {
    let client = velos_sdk::Client::connect_default().await?;
    let mut events = client.events().await?;
    while let Some(event) = events.next().await {
        let event = event?;
        let detail = match (
            event.exit_code,
            event.signal,
            event.restart_in_ms,
            event.reason,
        ) {
            (Some(code), _, _, _) => format!("code {code}"),
            (_, Some(signal), _, _) => format!("signal {signal}"),
            (_, _, Some(ms), _) => format!("in {ms} ms"),
            (_, _, _, Some(reason)) => reason,
            _ => String::new(),
        };
        println!("{:<12} {:?} {detail}", event.name, event.kind);
    }
    eprintln!("the daemon stopped");
    Ok(())
}

fn main() -> ExitCode {
    match futures_lite::future::block_on(watch()) {
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
