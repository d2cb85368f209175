//! The daemon's handle on a running watcher. Its calls never block: the daemon's async loop
//! must not wait on the watcher's queue. When the queue is full, the request is left in
//! shared flags the watcher reads on every turn of its loop (a full queue means it is busy
//! and will turn soon).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

use vaultkeeper_vaultfs::WatchConfig;

use super::Msg;
use super::queue;

/// Requests left for the watcher when its queue was full.
#[derive(Default)]
pub(crate) struct Requests {
    rescan: AtomicBool,
    config: Mutex<Option<WatchConfig>>,
}

impl Requests {
    /// True once after a rescan was requested through a full queue.
    pub(crate) fn take_rescan(&self) -> bool {
        self.rescan.swap(false, Ordering::SeqCst)
    }

    /// The newest settings sent by [`Control::reload`], once.
    pub(crate) fn take_config(&self) -> Option<WatchConfig> {
        // A poisoned lock only means a sender panicked mid-store; the slot is still valid.
        self.config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// A handle to send control messages to a running watcher.
#[derive(Clone)]
pub struct Control {
    tx: queue::Sender,
    requests: Arc<Requests>,
}

impl Control {
    pub(crate) fn new(tx: queue::Sender, requests: Arc<Requests>) -> Control {
        Control { tx, requests }
    }

    /// Asks for a full rescan, without waiting.
    pub fn rescan(&self, reason: &'static str) {
        match self.tx.try_send(Msg::Rescan(reason)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => self.requests.rescan.store(true, Ordering::SeqCst),
        }
    }

    /// Applies new watch settings (then rescans), without waiting. Only the newest settings
    /// count, so they wait in a slot and the message only wakes the watcher.
    pub fn reload(&self, cfg: WatchConfig) {
        *self
            .requests
            .config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cfg);
        // Full: the watcher is busy and takes the slot on its next turn.
        let _ = self.tx.try_send(Msg::Reload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_leaves_the_request_instead_of_blocking() {
        let (tx, rx) = queue::bounded(1);
        let requests = Arc::new(Requests::default());
        let control = Control::new(tx, Arc::clone(&requests));
        control.rescan("first");
        control.rescan("second: queue full");
        control.reload(WatchConfig::default());
        assert!(matches!(rx.try_recv(), Ok(Msg::Rescan("first"))));
        assert!(rx.try_recv().is_err(), "nothing else was queued");
        assert!(requests.take_rescan());
        assert!(!requests.take_rescan(), "taken once");
        assert!(requests.take_config().is_some());
        assert!(requests.take_config().is_none(), "taken once");
    }
}
