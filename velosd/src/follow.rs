//! The queue between the log collectors and one `log.follow` connection.
//!
//! Collectors never wait for a follower: each line is encoded once as a `log.line`
//! frame, shared by every follower, and put on each follower's queue. A queue holds at
//! most [`FOLLOW_QUEUE_BYTES`] of frames; a line that does not fit pushes the *oldest*
//! lines out, counted as dropped. The connection's task takes whole frames off the front
//! in batches of up to [`BATCH_BYTES`] and writes each batch at once; when lines were
//! dropped, a `log.gap` frame saying how many comes first, right where they were. So a
//! follower that keeps up gets every line, and one that falls behind gets the gap notice
//! as soon as it reads again, followed by the newest lines: never silence while lines
//! are queued.
//!
//! Notices (a followed process was deleted) are never dropped. The stream ends once every
//! [`Follower`] handle is gone (the processes it followed were deleted, or the daemon is
//! exiting) and the queue is empty. Memory: at most [`FOLLOW_QUEUE_BYTES`] queued plus
//! one batch being written per follower; an emptied queue gives its room back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_channel::{Receiver, Sender};
use velos_proto::rpc::{self, notification};
use velos_proto::{LogGap, frame};

/// Bytes of frames queued for one follower at most.
pub const FOLLOW_QUEUE_BYTES: usize = 1024 * 1024;
/// Bytes a connection writes at a time (whole frames; a single larger frame goes alone).
pub const BATCH_BYTES: usize = 64 * 1024;
/// What a queued frame costs besides its bytes: the queue slot and the allocation.
const ENTRY_OVERHEAD: usize = 32;
/// Queue slots kept when a queue empties; more are given back.
const KEPT_SLOTS: usize = 256;

/// A frame on its way, shared by every follower it goes to.
pub type Frame = Arc<[u8]>;

#[derive(Debug, Default)]
struct Queue {
    /// Frames oldest first, each flagged when it may be dropped (a line).
    frames: VecDeque<(Frame, bool)>,
    /// Their bytes, with [`ENTRY_OVERHEAD`] each.
    bytes: usize,
    /// Lines dropped since the last frame taken.
    dropped: u64,
    /// Notices that were at the front when room was needed: sent before anything else.
    notices: Vec<Frame>,
}

fn cost(frame: &Frame) -> usize {
    frame.len() + ENTRY_OVERHEAD
}

impl Queue {
    fn push(&mut self, frame: &Frame, droppable: bool) {
        self.bytes += cost(frame);
        self.frames.push_back((Arc::clone(frame), droppable));
        while self.bytes > FOLLOW_QUEUE_BYTES {
            let Some((old, droppable)) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= cost(&old);
            if droppable {
                self.dropped += 1;
            } else {
                self.notices.push(old);
            }
        }
    }

    /// Appends to `out` what goes next: kept notices, the gap, then whole frames up to
    /// [`BATCH_BYTES`] (at least one).
    fn take(&mut self, out: &mut Vec<u8>) {
        for notice in self.notices.drain(..) {
            out.extend_from_slice(&notice);
        }
        if self.dropped > 0 {
            let gap = LogGap {
                dropped: self.dropped,
            };
            if let Ok(frame) = rpc::encode_notification(notification::LOG_GAP, &gap)
                .and_then(|payload| frame::encode_frame(&payload))
            {
                out.extend_from_slice(&frame);
            }
            self.dropped = 0;
        }
        while let Some((frame, _)) = self.frames.front() {
            if !out.is_empty() && out.len() + frame.len() > BATCH_BYTES {
                break;
            }
            out.extend_from_slice(frame);
            self.bytes -= cost(frame);
            self.frames.pop_front();
        }
        if self.frames.is_empty() && self.frames.capacity() > KEPT_SLOTS {
            self.frames.shrink_to(KEPT_SLOTS);
        }
    }
}

/// The collectors' end of one follower's queue; cloned onto every ring it follows.
#[derive(Debug, Clone)]
pub struct Follower {
    queue: Arc<Mutex<Queue>>,
    wake: Sender<()>,
}

impl Follower {
    /// Queues a line frame, pushing the oldest lines out if there is no room; false once
    /// the connection has gone.
    pub fn offer(&self, frame: &Frame) -> bool {
        self.put(frame, true)
    }

    /// Queues a frame that is never dropped (a notice); false once the connection has gone.
    pub fn notify(&self, frame: &Frame) -> bool {
        self.put(frame, false)
    }

    fn put(&self, frame: &Frame, droppable: bool) -> bool {
        if self.wake.is_closed() {
            return false;
        }
        lock(&self.queue).push(frame, droppable);
        // Full means a wake-up is pending already.
        let _ = self.wake.try_send(());
        true
    }

    /// Whether the connection has gone.
    pub fn is_closed(&self) -> bool {
        self.wake.is_closed()
    }
}

/// The connection's end of a follower's queue.
#[derive(Debug)]
pub struct FollowStream {
    queue: Arc<Mutex<Queue>>,
    wake: Receiver<()>,
}

impl FollowStream {
    /// Waits for frames and appends the next batch to `out` (cleared first); false once
    /// every [`Follower`] is gone and nothing is left.
    pub async fn next_batch(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        loop {
            lock(&self.queue).take(out);
            if !out.is_empty() {
                return true;
            }
            if self.wake.recv().await.is_err() {
                // Every sender is gone: what they queued last is all there is.
                lock(&self.queue).take(out);
                return !out.is_empty();
            }
        }
    }
}

/// A follower's two ends.
pub fn channel() -> (Follower, FollowStream) {
    let queue = Arc::new(Mutex::new(Queue::default()));
    let (wake, woken) = async_channel::bounded(1);
    (
        Follower {
            queue: Arc::clone(&queue),
            wake,
        },
        FollowStream { queue, wake: woken },
    )
}

/// Encodes `params` as a `method` notification frame.
pub fn encode(method: &str, params: &impl serde::Serialize) -> Option<Frame> {
    let payload = rpc::encode_notification(method, params).ok()?;
    frame::encode_frame(&payload).ok().map(Frame::from)
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    // A queue is valid between any two statements: a poisoned one is used as is.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use velos_proto::{Envelope, LogLine, Stream};

    use super::*;

    fn line(text: &str) -> Frame {
        let line = LogLine {
            continued: false,
            id: 0,
            name: "api".into(),
            stream: Stream::Out,
            line: text.as_bytes().to_vec(),
            partial: false,
            time_ms: None,
        };
        encode(notification::LOG_LINE, &line).unwrap()
    }

    /// The notifications in `bytes`, as (method, line text or gap count).
    fn decode(mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let header: &[u8; frame::HEADER_LEN] = bytes[..frame::HEADER_LEN].try_into().unwrap();
            let len = frame::decode_header(header).unwrap() as usize;
            let payload = &bytes[frame::HEADER_LEN..frame::HEADER_LEN + len];
            bytes = &bytes[frame::HEADER_LEN + len..];
            let Envelope::Notification { method, params } = Envelope::decode(payload).unwrap()
            else {
                panic!("not a notification")
            };
            out.push(match method.as_str() {
                notification::LOG_LINE => {
                    let line: LogLine = rpc::from_value(params).unwrap();
                    String::from_utf8(line.line).unwrap()
                }
                notification::LOG_GAP => {
                    let gap: LogGap = rpc::from_value(params).unwrap();
                    format!("gap {}", gap.dropped)
                }
                other => other.to_owned(),
            });
        }
        out
    }

    #[test]
    fn a_follower_that_keeps_up_gets_every_line() {
        let (follower, mut stream) = channel();
        let mut out = Vec::new();
        for i in 0..100 {
            assert!(follower.offer(&line(&i.to_string())));
            assert!(block_on(stream.next_batch(&mut out)));
            assert_eq!(decode(&out), [i.to_string()]);
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_so_before_the_newest() {
        let (follower, mut stream) = channel();
        let total = 100_000;
        for i in 0..total {
            follower.offer(&line(&i.to_string()));
        }
        let notice = encode("log.end", &LogGap { dropped: 0 }).unwrap();
        follower.notify(&notice);
        for i in total..total + 20_000 {
            follower.offer(&line(&i.to_string()));
        }
        drop(follower);
        let mut seen = Vec::new();
        let mut out = Vec::new();
        while block_on(stream.next_batch(&mut out)) {
            assert!(out.len() <= BATCH_BYTES, "a batch of {} bytes", out.len());
            seen.extend(decode(&out));
        }
        // The notice, then one gap, then the newest lines up to the last.
        assert_eq!(seen[0], "log.end");
        let dropped: u64 = seen[1].strip_prefix("gap ").unwrap().parse().unwrap();
        let rest: Vec<u64> = seen[2..].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(dropped + rest.len() as u64, total + 20_000);
        assert_eq!(*rest.last().unwrap(), total + 20_000 - 1);
        assert!(rest.windows(2).all(|pair| pair[1] == pair[0] + 1));
        let queued: usize = rest.len() * (line("100000").len() + ENTRY_OVERHEAD);
        assert!(queued <= FOLLOW_QUEUE_BYTES, "{queued} bytes were queued");
    }

    #[test]
    fn a_gone_connection_refuses_lines() {
        let (follower, stream) = channel();
        drop(stream);
        assert!(!follower.offer(&line("x")));
        assert!(follower.is_closed());
    }
}
