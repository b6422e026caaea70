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
use velos_proto::ProcessEvent;
use velos_proto::rpc::notification;

use crate::Result;
use crate::subscription::Subscription;

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
        self.get_mut()
            .subscription
            .poll_decoded(cx, |method, params| {
                (method == notification::PROCESS_EVENT).then(|| params.decode())
            })
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::StreamExt;
    use futures_lite::future::block_on;
    use velos_proto::{EventKind, Request, Response};

    use super::*;
    use crate::Client;
    use crate::Error;
    use crate::fake_daemon::{self, Answer, FakeDaemon, notification};

    pub(crate) fn event(kind: EventKind, name: &str) -> ProcessEvent {
        ProcessEvent {
            kind,
            id: 0,
            name: name.into(),
            instance: 0,
            pid: None,
            exit_code: None,
            signal: None,
            restarts: 0,
            restart_in_ms: None,
            restart_reason: None,
            reason: None,
            time_ms: 1,
        }
    }

    /// A daemon answering `events.subscribe` with nil, then `then`, and everything
    /// else correctly.
    pub(crate) fn subscribed(then: impl Fn() -> Vec<Answer> + Send + 'static) -> FakeDaemon {
        FakeDaemon::start(move |msgid, request| match request {
            Request::Subscribe => {
                let mut answers = vec![fake_daemon::ok(msgid, &Response::Subscribe)];
                answers.extend(then());
                answers
            }
            request => vec![fake_daemon::answer_correctly(msgid, request)],
        })
    }

    #[test]
    fn events_arrive_in_order_until_the_daemon_closes() {
        let daemon = subscribed(|| {
            let mut exited = event(EventKind::Exited, "api");
            exited.exit_code = Some(1);
            vec![
                notification(
                    notification::PROCESS_EVENT,
                    &event(EventKind::Started, "api"),
                ),
                notification("process.teleported", &event(EventKind::Started, "x")),
                notification(notification::PROCESS_EVENT, &exited),
                Answer::Close,
            ]
        });
        let mut client = block_on(Client::connect(daemon.socket())).unwrap();
        let events = block_on(client.events()).unwrap();
        let got: Vec<ProcessEvent> = block_on(events.map(Result::unwrap).collect());
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], event(EventKind::Started, "api"));
        assert_eq!(
            (got[1].kind, got[1].exit_code),
            (EventKind::Exited, Some(1))
        );
        assert_eq!(daemon.next_request().1, Request::Subscribe);
        // The client itself still answers.
        assert_eq!(block_on(client.list()).unwrap()[0].name, "api");
    }

    #[test]
    fn an_event_that_does_not_decode_is_an_error_and_the_stream_goes_on() {
        let daemon = subscribed(|| {
            vec![
                notification(notification::PROCESS_EVENT, &"not an event"),
                notification(
                    notification::PROCESS_EVENT,
                    &event(EventKind::Deleted, "api"),
                ),
                Answer::Close,
            ]
        });
        let client = block_on(Client::connect(daemon.socket())).unwrap();
        let mut events = block_on(client.events()).unwrap();
        assert!(matches!(
            block_on(events.next()),
            Some(Err(Error::Protocol(_)))
        ));
        assert_eq!(
            block_on(events.next()).unwrap().unwrap().kind,
            EventKind::Deleted
        );
        assert!(block_on(events.next()).is_none());
    }

    #[test]
    fn events_are_send_sync_and_unpin() {
        fn assert_send_sync_unpin<T: Send + Sync + Unpin>() {}
        assert_send_sync_unpin::<Events>();
    }
}
