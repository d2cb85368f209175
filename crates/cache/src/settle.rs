//! Settling a full index on the journal's view of the vault before it claims a seq.
//!
//! A full index reads the disk, and the disk runs ahead of the journal: the index can see a
//! file the watcher has not journaled yet. When that file goes again before the watcher
//! looks, no event ever comes (the watcher compares with its snapshot, and nothing changed
//! there), so a cache that claimed the journal's head would keep the file for good. The
//! crash test found exactly such rows. The same holds for an edit undone before the watcher
//! saw it. So the index claims a seq only once every file it holds matches the watcher's
//! snapshot journaled with that seq (same paths, same content hashes), reading again the
//! files that differ until the watcher has caught up with them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use vaultkeeper_core::file::{ContentHash, FileState};

use super::CacheError;
use super::apply::{Dirty, delete_note, insert_note, is_markdown, load_file, mtime_str};
use super::parse::parse_note;
use super::resolve::name_key;

/// The journal's head and the watcher's snapshot journaled with it.
pub type Snapshot = (u64, BTreeMap<String, FileState>);

/// Reads the journal's [`Snapshot`] (see [`vaultkeeper_journal::JournalReader::snapshot`]);
/// with `false`, only its head (the files left empty).
pub(crate) type SnapshotFn<'a> = &'a mut dyn FnMut(bool) -> Result<Snapshot, CacheError>;

/// A head that moved by more than this since the last round means the watcher is still in a
/// scan (it journals 1000 events at a time): its whole snapshot is not read again until it
/// slows down. On a first start that read (100,000 rows) every round took the core the
/// watcher needed. A busy writer's few events a round still get a full check each round.
const SCANNING: u64 = 500;

/// How long settling may take. The watcher catches up within its quiet period, so waiting
/// ends in well under a second unless files keep changing; past the limits, the index keeps
/// what it read from disk (as before settling existed) and says how many files did not settle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Give up when the journal's head has not moved for this long.
    pub idle: Duration,
    /// Give up after this long in any case.
    pub total: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(5),
            total: Duration::from_secs(60),
        }
    }
}

/// What the index holds for one file: its content hash and the stat it was read with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    /// blake3 of the content, as the watcher's snapshot has it.
    pub hash: ContentHash,
    /// Size when read.
    pub size: u64,
    /// Modification time when read, as the cache stores it.
    pub mtime: Option<String>,
}

/// What the index holds, by path.
pub(crate) type Indexed = HashMap<String, Held>;

/// Brings the rows in `tx` (described by `indexed`) to the snapshot and returns the seq they
/// now equal. A file whose presence or content differs from the snapshot is read again when
/// its stat moved since the index read it (it went, came, or was written again), and its
/// rows replaced; otherwise the watcher has yet to journal it, and settling waits for that.
/// `dirty` collects what needs its links resolved again.
#[allow(clippy::too_many_arguments)]
pub(crate) fn settle(
    tx: &Connection,
    db: &Path,
    root: &Path,
    max_note_bytes: u64,
    indexed: &mut Indexed,
    snapshot: SnapshotFn<'_>,
    dirty: &mut Dirty,
    limits: Limits,
) -> Result<u64, CacheError> {
    let started = Instant::now();
    let mut last_head = None;
    let mut head_moved = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut rounds = 0u32;
    // Files that cannot be read now: the watcher keeps them as they were, so does the index.
    let mut unreadable: HashSet<String> = HashSet::new();
    loop {
        if let Some(last) = last_head {
            let (now, _) = snapshot(false)?;
            if now > last + SCANNING && started.elapsed() < limits.total {
                last_head = Some(now);
                head_moved = Instant::now();
                rounds += 1;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
                continue;
            }
        }
        let (head, files) = snapshot(true)?;
        if last_head != Some(head) {
            last_head = Some(head);
            head_moved = Instant::now();
        }
        let mut unsettled = differing(indexed, &files);
        unsettled.retain(|p| !unreadable.contains(p));
        for path in &unsettled {
            let now = stat(root, path);
            let held = indexed.get(path).map(|h| (h.size, h.mtime.clone()));
            if now != held && !reread(tx, db, root, max_note_bytes, path, indexed, dirty)? {
                unreadable.insert(path.clone());
            }
        }
        // Checked against the same snapshot: files a busy writer adds meanwhile are the
        // next head's business, so settling ends under a steady stream of new notes.
        let mut left = differing(indexed, &files);
        left.retain(|p| !unreadable.contains(p));
        if left.is_empty() {
            if rounds > 0 {
                tracing::debug!(
                    head,
                    rounds,
                    ms = started.elapsed().as_millis() as u64,
                    "cache: full index settled on the journal"
                );
            }
            return Ok(head);
        }
        if head_moved.elapsed() >= limits.idle || started.elapsed() >= limits.total {
            // Never keep a file the journal does not have at this head: if it stays, the
            // watcher journals it later; if it goes unseen, it must not stay in the cache.
            let mut dropped = 0usize;
            for path in left.iter().filter(|p| !files.contains_key(*p)) {
                if delete_note(tx, path, &mut dirty.fts).map_err(|e| CacheError::db(db, e))? {
                    dirty.sources.remove(path.as_str());
                    dirty.keys.insert(name_key(path));
                }
                indexed.remove(path);
                dropped += 1;
            }
            tracing::warn!(
                head,
                files = left.len(),
                dropped,
                first = %left[0],
                "cache: full index claims the journal's head before the watcher caught up with every file; files it has not journaled are left to their events, the others are indexed as read from disk"
            );
            return Ok(head);
        }
        rounds += 1;
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Size and modification time of `path` now, in the form [`Held`] keeps (None: not there).
fn stat(root: &Path, path: &str) -> Option<(u64, Option<String>)> {
    let m = std::fs::symlink_metadata(root.join(path)).ok()?;
    let mtime = m
        .modified()
        .ok()
        .map(|t| mtime_str(chrono::DateTime::<chrono::Utc>::from(t)));
    Some((m.len(), mtime))
}

/// Paths where the index and the snapshot disagree (presence or content).
fn differing(indexed: &Indexed, files: &BTreeMap<String, FileState>) -> Vec<String> {
    let mut out: Vec<String> = files
        .iter()
        .filter(|(p, st)| indexed.get(*p).map(|h| Some(h.hash)) != Some(st.hash))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(indexed.keys().filter(|p| !files.contains_key(*p)).cloned());
    out
}

/// Reads `path` again and replaces its rows (none when it is gone); false when it cannot be
/// read (its rows are kept).
fn reread(
    tx: &Connection,
    db: &Path,
    root: &Path,
    max_note_bytes: u64,
    path: &str,
    indexed: &mut Indexed,
    dirty: &mut Dirty,
) -> Result<bool, CacheError> {
    let dbe = |e| CacheError::db(db, e);
    let data = match load_file(root, path, max_note_bytes) {
        Ok(d) => Some(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            // Unreadable now: keep what the index holds; the watcher reports the file.
            tracing::debug!(path, error = %e, "cache: cannot read a file again while settling");
            return Ok(false);
        }
    };
    if delete_note(tx, path, &mut dirty.fts).map_err(dbe)? {
        dirty.sources.remove(path);
    }
    dirty.keys.insert(name_key(path));
    indexed.remove(path);
    let Some(data) = data else {
        return Ok(true);
    };
    let parsed = match (&data.text, is_markdown(path)) {
        (Some(t), true) => Some(parse_note(path, t)),
        _ => None,
    };
    let held = data.held();
    insert_note(tx, path, data, parsed, &mut |_, _| Ok(None), &mut dirty.fts).map_err(dbe)?;
    dirty.sources.insert(path.to_string());
    if let Some(held) = held {
        indexed.insert(path.to_string(), held);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use vaultkeeper_core::event::{Event, Kind, Origin};
    use vaultkeeper_journal::{Journal, SnapshotChange};

    use super::*;
    use crate::{CacheConfig, CacheConsumer};
    use vaultkeeper_core::file::hash_hex;

    /// A vault, its journal and a cache beside them.
    struct Setup {
        _dir: tempfile::TempDir,
        vault: PathBuf,
        journal_path: PathBuf,
        journal: Journal,
        db: PathBuf,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(&vault).expect("mkdir");
        let journal_path = dir.path().join("journal.db");
        let journal = Journal::open(&journal_path).expect("journal");
        let db = dir.path().join("cache.db");
        Setup {
            vault,
            journal_path,
            journal,
            db,
            _dir: dir,
        }
    }

    impl Setup {
        /// Writes `rel` and journals it as the watcher would (event and snapshot together).
        fn journal_write(&mut self, rel: &str, text: &str) -> Event {
            std::fs::write(self.vault.join(rel), text).expect("write");
            let state = FileState {
                size: text.len() as u64,
                mtime_ns: 0,
                ino: 0,
                hash: Some(blake3::hash(text.as_bytes())),
            };
            let mut events = [Event::builder(Kind::Created, rel)
                .read(
                    state.size,
                    Some(hash_hex(state.hash.as_ref())),
                    Some(text.to_string()),
                )
                .source("v", "h")
                .origin(Origin::Watch)
                .build()];
            self.journal
                .append(&mut events, &[SnapshotChange::Put(rel.to_string(), state)])
                .expect("append");
            events[0].clone()
        }

        fn consumer(&self, limits: Limits) -> CacheConsumer {
            CacheConsumer::open(&self.db, Some(self.vault.clone()), &CacheConfig::default())
                .expect("open")
                .with_journal(self.journal_path.clone())
                .with_settle_limits(limits)
        }

        fn paths(&self) -> Vec<String> {
            crate::schema::open_ro(&self.db)
                .expect("reader")
                .prepare("SELECT path FROM notes ORDER BY path")
                .and_then(|mut st| {
                    st.query_map([], |row| row.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("paths")
        }

        fn body(&self, rel: &str) -> String {
            crate::schema::open_ro(&self.db)
                .expect("reader")
                .query_row(
                    "SELECT b.body FROM notes n JOIN bodies b ON b.id = n.id WHERE n.path = ?1",
                    [rel],
                    |row| row.get(0),
                )
                .expect("body")
        }
    }

    fn quick() -> Limits {
        Limits {
            idle: Duration::from_secs(20),
            total: Duration::from_secs(30),
        }
    }

    /// Runs `act` on its own thread a moment after the index has read the disk (the moment
    /// is scenario timing, as the crash test's jitter: it waits for nothing).
    fn meanwhile(act: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            act();
        })
    }

    #[test]
    fn a_file_that_comes_and_goes_before_the_watcher_sees_it_is_not_kept() {
        // The crash test's lost deletion: the index listed a file the watcher had not
        // journaled yet; it went again, so no event ever came, and the cache kept it.
        let mut s = setup();
        let first = s.journal_write("a.md", "# a\n");
        std::fs::write(s.vault.join("brief.md"), "# brief\n").expect("write");
        let gone = s.vault.join("brief.md");
        let t = meanwhile(move || std::fs::remove_file(gone).expect("remove"));
        let mut c = s.consumer(quick());
        let durable = c.apply(&[first]).expect("apply");
        t.join().expect("thread");
        assert_eq!(durable, vaultkeeper_core::consumer::Durable::Upto(1));
        assert_eq!(s.paths(), vec!["a.md".to_string()]);
    }

    #[test]
    fn a_file_the_watcher_journals_meanwhile_settles_at_the_new_head() {
        let mut s = setup();
        let first = s.journal_write("a.md", "# a\n");
        std::fs::write(s.vault.join("b.md"), "# b\n").expect("write");
        let mut journal = Journal::open(&s.journal_path).expect("journal");
        let vault = s.vault.clone();
        let t = meanwhile(move || {
            let text = "# b\n";
            let state = FileState {
                size: text.len() as u64,
                mtime_ns: 0,
                ino: 0,
                hash: Some(blake3::hash(text.as_bytes())),
            };
            let mut events = [Event::builder(Kind::Created, "b.md")
                .hash(Some(hash_hex(state.hash.as_ref())))
                .source("v", "h")
                .build()];
            journal
                .append(&mut events, &[SnapshotChange::Put("b.md".into(), state)])
                .expect("append");
            drop(vault);
        });
        let mut c = s.consumer(quick());
        let durable = c.apply(&[first]).expect("apply");
        t.join().expect("thread");
        // It claims the seq whose snapshot it equals, past the batch it was handed.
        assert_eq!(durable, vaultkeeper_core::consumer::Durable::Upto(2));
        assert_eq!(c.cursor().expect("cursor"), Some(2));
        assert_eq!(s.paths(), vec!["a.md".to_string(), "b.md".to_string()]);
    }

    #[test]
    fn an_edit_undone_before_the_watcher_sees_it_is_not_kept() {
        let mut s = setup();
        let first = s.journal_write("a.md", "# a\n\njournaled text\n");
        std::fs::write(s.vault.join("a.md"), "# a\n\nan edit soon undone, longer\n")
            .expect("write");
        let path = s.vault.join("a.md");
        let t = meanwhile(move || {
            std::fs::write(path, "# a\n\njournaled text\n").expect("undo");
        });
        let mut c = s.consumer(quick());
        c.apply(&[first]).expect("apply");
        t.join().expect("thread");
        let body = s.body("a.md");
        assert!(body.contains("journaled text"), "indexed {body:?}");
    }

    #[test]
    fn files_that_never_settle_are_left_to_their_events_once_the_journal_stays_idle() {
        let mut s = setup();
        let first = s.journal_write("a.md", "# a\n");
        // Neither change is ever journaled: the limits end the wait.
        std::fs::write(s.vault.join("a.md"), "# a changed on disk\n").expect("write");
        std::fs::write(s.vault.join("b.md"), "# b\n").expect("write");
        let mut c = s.consumer(Limits {
            idle: Duration::from_millis(200),
            total: Duration::from_secs(30),
        });
        let durable = c.apply(&[first]).expect("apply");
        assert_eq!(durable, vaultkeeper_core::consumer::Durable::Upto(1));
        // b.md is not in the journal at the claimed head: its own event brings it.
        assert_eq!(s.paths(), vec!["a.md".to_string()]);
        assert!(s.body("a.md").contains("changed on disk"));
    }
}
