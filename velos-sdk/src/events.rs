//! [`Events`]: what happens to processes (started, exited, restarting, errored, stopped,
//! deleted), as it happens.
//!
//! Made by [`crate::Client::events`] on a connection of its own (see `subscription`).
//! The daemon answers `events.subscribe` with nil, then sends a `process.event`
//! notification per event, for every process, until it closes the connection (as it does
//! when it shuts down); dropping the [`Events`] closes it from this side. A subscriber
//! that does not keep up misses events: the daemon never waits for one.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;
use velos_proto::{ProcessEvent, rpc};

use crate::subscription::Subscription;
use crate::{Error, Result};

/// The notification carrying one event.
const EVENT: &str = "process.event";

/// A stream of [`ProcessEvent`]s: see the module docs.
///
/// # Examples
///
/// ```no_run
/// # async fn example(client: &velos_sdk::Client) -> velos_sdk::Result<()> {
/// use futures_lite::StreamExt;
/// use velos_sdk::EventKind;
///
/// let mut events = client.events().await?;
/// while let Some(event) = events.next().await {
///     let event = event?;
///     if event.kind == EventKind::Errored {
///         eprintln!("'{}' gave up: {}", event.name, event.reason.unwrap_or_default());
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Events {
    subscription: Subscription,
}

impl Events {
    pub(crate) fn new(subscription: Subscription) -> Events {
        Events { subscription }
    }
}

impl Stream for Events {
    type Item = Result<ProcessEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (method, params) = match this.subscription.poll_notification(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(notification))) => notification,
            };
            if method != EVENT {
                // A notification a newer daemon sends that this version does not know.
                continue;
            }
            let event = rpc::from_value::<ProcessEvent>(params).map_err(Error::Protocol);
            return Poll::Ready(Some(event));
        }
    }
}
