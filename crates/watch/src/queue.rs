//! The bounded queue into the watcher thread, from notify's thread and the daemon's controls.
//!
//! std's `sync_channel(n)` allocates and writes all `n` slots when it is made: the 65,536
//! slots of `watch.queue` were 4 MB of an idle daemon's 30 MB. This queue is std's unbounded
//! channel (it allocates small blocks as messages come and frees them as they are read),
//! with the bound kept by a count of the messages in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::Duration;

use super::Msg;

/// A queue that holds at most `cap` messages sent with [`Sender::try_send`].
pub(crate) fn bounded(cap: usize) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::channel();
    let len = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            len: Arc::clone(&len),
            cap,
        },
        Receiver { rx, len },
    )
}

/// The sending side; clones share the bound.
#[derive(Clone)]
pub(crate) struct Sender {
    tx: mpsc::Sender<Msg>,
    len: Arc<AtomicUsize>,
    cap: usize,
}

impl Sender {
    /// Queues `msg` unless the queue holds `cap` messages already.
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), TrySendError<Msg>> {
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.cap {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(TrySendError::Full(msg));
        }
        self.tx.send(msg).map_err(|e| {
            self.len.fetch_sub(1, Ordering::AcqRel);
            TrySendError::Disconnected(e.0)
        })
    }

    /// Queues `msg` past the bound: a stop must get through a queue full of notifications.
    pub(crate) fn send_past_bound(&self, msg: Msg) -> Result<(), mpsc::SendError<Msg>> {
        self.len.fetch_add(1, Ordering::AcqRel);
        self.tx.send(msg)
    }
}

/// The watcher's side.
pub(crate) struct Receiver {
    rx: mpsc::Receiver<Msg>,
    len: Arc<AtomicUsize>,
}

impl Receiver {
    /// The next message, waiting at most `timeout`.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Msg, RecvTimeoutError> {
        let msg = self.rx.recv_timeout(timeout)?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Ok(msg)
    }

    /// The next message if one is queued.
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Result<Msg, mpsc::TryRecvError> {
        let msg = self.rx.try_recv()?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_holds_its_bound_then_refuses_until_a_message_is_read() {
        let (tx, rx) = bounded(3);
        for _ in 0..3 {
            assert!(tx.try_send(Msg::Rescan("fill")).is_ok());
        }
        let other = tx.clone();
        assert!(matches!(
            other.try_send(Msg::Rescan("over")),
            Err(TrySendError::Full(Msg::Rescan("over")))
        ));
        assert!(matches!(rx.try_recv(), Ok(Msg::Rescan("fill"))));
        assert!(other.try_send(Msg::Rescan("room again")).is_ok());
        assert!(tx.try_send(Msg::Rescan("full again")).is_err());
        // A stop gets through the full queue, behind what is in it.
        assert!(tx.send_past_bound(Msg::Stop).is_ok());
        let mut got = Vec::new();
        while let Ok(m) = rx.recv_timeout(Duration::from_millis(1)) {
            got.push(matches!(m, Msg::Stop));
        }
        assert_eq!(got, vec![false, false, false, true]);
        assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
        assert!(
            tx.try_send(Msg::Rescan("empty")).is_ok(),
            "the count came back to 0"
        );
    }

    #[test]
    fn a_send_to_a_stopped_watcher_says_so_and_frees_its_place() {
        let (tx, rx) = bounded(1);
        drop(rx);
        assert!(matches!(
            tx.try_send(Msg::Rescan("gone")),
            Err(TrySendError::Disconnected(_))
        ));
        assert_eq!(tx.len.load(Ordering::Acquire), 0);
    }
}
