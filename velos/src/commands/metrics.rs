//! `velos metrics [enable [--listen ADDR] | disable | status [--json]]`: the daemon's
//! Prometheus endpoint, and the metrics text once for scripts.
//!
//! The daemon does the work (`metrics.*`, see docs/protocol.md); this prints its answer:
//! the text as it is on stdout, a state as one line (or JSON).

use std::io::{self, Write};

use anyhow::Result;
use futures_lite::future::block_on;
use velos_proto::MetricsState;

use super::{daemon, explain_change, retrying};
use crate::cli::MetricsAction;

/// Runs `velos metrics`.
pub fn run(action: Option<MetricsAction>) -> Result<()> {
    let state = match action {
        None => {
            let text = retrying(|client| block_on(client.metrics()))?;
            io::stdout().lock().write_all(text.as_bytes())?;
            return Ok(());
        }
        Some(MetricsAction::Enable { listen }) => {
            block_on(daemon()?.metrics_enable(Some(listen.clone())))
                .map_err(|err| explain_change(err, &format!("serving metrics on {listen}")))?
        }
        Some(MetricsAction::Disable) => block_on(daemon()?.metrics_disable())
            .map_err(|err| explain_change(err, "turning metrics off"))?,
        Some(MetricsAction::Status { json: true }) => {
            let state = retrying(|client| block_on(client.metrics_status()))?;
            writeln!(io::stdout().lock(), "{}", serde_json::to_string(&state)?)?;
            return Ok(());
        }
        Some(MetricsAction::Status { json: false }) => {
            retrying(|client| block_on(client.metrics_status()))?
        }
    };
    writeln!(io::stdout().lock(), "{}", describe(&state))?;
    Ok(())
}

/// One line about `state`.
fn describe(state: &MetricsState) -> String {
    match (state.enabled, &state.address, &state.error) {
        (false, _, Some(error)) => format!("metrics: off ({error})"),
        (false, _, None) => "metrics: off ('velos metrics enable' serves them)".to_owned(),
        (true, Some(address), _) => {
            let given = match &state.listen {
                Some(listen) if listen != address => format!(" (--listen {listen})"),
                _ => String::new(),
            };
            format!("metrics: on, serving http://{address}/metrics, /healthz and /readyz{given}")
        }
        (true, None, error) => format!(
            "metrics: on for {}, but not served: {}",
            state.listen.as_deref().unwrap_or("?"),
            error.as_deref().unwrap_or("unknown reason")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_one_line() {
        assert!(describe(&MetricsState::default()).starts_with("metrics: off"));
        let on = MetricsState {
            enabled: true,
            listen: Some("127.0.0.1:0".into()),
            address: Some("127.0.0.1:41234".into()),
            error: None,
        };
        assert_eq!(
            describe(&on),
            "metrics: on, serving http://127.0.0.1:41234/metrics, /healthz and /readyz (--listen 127.0.0.1:0)"
        );
        let failed = MetricsState {
            address: None,
            error: Some("cannot listen on 127.0.0.1:9615: in use".into()),
            ..on
        };
        assert_eq!(
            describe(&failed),
            "metrics: on for 127.0.0.1:0, but not served: cannot listen on 127.0.0.1:9615: in use"
        );
    }
}
