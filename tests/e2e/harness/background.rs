//! [`Background`]: an SDK stream (a blocking iterator that waits for the daemon) read in a
//! thread, so a test takes its items with a bound and learns when it ends.

use std::fmt::Debug;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use super::WAIT;

/// The items of an iterator that runs in its own thread.
pub struct Background<T> {
    what: String,
    /// `None` once the iterator has ended.
    items: mpsc::Receiver<Option<T>>,
}

impl<T: Debug + Send + 'static> Background<T> {
    /// Reads `items` in a thread, which ends with the iterator (when the daemon closes the
    /// stream; at the latest when the test's daemon is killed).
    pub fn new(what: &str, items: impl Iterator<Item = T> + Send + 'static) -> Background<T> {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for item in items {
                if sender.send(Some(item)).is_err() {
                    return;
                }
            }
            let _ = sender.send(None);
        });
        Background {
            what: what.to_owned(),
            items: receiver,
        }
    }

    /// The next item, or `None` when the stream has ended; fails the test after [`WAIT`].
    #[track_caller]
    pub fn next(&mut self) -> Option<T> {
        match self.items.recv_timeout(WAIT) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{} gave nothing for {WAIT:?}", self.what)
            }
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Items until one satisfies `wanted`, which is the last one returned; fails the test
    /// if the stream ends first, or after [`WAIT`] in all.
    #[track_caller]
    pub fn until(&mut self, what: &str, wanted: impl Fn(&T) -> bool) -> Vec<T> {
        let deadline = Instant::now() + WAIT;
        let mut items = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.items.recv_timeout(left) {
                Ok(Some(item)) => {
                    let done = wanted(&item);
                    items.push(item);
                    if done {
                        return items;
                    }
                }
                Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("{} ended before {what}; it gave:\n{items:#?}", self.what)
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out after {WAIT:?} waiting for {what} from {}; it gave:\n{items:#?}",
                    self.what
                ),
            }
        }
    }

    /// The items until the stream ends, within [`WAIT`].
    #[track_caller]
    pub fn until_end(&mut self) -> Vec<T> {
        let deadline = Instant::now() + WAIT;
        let mut items = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.items.recv_timeout(left) {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return items,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} did not end within {WAIT:?}; it gave:\n{items:#?}",
                    self.what
                ),
            }
        }
    }
}
