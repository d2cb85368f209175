//! Warnings logged once: a path that stays unreadable is not reported at every flush.

use std::collections::HashSet;

use tracing::warn;

/// The warnings already logged (forgotten past a bound, so memory stays flat).
#[derive(Default)]
pub(crate) struct Warned(HashSet<String>);

impl Warned {
    /// Logs `message` unless it was logged before.
    pub(crate) fn warn_once(&mut self, message: String) {
        if self.0.len() > 10_000 {
            self.0.clear();
        }
        if self.0.insert(message.clone()) {
            warn!("{message}");
        }
    }
}
