//! Folders that could not be listed (folder → reason): their snapshot is kept, and they are
//! listed again every `poll_interval` until they can be.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vaultkeeper_vaultfs::scan;

/// The unlistable folders and when to try them again.
#[derive(Default)]
pub(crate) struct Unlistable {
    dirs: BTreeMap<String, String>,
    next: Option<Instant>,
}

impl Unlistable {
    /// Remembers `dir` with `reason` and schedules a try `interval` from now, unless one is
    /// scheduled already.
    pub(crate) fn mark(&mut self, dir: &str, reason: String, interval: Duration) {
        self.dirs.insert(dir.to_string(), reason);
        self.next.get_or_insert_with(|| Instant::now() + interval);
    }

    /// `dir` was listed completely.
    pub(crate) fn listed(&mut self, dir: &str) {
        self.dirs.remove(dir);
    }

    /// `dir` is gone, with everything under it.
    pub(crate) fn gone(&mut self, dir: &str) {
        self.dirs.retain(|d, _| !scan::is_under(d, dir));
    }

    /// Forgets everything: a full walk is about to say again what cannot be listed.
    pub(crate) fn clear(&mut self) {
        self.dirs.clear();
        self.next = None;
    }

    /// True when another try is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next.is_some_and(|t| now >= t)
    }

    /// The folders to try again now; the next try is scheduled by the next failure.
    pub(crate) fn take_due(&mut self) -> Vec<String> {
        self.next = None;
        self.dirs.keys().cloned().collect()
    }

    /// When the next try is due.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }
}
