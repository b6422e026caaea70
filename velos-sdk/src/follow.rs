//! [`LogFollow`]: the last lines of a process, then every new line as it is written.
//!
//! Made by [`crate::Client::follow_logs`] on a connection of its own (see
//! `subscription`). The daemon answers `log.follow` with the last lines, kept in
//! [`LogFollow::initial`], then sends a `log.line` notification per new line and a
//! `log.gap` when this reader fell so far behind that lines were skipped (the daemon
//! never waits for a slow reader). The stream ends when the daemon closes the
//! connection, as it does when it shuts down; dropping the [`LogFollow`] closes it from
//! this side.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;
use velos_proto::{LogGap, LogLine, LogLines, rpc};

use crate::subscription::Subscription;
use crate::{Error, Result};

/// The notification carrying one new line.
const LINE: &str = "log.line";
/// The notification saying how many lines were skipped.
const GAP: &str = "log.gap";

/// One item of a [`LogFollow`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowEvent {
    /// A line a followed process wrote.
    Line(LogLine),
    /// This many lines were skipped because this reader fell behind.
    Gap(u64),
}

/// A live view of a process's log (or every process's): see the module docs.
///
/// # Examples
///
/// ```no_run
/// # async fn example(client: &velos_sdk::Client) -> velos_sdk::Result<()> {
/// use futures_lite::StreamExt;
/// use velos_sdk::FollowEvent;
///
/// let mut follow = client.follow_logs("api", 10).await?;
/// for line in &follow.initial().lines {
///     println!("{}", String::from_utf8_lossy(&line.line));
/// }
/// while let Some(event) = follow.next().await {
///     match event? {
///         FollowEvent::Line(line) => println!("{}", String::from_utf8_lossy(&line.line)),
///         FollowEvent::Gap(skipped) => eprintln!("{skipped} lines skipped"),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LogFollow {
    initial: LogLines,
    subscription: Subscription,
}

impl LogFollow {
    pub(crate) fn new(initial: LogLines, subscription: Subscription) -> LogFollow {
        LogFollow {
            initial,
            subscription,
        }
    }

    /// The lines written before following began, oldest first, with the daemon's
    /// warnings about the log files.
    pub fn initial(&self) -> &LogLines {
        &self.initial
    }

    /// Takes the initial lines out, leaving none behind (to print them without a copy).
    pub fn take_initial(&mut self) -> LogLines {
        std::mem::take(&mut self.initial)
    }
}

impl Stream for LogFollow {
    type Item = Result<FollowEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (method, params) = match this.subscription.poll_notification(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(Some(Ok(notification))) => notification,
            };
            let event = match method.as_str() {
                LINE => rpc::from_value::<LogLine>(params).map(FollowEvent::Line),
                GAP => rpc::from_value::<LogGap>(params).map(|gap| FollowEvent::Gap(gap.dropped)),
                // A notification a newer daemon sends that this version does not know.
                _ => continue,
            };
            return Poll::Ready(Some(event.map_err(Error::Protocol)));
        }
    }
}
