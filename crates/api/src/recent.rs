//! The newest journaled events, read from the journal once and encoded once for every client
//! near the head. Each client still has its own cursor (this is a read-through window over the
//! journal, not a broadcast buffer): a client whose next event is not in the window reads the
//! journal itself, so nothing is skipped; clients at the head share one read per batch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use vaultkeeper_core::event::Event;

/// At most this many events are held...
const MAX_EVENTS: usize = 4096;
/// ...and at most about this many bytes of them (content included): the window's memory bound.
const MAX_BYTES: usize = 32 << 20;

/// One event as every client sends it: decoded once, its JSON made once, on first use.
#[derive(Debug)]
pub struct Shared {
    /// The event.
    pub event: Event,
    json: OnceLock<String>,
}

impl Shared {
    /// Wraps an event read from the journal.
    pub fn new(event: Event) -> Arc<Shared> {
        Arc::new(Shared {
            event,
            json: OnceLock::new(),
        })
    }

    /// The event's JSON envelope.
    pub fn json(&self) -> &str {
        // Serializing an event cannot fail (no maps with non-string keys); an empty data line
        // would still carry the id.
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }

    fn cost(&self) -> usize {
        let e = &self.event;
        512 + e.file_path.len()
            + e.old_path.as_ref().map_or(0, String::len)
            + 2 * e.content.as_ref().map_or(0, String::len)
    }
}

/// A contiguous run of the newest events, shared by a daemon's streams.
#[derive(Debug, Default)]
pub struct Recent {
    window: Mutex<Window>,
    /// Held by the one client that reads the journal for the others at the head.
    pub(crate) filling: tokio::sync::Mutex<()>,
}

/// Every journaled event with a seq in `(from, last]`, oldest first.
#[derive(Debug, Default)]
struct Window {
    from: u64,
    events: VecDeque<Arc<Shared>>,
    bytes: usize,
}

impl Window {
    fn last_seq(&self) -> Option<u64> {
        self.events.back().map(|e| e.event.seq)
    }
}

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // The window holds copies of journaled events only: a poisoned one is still right.
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `limit` events right after `pos`, when the window holds the next one.
    pub fn after(&self, pos: u64, limit: usize) -> Option<Vec<Arc<Shared>>> {
        let w = self.lock();
        let last = w.last_seq()?;
        if pos < w.from || pos >= last {
            return None;
        }
        let skip = w.events.partition_point(|e| e.event.seq <= pos);
        Some(w.events.iter().skip(skip).take(limit).cloned().collect())
    }

    /// Whether a client at `pos` is at (or past) the window's end: it waits for new events.
    pub fn at_end(&self, pos: u64) -> bool {
        self.lock().last_seq().is_none_or(|last| pos >= last)
    }

    /// Adds events just read from the journal after `pos` (all of them up to the last one):
    /// they extend the window when they follow on from it, replace it when they are newer;
    /// older ones are not kept.
    pub fn extend(&self, pos: u64, events: &[Arc<Shared>]) {
        if events.is_empty() {
            return;
        }
        let mut w = self.lock();
        match w.last_seq() {
            Some(last) if pos == last => {}
            Some(last) if pos < last => return,
            _ => {
                w.events.clear();
                w.bytes = 0;
                w.from = pos;
            }
        }
        for e in events {
            w.bytes += e.cost();
            w.events.push_back(e.clone());
        }
        while w.events.len() > MAX_EVENTS || (w.bytes > MAX_BYTES && w.events.len() > 1) {
            if let Some(old) = w.events.pop_front() {
                w.bytes = w.bytes.saturating_sub(old.cost());
                w.from = old.event.seq;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultkeeper_core::event::Kind;

    fn events(seqs: std::ops::RangeInclusive<u64>) -> Vec<Arc<Shared>> {
        seqs.map(|s| {
            let mut e = Event::builder(Kind::Created, format!("n{s}.md")).build();
            e.seq = s;
            Shared::new(e)
        })
        .collect()
    }

    fn seqs(v: &[Arc<Shared>]) -> Vec<u64> {
        v.iter().map(|e| e.event.seq).collect()
    }

    #[test]
    fn serves_only_what_follows_a_cursor_without_a_gap() {
        let r = Recent::default();
        assert!(r.after(0, 10).is_none());
        r.extend(4, &events(5..=9));
        assert_eq!(r.after(4, 10).map(|v| seqs(&v)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(r.after(6, 2).map(|v| seqs(&v)), Some(vec![7, 8]));
        // Before the window: the client reads the journal itself.
        assert!(r.after(3, 10).is_none());
        // At the end: nothing to serve, the client waits.
        assert!(r.after(9, 10).is_none());
        assert!(r.at_end(9) && !r.at_end(8));
        // A batch that follows on extends; an older one is not kept; a newer one with a gap
        // replaces the window (never served across the gap).
        r.extend(9, &events(10..=11));
        assert_eq!(r.after(8, 10).map(|v| seqs(&v)), Some(vec![9, 10, 11]));
        r.extend(1, &events(2..=3));
        assert!(r.after(1, 10).is_none());
        r.extend(20, &events(21..=22));
        assert!(r.after(11, 10).is_none());
        assert_eq!(r.after(20, 10).map(|v| seqs(&v)), Some(vec![21, 22]));
    }

    #[test]
    fn holds_a_bounded_number_of_events() {
        let r = Recent::default();
        let n = MAX_EVENTS as u64 + 100;
        r.extend(0, &events(1..=n));
        assert!(r.after(99, 1).is_none(), "the oldest are dropped");
        assert_eq!(r.after(100, 1).map(|v| seqs(&v)), Some(vec![101]));
        assert_eq!(r.after(n - 1, 5).map(|v| seqs(&v)), Some(vec![n]));
    }
}
