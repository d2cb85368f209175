//! What `vaultkeeper status` shows about the broker link, shared between the link and readers.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;

/// A snapshot of the broker link for `vaultkeeper status` (never holds a password); the
/// data type lives in core so the binary reads it back without depending on this crate.
pub use vaultkeeper_core::status::AmqpReport as AmqpStatus;

/// A cheap, cloneable reader of a link's [`AmqpStatus`]: the daemon keeps one after
/// handing the [`super::Forwarder`] to the runner.
#[derive(Debug, Clone, Default)]
pub struct StatusHandle(Arc<Mutex<AmqpStatus>>);

impl StatusHandle {
    pub(crate) fn new(url: &str, exchange: &str) -> StatusHandle {
        StatusHandle(Arc::new(Mutex::new(AmqpStatus {
            url: url.to_string(),
            exchange: exchange.to_string(),
            ..AmqpStatus::default()
        })))
    }

    /// The current status.
    pub fn get(&self) -> AmqpStatus {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, AmqpStatus> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way
        // that matters, so a poisoned lock is used as is.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut AmqpStatus)) {
        f(&mut self.lock());
    }

    pub(crate) fn error(&self, message: &str) {
        self.update(|s| {
            s.errors += 1;
            s.last_error = Some(message.to_string());
            s.last_error_at = Some(Utc::now());
        });
    }
}
