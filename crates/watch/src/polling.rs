//! Full rescans on a timer: configured with `watch.poll`, or the fallback when the kernel's
//! notifications are unavailable or out of watches.

use std::time::{Duration, Instant};

use tracing::info;

/// The polling clock; off until started, and then on for the watcher's life.
#[derive(Default)]
pub(crate) struct Polling {
    next: Option<Instant>,
}

impl Polling {
    /// True once polling was started.
    pub(crate) fn is_on(&self) -> bool {
        self.next.is_some()
    }

    /// Starts polling every `interval` (logged once, with `why`).
    pub(crate) fn start(&mut self, why: &str, interval: Duration) {
        if self.next.is_none() {
            info!("polling the vault every {interval:?} ({why})");
            self.next = Some(Instant::now() + interval);
        }
    }

    /// True when a poll is due at `now`; the next one is then `interval` later.
    pub(crate) fn tick(&mut self, now: Instant, interval: Duration) -> bool {
        if self.next.is_some_and(|t| now >= t) {
            self.next = Some(now + interval);
            return true;
        }
        false
    }

    /// When the next poll is due, if polling.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_only_once_started_and_due() {
        let i = Duration::from_millis(50);
        let mut p = Polling::default();
        assert!(!p.tick(Instant::now() + i, i), "off");
        p.start("test", i);
        assert!(p.is_on());
        assert!(!p.tick(Instant::now(), i), "not yet");
        let later = Instant::now() + i;
        assert!(p.tick(later, i));
        assert!(!p.tick(later, i), "the next one is an interval later");
    }
}
