//! What `vaultkeeper status` shows about the broker link, shared between the link and readers.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A snapshot of the broker link for `vaultkeeper status` (never holds a password).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AmqpStatus {
    /// A connection and channel are open right now.
    pub connected: bool,
    /// The broker URL, password replaced by `***`.
    pub url: String,
    /// The exchange events go to.
    pub exchange: String,
    /// Events confirmed by the broker since start.
    pub published: u64,
    /// Heartbeat messages confirmed since start.
    pub heartbeats: u64,
    /// Successful connections since start (more than one means reconnections).
    pub connects: u64,
    /// Failed connection attempts and broken links since start.
    pub errors: u64,
    /// The last error, already scrubbed of secrets.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the last confirm arrived.
    pub last_confirm_at: Option<DateTime<Utc>>,
}

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
