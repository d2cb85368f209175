//! Editor temporaries: new files whose names look like a save in progress are held back
//! for `watch.temp_settle` before they may become `created`, so a slow atomic save is one
//! event of the note and never a created+deleted pair for the temp name.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use vaultkeeper_core::file::FileState;

/// True for names editors and atomic-write libraries give the copy they write before
/// renaming it over the real file: `Note.md.123` and `Note.md.3f9a1c2b` (write-file-atomic
/// and most "write temp, rename" code), `Note.md.tmp.4417.1733`, `.Note.md.Xk29aQ` (a
/// hidden sibling), `Note.md___jb_tmp___` (JetBrains). Names that are never content
/// (`*.swp`, `*~`, `4913`, `.#*`, `*.tmp`, ...) are ignored outright by the ignore rules.
pub fn looks_temporary(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if name.ends_with("___jb_tmp___") || name.ends_with("___jb_old___") {
        return true;
    }
    let (hidden, body) = match name.strip_prefix('.') {
        Some(body) => (true, body),
        None => (false, name),
    };
    let dots = body.matches('.').count();
    if body.is_empty() || body.starts_with('.') || dots < 2 {
        return false;
    }
    // A hidden copy of a name that has its own extension, with something after it.
    if hidden {
        return true;
    }
    body.rsplit('.').next().is_some_and(counter_or_random)
}

/// A counter (`123`) or a random token (`3f9a1c2b`, `Xk29aQ`): digits only, or at least
/// six letters and digits with a digit among them.
fn counter_or_random(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && (b.iter().all(u8::is_ascii_digit)
            || (b.len() >= 6
                && b.iter().all(u8::is_ascii_alphanumeric)
                && b.iter().any(u8::is_ascii_digit)))
}

#[derive(Debug)]
struct Entry {
    since: Instant,
    /// A snapshot path that vanished with the same inode: the held file may be that note
    /// renamed, so its deletion waits for the verdict too.
    pair: Option<String>,
    /// Handed back for a last look; forgotten after the next flush.
    queued: bool,
}

/// The temp-looking files seen but not yet journaled.
#[derive(Debug, Default)]
pub struct Held {
    entries: BTreeMap<String, Entry>,
}

impl Held {
    /// Removes from `present` the new temp-looking files younger than `settle`, and from
    /// `gone` the snapshot paths they may be a rename of. A file older than `settle` goes
    /// through: a real file with such a name is journaled, only later.
    pub fn filter(
        &mut self,
        snapshot: &BTreeMap<String, FileState>,
        present: Vec<(String, FileState)>,
        gone: &mut Vec<String>,
        settle: Duration,
        now: Instant,
    ) -> Vec<(String, FileState)> {
        if settle.is_zero() {
            return present;
        }
        let mut keep = Vec::with_capacity(present.len());
        for (rel, state) in present {
            if snapshot.contains_key(&rel) || !looks_temporary(&rel) {
                keep.push((rel, state));
                continue;
            }
            let entry = self.entries.entry(rel.clone()).or_insert(Entry {
                since: now,
                pair: None,
                queued: false,
            });
            if now >= entry.since + settle {
                self.entries.remove(&rel);
                keep.push((rel, state));
                continue;
            }
            if state.ino != 0
                && let Some(i) = gone
                    .iter()
                    .position(|g| snapshot.get(g).is_some_and(|s| s.ino == state.ino))
            {
                entry.pair = Some(gone.swap_remove(i));
            }
        }
        keep
    }

    /// When the next held file has settled.
    pub fn next_due(&self, settle: Duration) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.queued)
            .map(|e| e.since + settle)
            .min()
    }

    /// The held files that have settled, with the paths they may be a rename of: they are
    /// to be looked at again.
    pub fn take_due(&mut self, settle: Duration, now: Instant) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (rel, e) in &mut self.entries {
            if !e.queued && now >= e.since + settle {
                e.queued = true;
                out.insert(rel.clone());
                out.extend(e.pair.clone());
            }
        }
        out
    }

    /// Drops the entries handed back by [`Held::take_due`] once a flush has looked at
    /// them (those still there went through [`Held::filter`]; the others were renamed away).
    pub fn forget_queued(&mut self) {
        self.entries.retain(|_, e| !e.queued);
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        for p in [
            "Note.md.123",
            "a/Note.md.3f9a1c2b",
            ".Note.md.Xk29aQ",
            "Daily/.2026-11-24.md.a1b2c3",
            "Note.md___jb_tmp___",
            "Note.md.tmp.4417.1733",
        ] {
            assert!(looks_temporary(p), "{p} looks temporary");
        }
        for p in [
            "Note.md",
            ".gitignore",
            ".vaultkeeper.toml",
            "2024.01.notes.md",
            "archive.tar.gz",
            "Note.md.backup",
            "4913.md",
            "a/.obsidian",
        ] {
            assert!(!looks_temporary(p), "{p} is a plain name");
        }
    }

    fn st(ino: u64) -> FileState {
        FileState {
            size: 1,
            mtime_ns: 1,
            ino,
            hash: None,
        }
    }

    #[test]
    fn held_until_settled_then_let_through() {
        let mut held = Held::default();
        let snap: BTreeMap<String, FileState> = [("Note.md".to_string(), st(5))].into();
        let t0 = Instant::now();
        let settle = Duration::from_secs(3);
        let mut gone = vec!["Note.md".to_string()];
        let present = vec![
            ("Note.md.1".to_string(), st(5)),
            ("b.md".to_string(), st(6)),
        ];
        let kept = held.filter(&snap, present, &mut gone, settle, t0);
        assert_eq!(kept.len(), 1, "only b.md goes through");
        assert!(gone.is_empty(), "the possible rename source waits too");
        assert_eq!(held.next_due(settle), Some(t0 + settle));
        assert!(held.take_due(settle, t0).is_empty());
        let due = held.take_due(settle, t0 + settle);
        assert_eq!(
            due.into_iter().collect::<Vec<_>>(),
            vec!["Note.md".to_string(), "Note.md.1".to_string()]
        );
        let mut gone = vec!["Note.md".to_string()];
        let kept = held.filter(
            &snap,
            vec![("Note.md.1".to_string(), st(5))],
            &mut gone,
            settle,
            t0 + settle,
        );
        assert_eq!(kept.len(), 1, "settled: journaled after all");
        assert_eq!(gone.len(), 1);
        held.forget_queued();
        assert!(held.is_empty());
    }
}
