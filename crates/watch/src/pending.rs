//! What waits to be flushed, and when: the dirty paths, a full rescan asked for, the
//! debounce window and the retry backoff after a failed flush.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vaultkeeper_core::retry::Backoff;

/// Pending changes and the debounce clock.
pub(crate) struct Pending {
    dirty: BTreeSet<String>,
    full: Option<&'static str>,
    first: Option<Instant>,
    last: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl Pending {
    pub(crate) fn new() -> Pending {
        Pending {
            dirty: BTreeSet::new(),
            full: None,
            first: None,
            last: None,
            retry_at: None,
            backoff: Backoff::external(),
        }
    }

    /// Starts (or extends) the debounce window.
    pub(crate) fn touch(&mut self) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// A path to compare with the snapshot at the next flush.
    pub(crate) fn mark(&mut self, rel: String) {
        self.dirty.insert(rel);
        self.touch();
    }

    /// Paths to compare at the next flush.
    pub(crate) fn mark_all(&mut self, rels: impl IntoIterator<Item = String>) {
        self.dirty.extend(rels);
        self.touch();
    }

    /// A full rescan at the next flush, for `reason`.
    pub(crate) fn want_full(&mut self, reason: &'static str) {
        self.full = Some(reason);
        self.touch();
    }

    /// A full rescan unless one is already due for another reason.
    pub(crate) fn want_full_keep_reason(&mut self, reason: &'static str) {
        self.full.get_or_insert(reason);
    }

    /// A poll tick: a rescan that is not worth an info line.
    pub(crate) fn want_full_quiet(&mut self) {
        self.full.get_or_insert("poll");
        self.touch();
    }

    /// When the window closes (quiet for `debounce`, or open for `max_latency`), not before
    /// a retry is due.
    pub(crate) fn due_at(&self, debounce: Duration, max_latency: Duration) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        let due = (last + debounce).min(first + max_latency);
        Some(self.retry_at.map_or(due, |r| due.max(r)))
    }

    /// True when a flush is due at `now`.
    pub(crate) fn is_due(&self, now: Instant, debounce: Duration, max_latency: Duration) -> bool {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return false;
        };
        if self.retry_at.is_some_and(|r| now < r) {
            return false;
        }
        now >= last + debounce || now >= first + max_latency
    }

    /// Closes the window and hands over what is pending: the dirty paths and the reason
    /// of a full rescan, if one is due.
    pub(crate) fn take(&mut self) -> (BTreeSet<String>, Option<&'static str>) {
        self.first = None;
        self.last = None;
        (std::mem::take(&mut self.dirty), self.full.take())
    }

    /// The flush journaled: no retry pending.
    pub(crate) fn succeeded(&mut self) {
        self.retry_at = None;
        self.backoff.reset();
    }

    /// The flush failed: a full rescan after the next backoff delay, which is returned.
    pub(crate) fn failed(&mut self) -> Duration {
        let delay = self.backoff.next_delay();
        self.retry_at = Some(Instant::now() + delay);
        self.want_full("retry after a failed flush");
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_quiet_or_latency_and_not_before_a_retry() {
        let d = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let mut p = Pending::new();
        assert!(!p.is_due(Instant::now(), d, max), "nothing pending");
        p.mark("a.md".into());
        let now = Instant::now();
        assert!(!p.is_due(now, d, max));
        assert!(p.is_due(now + d, d, max));
        let (dirty, full) = p.take();
        assert_eq!(dirty.len(), 1);
        assert_eq!(full, None);
        let delay = p.failed();
        assert!(!p.is_due(Instant::now(), d, max), "retry not yet due");
        assert!(p.is_due(Instant::now() + delay + max, d, max));
        assert_eq!(p.take().1, Some("retry after a failed flush"));
    }
}
