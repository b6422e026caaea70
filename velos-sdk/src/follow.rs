//! [`LogFollow`]: the last lines of a process, then every new line as it is written.
//!
//! Made by [`crate::Client::follow_logs`] on a connection of its own (see
//! `subscription`). The daemon answers `log.follow` with the last lines, kept in
//! [`LogFollow::initial`], then sends a `log.line` notification per new line and a
//! `log.gap` when this reader fell so far behind that lines were skipped (the daemon
//! never waits for a slow reader), and a `log.end` when a followed process is deleted.
//! The stream ends when the daemon closes the connection, as it does when it shuts down
//! or every followed process was deleted; dropping the [`LogFollow`] closes it from this
//! side.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;
use velos_proto::rpc::notification;
use velos_proto::{LogEnd, LogGap, LogLine, LogLines};

use crate::Result;
use crate::subscription::Subscription;

/// One item of a [`LogFollow`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowEvent {
    /// A line a followed process wrote.
    Line(LogLine),
    /// This many lines were skipped because this reader fell behind.
    Gap(u64),
    /// A followed process is gone (deleted) and sends no more lines; when the follow
    /// named only it, the stream ends next.
    Ended(LogEnd),
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
        self.get_mut()
            .subscription
            .poll_decoded(cx, |method, params| match method {
                notification::LOG_LINE => Some(params.decode::<LogLine>().map(FollowEvent::Line)),
                notification::LOG_GAP => Some(
                    params
                        .decode::<LogGap>()
                        .map(|gap| FollowEvent::Gap(gap.dropped)),
                ),
                notification::LOG_END => Some(params.decode::<LogEnd>().map(FollowEvent::Ended)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::StreamExt;
    use futures_lite::future::block_on;
    use velos_proto::{ErrorCode, LogReadParams, Request, Response, Target, frame, rpc};

    use super::*;
    use crate::Client;
    use crate::Error;
    use crate::fake_daemon::{self, Answer, FakeDaemon, log_line, notification};

    fn initial() -> LogLines {
        LogLines {
            next: None,
            lines: vec![log_line("before")],
            warnings: vec!["api: disk full".into()],
        }
    }

    /// A daemon answering `log.follow` with `initial()` then `then`, and everything
    /// else correctly.
    fn following(then: impl Fn() -> Vec<Answer> + Send + 'static) -> FakeDaemon {
        FakeDaemon::start(move |msgid, request| match request {
            Request::LogFollow(_) => {
                let mut answers = vec![fake_daemon::ok(msgid, &Response::LogFollow(initial()))];
                answers.extend(then());
                answers
            }
            request => vec![fake_daemon::answer_correctly(msgid, request)],
        })
    }

    fn connect(daemon: &FakeDaemon) -> Client {
        block_on(Client::connect(daemon.socket())).expect("connect to the fake daemon")
    }

    #[test]
    fn follow_gives_the_initial_lines_then_lines_and_gaps_until_the_daemon_closes() {
        let daemon = following(|| {
            vec![
                notification(notification::LOG_LINE, &log_line("one")),
                notification(notification::LOG_GAP, &LogGap { dropped: 3 }),
                notification("log.from_the_future", &LogGap { dropped: 1 }),
                notification(notification::LOG_LINE, &log_line("two")),
                Answer::Close,
            ]
        });
        let mut client = connect(&daemon);
        let mut follow = block_on(client.follow_logs("api", 5)).unwrap();
        assert_eq!(follow.initial(), &initial());
        let events: Vec<FollowEvent> = block_on((&mut follow).map(Result::unwrap).collect());
        assert_eq!(
            events,
            [
                FollowEvent::Line(log_line("one")),
                FollowEvent::Gap(3),
                FollowEvent::Line(log_line("two")),
            ]
        );
        assert!(
            block_on(follow.next()).is_none(),
            "ended streams stay ended"
        );
        assert_eq!(
            daemon.next_request().1,
            Request::LogFollow(LogReadParams {
                cursor: None,
                target: Target::Name("api".into()),
                lines: 5
            })
        );
        // The follow had a connection of its own: the client's still answers.
        assert_eq!(block_on(client.ping()).unwrap(), fake_daemon::ping_info());
        assert_eq!(follow.take_initial(), initial());
        assert!(follow.initial().lines.is_empty());
    }

    #[test]
    fn many_lines_in_one_write_all_arrive_in_order() {
        let daemon = following(|| {
            let mut bytes = Vec::new();
            for i in 0..3000 {
                let payload = rpc::encode_notification(
                    notification::LOG_LINE,
                    &log_line(&format!("line {i}")),
                )
                .unwrap();
                bytes.extend(frame::encode_frame(&payload).unwrap());
            }
            vec![Answer::Bytes(bytes), Answer::Close]
        });
        let client = connect(&daemon);
        let follow = block_on(client.follow_logs(Target::All, 0)).unwrap();
        let texts: Vec<String> = block_on(
            follow
                .map(|event| match event.unwrap() {
                    FollowEvent::Line(line) => String::from_utf8(line.line).unwrap(),
                    other => panic!("expected a line, got {other:?}"),
                })
                .collect(),
        );
        let expected: Vec<String> = (0..3000).map(|i| format!("line {i}")).collect();
        assert_eq!(texts, expected);
    }

    #[test]
    fn following_an_unknown_process_is_the_daemons_error() {
        let daemon = FakeDaemon::start(|msgid, _| {
            vec![fake_daemon::error(
                msgid,
                ErrorCode::NotFound,
                "no process named 'nope'",
            )]
        });
        let client = connect(&daemon);
        match block_on(client.follow_logs("nope", 5)) {
            Err(Error::Daemon { code, message }) => {
                assert_eq!(code, ErrorCode::NotFound);
                assert_eq!(message, "no process named 'nope'");
            }
            other => panic!("expected a daemon error, got {other:?}"),
        }
    }

    #[test]
    fn dropping_a_follow_closes_its_connection() {
        let daemon = following(Vec::new);
        let client = connect(&daemon);
        let follow = block_on(client.follow_logs("api", 1)).unwrap();
        assert!(!daemon.has_closed());
        drop(follow);
        daemon.wait_closed();
    }

    #[test]
    fn a_connection_cut_inside_a_frame_is_one_error_then_the_end() {
        let daemon = following(|| {
            let payload =
                rpc::encode_notification(notification::LOG_LINE, &log_line("cut")).unwrap();
            let bytes = frame::encode_frame(&payload).unwrap();
            vec![
                Answer::Bytes(bytes[..bytes.len() - 2].to_vec()),
                Answer::Close,
            ]
        });
        let client = connect(&daemon);
        let mut follow = block_on(client.follow_logs("api", 1)).unwrap();
        let first = block_on(follow.next());
        assert!(matches!(first, Some(Err(Error::Disconnected))), "{first:?}");
        assert!(block_on(follow.next()).is_none());
    }

    #[test]
    fn an_unreadable_payload_is_an_error_and_the_stream_goes_on() {
        let daemon = following(|| {
            vec![
                // 0xc1 is never used in MessagePack.
                Answer::Frame(vec![0xc1]),
                notification(notification::LOG_LINE, &log_line("after")),
                Answer::Close,
            ]
        });
        let client = connect(&daemon);
        let mut follow = block_on(client.follow_logs("api", 1)).unwrap();
        let first = block_on(follow.next());
        assert!(matches!(first, Some(Err(Error::Protocol(_)))), "{first:?}");
        let second = block_on(follow.next());
        assert!(
            matches!(&second, Some(Ok(FollowEvent::Line(line))) if line.line == b"after"),
            "{second:?}"
        );
        assert!(block_on(follow.next()).is_none());
    }

    #[test]
    fn a_bad_frame_header_is_one_error_then_the_end() {
        let daemon = following(|| {
            vec![
                Answer::Bytes(b"HTTP/1.1 200 OK\r\n\r\n".to_vec()),
                notification(notification::LOG_LINE, &log_line("never")),
            ]
        });
        let client = connect(&daemon);
        let mut follow = block_on(client.follow_logs("api", 1)).unwrap();
        let first = block_on(follow.next());
        assert!(
            matches!(
                first,
                Some(Err(Error::Protocol(velos_proto::Error::BadMagic { .. })))
            ),
            "{first:?}"
        );
        assert!(block_on(follow.next()).is_none());
    }

    #[tokio::test]
    async fn follow_works_under_tokio() {
        let daemon = following(|| {
            vec![
                notification(notification::LOG_LINE, &log_line("tokio")),
                Answer::Close,
            ]
        });
        let client = Client::connect(daemon.socket()).await.unwrap();
        let mut follow = client.follow_logs("api", 1).await.unwrap();
        let event = follow.next().await.unwrap().unwrap();
        assert_eq!(event, FollowEvent::Line(log_line("tokio")));
        assert!(follow.next().await.is_none());
    }

    #[test]
    fn follows_can_move_between_threads() {
        fn assert_send_sync_unpin<T: Send + Sync + Unpin>() {}
        assert_send_sync_unpin::<LogFollow>();
        fn assert_send<T: Send>(_: &T) {}
        let daemon = following(Vec::new);
        let client = connect(&daemon);
        assert_send(&client.follow_logs("api", 1));
    }
}
