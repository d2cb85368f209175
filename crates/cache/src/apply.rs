//! Writing the cache: the `cache` consumer (one transaction per batch, cursor included) and the
//! full [`reindex`].
//!
//! Cost follows the change: an event touches the rows of its own file, then re-resolves only
//! the links that could point at a file that appeared, went or moved, found through
//! `links.target_key` (the folded target name, see [`super::resolve`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::parse::tokens::words_key;
use super::parse::{ParsedNote, file_stem, parse_note};
use super::prepare::{self, PreparedNote};
use super::resolve::{name_key, resolve};
use super::rows::{FtsBatch, NoteRows, Part, ResolveLink, Shape, StoredText};
use super::schema::{self, read_cursor, write_cursor};
use super::settle::{self, Held, Indexed, Limits, Snapshot};
use super::{CacheConfig, CacheError};
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind, Origin, extension_of};
use vaultkeeper_core::file::parse_hash;
use vaultkeeper_journal::checkpoint::{Checkpointer, Pace};
use vaultkeeper_vaultfs::Content;
use vaultkeeper_vaultfs::ignore::IgnoreRules;

/// The cache consumer's name: its cursor key and its entry in `status`.
pub const NAME: &str = vaultkeeper_core::status::ConsumerKind::Cache.as_str();

/// Meta key by which `vaultkeeper reindex` asks a running daemon's cache for a rebuild. The
/// rebuild runs inside the cache's runner and drops it with the rest of `meta`.
pub(crate) const REINDEX_REQUEST: &str = "reindex_request";

/// Meta key holding the last rebuild's figures and the request it served (JSON).
pub(crate) const LAST_REINDEX: &str = "last_reindex";

/// Remote event ids are remembered this long: a redelivery is never older.
const REMOTE_SEEN_DAYS: i64 = 30;

/// Tables of a remote cache (`consume cache`): which events of which source vault were
/// applied (duplicates are dropped by id, never by a sender's `seq`), and per source vault
/// the highest `seq` of its live events, used only to order its snapshots.
const REMOTE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS remote_seen(
    vault TEXT NOT NULL,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY(vault, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS remote_seen_at ON remote_seen(at);
CREATE TABLE IF NOT EXISTS remote_vaults(
    vault TEXT PRIMARY KEY,
    live_seq INTEGER NOT NULL
);
";

fn meta_value(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Asks the daemon's cache at `cache_db` for a rebuild (served on its runner's next flush or
/// batch); `token` identifies the request in [`LAST_REINDEX`].
pub fn request_reindex(cache_db: &Path, token: &str, cfg: &CacheConfig) -> Result<(), CacheError> {
    let conn = schema::open_beside_daemon(cache_db, cfg.busy_timeout)?;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![REINDEX_REQUEST, token],
    )
    .map_err(|e| CacheError::db(cache_db, e))?;
    Ok(())
}

/// Where a rebuild request stands.
#[derive(Debug, Clone)]
pub enum ReindexState {
    /// A request (this one, or a later one that replaced it) is not served yet.
    Pending,
    /// Served; the figures of the rebuild that served it.
    Done(ReindexStats),
    /// Nothing is pending, but no rebuild figures are recorded either.
    Unknown,
}

/// The state of the rebuild requests in the cache at `cache_db`. A request replaced by a
/// later one is served by the rebuild that serves the later one.
pub fn reindex_state(cache_db: &Path) -> Result<ReindexState, CacheError> {
    let conn = schema::open_ro(cache_db)?;
    let dbe = |e| CacheError::db(cache_db, e);
    if meta_value(&conn, REINDEX_REQUEST).map_err(dbe)?.is_some() {
        return Ok(ReindexState::Pending);
    }
    let last = meta_value(&conn, LAST_REINDEX).map_err(dbe)?;
    let stats = last
        .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
        .and_then(|v| serde_json::from_value(v["stats"].clone()).ok());
    Ok(stats.map_or(ReindexState::Unknown, ReindexState::Done))
}

/// What the cache knows about one file before parsing.
#[derive(Debug, Clone)]
pub(crate) struct FileData {
    pub(crate) size: u64,
    pub(crate) mtime: Option<String>,
    pub(crate) hash: Option<String>,
    /// The text to parse (markdown only; `None`: metadata only).
    pub(crate) text: Option<String>,
    pub(crate) error: Option<String>,
}

pub(crate) fn is_markdown(path: &str) -> bool {
    extension_of(path) == ".md"
}

pub(crate) fn mtime_str(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The note text and its indexing error under vaultfs's one text/binary/size rule: binary
/// and too large are metadata only; text that is not UTF-8 is indexed with U+FFFD.
fn note_text(content: Content, size: u64, max: u64) -> (Option<String>, Option<String>) {
    match content {
        Content::Text(text) => (Some(text), None),
        Content::Binary => (
            None,
            Some("binary content in a .md file: metadata only".to_string()),
        ),
        Content::NotUtf8(text) => (
            Some(text),
            Some("invalid UTF-8: replaced with U+FFFD".to_string()),
        ),
        Content::TooLarge => (
            None,
            Some(format!(
                "too large: {size} bytes > max_note_bytes {max}: metadata only"
            )),
        ),
    }
}

/// Reads `rel` under `root` for indexing through vaultfs's one reader; markdown larger than
/// `max` is metadata only, other files are hashed and never kept.
pub(crate) fn load_file(root: &Path, rel: &str, max: u64) -> std::io::Result<FileData> {
    let md = is_markdown(rel);
    let read = vaultkeeper_vaultfs::read_file(&root.join(rel), if md { max } else { 0 })?;
    let (text, error) = if md {
        note_text(read.content, read.size, max)
    } else {
        (None, None)
    };
    Ok(FileData {
        size: read.size,
        mtime: read.mtime.map(mtime_str),
        hash: Some(read.hash.to_hex().to_string()),
        text,
        error,
    })
}

impl FileData {
    /// What the index holds of this read, for settling (see [`super::settle`]).
    pub(crate) fn held(&self) -> Option<Held> {
        Some(Held {
            hash: parse_hash(self.hash.as_deref()?)?,
            size: self.size,
            mtime: self.mtime.clone(),
        })
    }
}

/// Inserts the rows of a file not in the cache; `resolve_link(src, target)` gives each
/// link's target path.
pub(crate) fn insert_note(
    tx: &Connection,
    path: &str,
    data: FileData,
    parsed: Option<ParsedNote>,
    resolve_link: &mut ResolveLink<'_>,
    fts: &mut FtsBatch,
) -> rusqlite::Result<()> {
    NoteRows::new(path, data, parsed)
        .resolved(resolve_link)?
        .insert(tx, Some(fts))
}

/// Gives note `id` a new title in the full-text index. The index keeps no text, so the row is
/// made again from what the cache stores (aliases, frontmatter, body); call it before the
/// stored title changes, since the old row's terms are made from it.
fn retitle_fts(tx: &Connection, id: i64, title: &str, fts: &mut FtsBatch) -> rusqlite::Result<()> {
    // No stored text: an attachment or a note indexed as metadata only, never in the index.
    let Some(stored) = StoredText::read(tx, id)? else {
        return Ok(());
    };
    fts.delete_stored(id, &stored)?;
    fts.insert(id, stored.columns(Some(title)));
    Ok(())
}

struct Row {
    id: i64,
    hash: Option<String>,
    title_from: String,
    shape: Option<Shape>,
}

fn get_row(tx: &Connection, path: &str) -> rusqlite::Result<Option<Row>> {
    tx.prepare_cached("SELECT id, hash, title_from, shape FROM notes WHERE path = ?1")?
        .query_row([path], |r| {
            Ok(Row {
                id: r.get(0)?,
                hash: r.get(1)?,
                title_from: r.get(2)?,
                shape: Shape::from_blob(r.get_ref(3)?.as_blob_or_null()?),
            })
        })
        .optional()
}

/// Removes every row of `path`; true when there was one.
pub(crate) fn delete_note(
    tx: &Connection,
    path: &str,
    fts: &mut FtsBatch,
) -> rusqlite::Result<bool> {
    let Some(row) = get_row(tx, path)? else {
        return Ok(false);
    };
    for part in Part::ALL {
        tx.prepare_cached(&format!("DELETE FROM {} WHERE path = ?1", part.table()))?
            .execute([path])?;
    }
    fts.delete(tx, row.id)?;
    tx.prepare_cached("DELETE FROM bodies WHERE id = ?1")?
        .execute([row.id])?;
    tx.prepare_cached("DELETE FROM notes WHERE id = ?1")?
        .execute([row.id])?;
    Ok(true)
}

/// Files and names a batch touched, whose links are resolved again before commit.
#[derive(Default)]
pub(crate) struct Dirty {
    /// Notes whose links are all resolved again (moved notes: a relative link, or a link to
    /// the note itself, resolves differently from a new path).
    pub(crate) sources: HashSet<String>,
    /// Name keys of files that appeared or went: every link with that target key is
    /// resolved again, links written earlier in the same batch included.
    pub(crate) keys: HashSet<String>,
    /// Full-text writes, made before the commit.
    pub(crate) fts: FtsBatch,
    /// Files by name key, as the batch's upserts looked them up to resolve their links.
    names: NameLookup,
}

/// Vault files by name key, looked up in `notes` and remembered. An answer may be outdated
/// by a later write of the same batch, but only for a key that write puts in
/// [`Dirty::keys`], whose links are all resolved again before the commit.
#[derive(Default)]
struct NameLookup {
    memo: HashMap<String, Vec<String>>,
}

impl NameLookup {
    /// Where `target`, written in the note at `src`, points now.
    fn resolve(
        &mut self,
        tx: &Connection,
        src: &str,
        target: &str,
    ) -> rusqlite::Result<Option<String>> {
        let mut failed: Option<rusqlite::Error> = None;
        let memo = &mut self.memo;
        let to = resolve(src, target, &mut |k| {
            if let Some(v) = memo.get(k) {
                return v.clone();
            }
            let found = tx
                .prepare_cached("SELECT path FROM notes WHERE name_key = ?1")
                .and_then(|mut st| {
                    st.query_map([k], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                });
            match found {
                Ok(v) => {
                    memo.insert(k.to_string(), v.clone());
                    v
                }
                Err(e) => {
                    failed = Some(e);
                    Vec::new()
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(to),
        }
    }
}

/// The `cache` consumer. See the module docs; open with [`CacheConsumer::open`].
///
/// SQLite is blocking, so every call the runner makes into the database runs on tokio's
/// blocking pool: the runtime driving the consumer (the daemon gives each consumer its own
/// current-thread runtime, where `block_in_place` is not allowed) keeps serving its timers
/// and its stop signal through a long batch or a full reindex.
pub struct CacheConsumer {
    state: Arc<Mutex<CacheState>>,
    /// The state's `unindexed`, read by [`Consumer::deadline`] without taking the lock.
    unindexed: Arc<AtomicBool>,
    /// An empty cache indexes at once, without an event (see [`CacheConsumer::with_journal`]).
    index_at_once: bool,
}

/// The connection and everything a batch needs, moved onto the blocking pool per call.
struct CacheState {
    conn: Connection,
    db_path: PathBuf,
    vault_root: Option<PathBuf>,
    cfg: CacheConfig,
    lister: FileLister,
    /// The journal, whose head a full index is stamped with (see [`CacheConsumer::with_journal`]).
    journal: Option<PathBuf>,
    /// The cache is empty (new, rebuilt after damage or a schema change) and not indexed yet.
    unindexed: Arc<AtomicBool>,
    /// How long a full index waits for the watcher to catch up (see [`super::settle`]).
    settle: Limits,
    /// Checkpoints the cache's WAL beside the writer (None: the writer's own autocheckpoint).
    checkpointer: Option<Checkpointer>,
}

/// Least time between two background checkpoints of the cache: every commit nudges the
/// checkpointer, and a burst of commits is served by one checkpoint per gap.
const CHECKPOINT_GAP: std::time::Duration = std::time::Duration::from_millis(500);

/// Starts checkpointing `conn`'s database on a thread of its own (see [`Checkpointer`]); on a
/// failure the connection keeps its own checkpoints. The commit that crossed SQLite's mark
/// used to copy the WAL while the writer waited: an eighth of the cache's time catching up
/// after a burst of edits.
fn checkpoint_beside(conn: &Connection, db: &Path) -> Option<Checkpointer> {
    let pace = Pace {
        every_bytes: 0,
        gap: CHECKPOINT_GAP,
    };
    Checkpointer::start(conn, db, pace, "cache")
        .map_err(|e| {
            tracing::warn!(path = %db.display(), error = %e, "cache: checkpoints stay in the writer");
        })
        .ok()
}

/// Files a parser thread of a full index reads and parses before handing them to the writer.
const PARSE_CHUNK: usize = 16;

/// Lists the vault's files (relative paths with `/`) for a full reindex.
pub type FileLister = Box<dyn FnMut(&Path) -> std::io::Result<Vec<String>> + Send>;

/// The default lister: vaultfs's one lister with the vault's built-in and `.gitignore`
/// rules (the daemon passes its configured rules through [`CacheConsumer::with_file_lister`]).
/// A folder that cannot be listed fails the listing: a reindex without its files would drop
/// their rows.
pub fn vault_files(root: &Path) -> std::io::Result<Vec<String>> {
    let rules = std::sync::Arc::new(IgnoreRules::new(root, None, &[], true).0);
    let listing = vaultkeeper_vaultfs::list_files(root, &rules);
    if let Some(bad) = listing.unlistable.first() {
        return Err(std::io::Error::other(format!(
            "{} folder(s) could not be listed, first: {}",
            listing.unlistable.len(),
            bad.reason
        )));
    }
    Ok(listing.files)
}

fn consumer_error(e: CacheError, seq: Option<u64>) -> ConsumerError {
    if e.is_transient() {
        ConsumerError::transient_from(e)
    } else {
        match seq {
            Some(s) => ConsumerError::event(s, e.to_string()).with_source(e),
            None => ConsumerError::failed(e.to_string()).with_source(e),
        }
    }
}

impl CacheConsumer {
    /// Opens (creating, or rebuilding after a schema change) the cache at `cache_db`.
    ///
    /// With `vault_root`, content missing from events is read from disk and the first batch
    /// after a start without cursor runs a full [`reindex`]. Without it (a remote
    /// `consume cache`), such files are indexed as metadata only.
    pub fn open(
        cache_db: &Path,
        vault_root: Option<PathBuf>,
        cfg: &CacheConfig,
    ) -> Result<Self, CacheError> {
        let conn = schema::open_rw(cache_db, cfg.busy_timeout)?;
        if vault_root.is_none() {
            let cutoff = Utc::now() - chrono::Duration::days(REMOTE_SEEN_DAYS);
            conn.execute_batch(REMOTE_SCHEMA)
                .and_then(|()| {
                    conn.execute("DELETE FROM remote_seen WHERE at < ?1", [mtime_str(cutoff)])
                })
                .map_err(|e| CacheError::db(cache_db, e))?;
        }
        let unindexed = read_cursor(&conn)
            .map_err(|e| CacheError::db(cache_db, e))?
            .is_none();
        let unindexed = Arc::new(AtomicBool::new(unindexed));
        let checkpointer = checkpoint_beside(&conn, cache_db);
        let state = CacheState {
            conn,
            db_path: cache_db.to_path_buf(),
            vault_root,
            cfg: cfg.clone(),
            lister: Box::new(vault_files),
            journal: None,
            unindexed: Arc::clone(&unindexed),
            settle: Limits::default(),
            checkpointer,
        };
        Ok(CacheConsumer {
            state: Arc::new(Mutex::new(state)),
            unindexed,
            index_at_once: false,
        })
    }

    /// Lets an empty cache index the vault at once, stamped with the journal's head, instead
    /// of at the next event: a cache rebuilt after damage, or after a schema change, has no
    /// cursor while the journal's cursor for it is already at the head, so no event may come
    /// for a long time.
    pub fn with_journal(mut self, journal: PathBuf) -> Self {
        let mut state = self.lock();
        state.journal = Some(journal);
        let index_at_once = state.vault_root.is_some();
        drop(state);
        self.index_at_once = index_at_once;
        self
    }

    /// Replaces the file lister used by the first-start reindex (default: [`vault_files`]).
    pub fn with_file_lister(self, lister: FileLister) -> Self {
        self.lock().lister = lister;
        self
    }

    /// Replaces how long a full index waits for the watcher (tests use short limits).
    #[cfg(test)]
    pub(crate) fn with_settle_limits(self, limits: Limits) -> Self {
        self.lock().settle = limits;
        self
    }

    /// The highest journal seq applied, if any.
    pub fn cursor(&self) -> Result<Option<u64>, CacheError> {
        self.lock().cursor()
    }

    /// Applies a batch in one transaction with the cursor, on the calling thread (the
    /// [`Consumer::handle`] of the runner does the same on the blocking pool). Events at or
    /// below the stored cursor are skipped (redelivery).
    pub fn apply(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        self.lock().apply(batch)
    }

    /// The state, also after a panic in an earlier call: its transaction was rolled back
    /// when it unwound, so the connection is as the last commit left it.
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` on the state on tokio's blocking pool. A panic in it carries on as the
    /// panic it was, as when the work ran inline. Polled outside a tokio runtime (a plain
    /// executor, as in tests), there is no executor to starve: the work runs inline.
    fn off_executor(
        &self,
        work: impl FnOnce(&mut CacheState) -> Result<Durable, ConsumerError> + Send + 'static,
    ) -> impl Future<Output = Result<Durable, ConsumerError>> + Send + 'static {
        let state = Arc::clone(&self.state);
        async move {
            let run = move || {
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                work(&mut state)
            };
            vaultkeeper_core::blocking::off_executor(run)
                .await
                .unwrap_or_else(
                    |e| Err(ConsumerError::failed(format!("cache: {e}")).with_source(e)),
                )
        }
    }
}

impl CacheState {
    /// The full index of an empty cache, when it can be done without an event (see
    /// [`CacheConsumer::with_journal`]).
    fn index_now(&mut self) -> Result<Durable, ConsumerError> {
        let (Some(root), Some(journal)) = (self.vault_root.clone(), self.journal.clone()) else {
            return Ok(Durable::Unchanged);
        };
        // The vault on disk is at least as new as every event journaled so far.
        let head = vaultkeeper_journal::Journal::head_of(&journal)
            .map_err(ConsumerError::transient_from)?;
        if head == 0 {
            // Nothing journaled yet: the first batch indexes (see `apply`).
            self.unindexed.store(false, Ordering::Relaxed);
            return Ok(Durable::Unchanged);
        }
        let upto = self.rebuild(&root, head, None)?;
        Ok(Durable::Upto(upto))
    }

    /// The highest journal seq applied, if any.
    fn cursor(&self) -> Result<Option<u64>, CacheError> {
        read_cursor(&self.conn).map_err(|e| CacheError::db(&self.db_path, e))
    }

    /// Applies a batch in one transaction with the cursor (see [`CacheConsumer::apply`]).
    fn apply(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let done = self.apply_batch(batch);
        self.checkpoint_soon();
        done
    }

    /// The WAL grew by a commit: the checkpointer copies it into the database soon.
    fn checkpoint_soon(&mut self) {
        if let Some(c) = &mut self.checkpointer {
            c.nudge();
        }
    }

    fn apply_batch(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let db = self.db_path.clone();
        let Some(max_seq) = batch.iter().map(|e| e.seq).max() else {
            return Ok(Durable::Unchanged);
        };
        let dbe = |e| consumer_error(CacheError::db(&db, e), None);
        // IMMEDIATE: the cursor read and the writes happen under one write lock, so a
        // `vaultkeeper reindex` committing meanwhile cannot leave us on a stale cursor.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(dbe)?;
        let Some(root) = self.vault_root.clone() else {
            return apply_remote(tx, batch, &self.cfg, &db);
        };
        let cursor = read_cursor(&tx).map_err(dbe)?;
        let request = meta_value(&tx, REINDEX_REQUEST).map_err(dbe)?;
        if cursor.is_none() || request.is_some() {
            drop(tx);
            // First start, or a rebuild asked for: the vault on disk is at least as new as
            // every event in this batch, so a full index replaces them; later events apply
            // on top.
            let upto = max_seq.max(cursor.unwrap_or(0));
            let upto = self.rebuild(&root, upto, request)?;
            return Ok(Durable::Upto(upto));
        }
        let root = Some(root);
        let new_cursor = cursor.map_or(max_seq, |c| c.max(max_seq));
        let cfg = self.cfg.clone();
        let mut dirty = Dirty::default();
        let applied = prepare::alongside(&tx, batch, cursor, &cfg, |prepared| {
            for (i, e) in batch.iter().enumerate() {
                if let Some(c) = cursor
                    && e.seq <= c
                    && !snapshot_fills_in(&tx, e, c).map_err(dbe)?
                {
                    continue;
                }
                let note = prepared.take(i, &mut dirty.fts);
                apply_event(&tx, e, root.as_deref(), &cfg, &mut dirty, note)
                    .map_err(|err| consumer_error(CacheError::db(&db, err), Some(e.seq)))?;
            }
            Ok(())
        });
        applied.map_err(dbe)??;
        dirty.fts.write(&tx).map_err(dbe)?;
        reresolve(&tx, &dirty).map_err(dbe)?;
        write_cursor(&tx, new_cursor).map_err(dbe)?;
        tx.commit()
            .map_err(|e| consumer_error(CacheError::db(&db, e), None))?;
        Ok(Durable::Upto(new_cursor))
    }

    /// A full index from disk claiming at least `upto`, inside this consumer (its runner
    /// hands over every later event), serving `request` if there is one. With the journal,
    /// the index settles on the watcher's snapshot and claims the seq it settled on (see
    /// [`super::settle`]). Returns the seq claimed.
    fn rebuild(
        &mut self,
        root: &Path,
        upto: u64,
        request: Option<String>,
    ) -> Result<u64, ConsumerError> {
        let db = self.db_path.clone();
        // Listed only now, after `upto` is fixed: the disk includes every event up to it.
        let files = (self.lister)(root).map_err(|source| {
            consumer_error(
                CacheError::Io {
                    path: root.to_path_buf(),
                    source,
                },
                None,
            )
        })?;
        let journal = self.journal.clone();
        let mut reader: Option<vaultkeeper_journal::JournalReader> = None;
        let mut snapshot = move |full: bool| -> Result<Snapshot, CacheError> {
            let Some(path) = &journal else {
                return Ok((0, Default::default()));
            };
            if reader.is_none() {
                reader = Some(vaultkeeper_journal::JournalReader::open(path)?);
            }
            match &reader {
                Some(r) if full => Ok(r.snapshot()?),
                Some(r) => Ok((r.head()?, Default::default())),
                None => Ok((0, Default::default())),
            }
        };
        let settle = self
            .journal
            .is_some()
            .then_some((&mut snapshot as settle::SnapshotFn<'_>, self.settle));
        let (stats, upto) = reindex_conn(
            &mut self.conn,
            &db,
            root,
            files,
            upto,
            &self.cfg,
            request.as_deref(),
            settle,
        )
        .map_err(|e| consumer_error(e, None))?;
        self.unindexed.store(false, Ordering::Relaxed);
        tracing::info!(
            notes = stats.notes,
            files = stats.files,
            ms = stats.elapsed_ms,
            requested = request.is_some(),
            "cache: full index done"
        );
        // One FTS segment for every search to read (a full index leaves one per 16 MiB of
        // terms); 0.36 s on 100,000 notes. Its own transaction, after the index is
        // committed and queryable.
        let optimized = Instant::now();
        if let Err(e) = self
            .conn
            .execute_batch("INSERT INTO notes_fts(notes_fts) VALUES('optimize')")
        {
            tracing::warn!(error = %e, "cache: cannot optimize the full-text index");
        }
        tracing::debug!(
            ms = optimized.elapsed().as_millis() as u64,
            "cache: full-text index optimized"
        );
        self.checkpoint_soon();
        // The index's page cache, FTS buffers and parsed notes are freed by now; without
        // this the daemon would keep their pages for the rest of its run.
        vaultkeeper_core::memory::release_freed();
        Ok(upto)
    }

    /// Serves a pending `vaultkeeper reindex` request between batches.
    fn serve_request(&mut self) -> Result<Durable, ConsumerError> {
        let Some(root) = self.vault_root.clone() else {
            return Ok(Durable::Unchanged);
        };
        let db = self.db_path.clone();
        let dbe = |e| consumer_error(CacheError::db(&db, e), None);
        let Some(request) = meta_value(&self.conn, REINDEX_REQUEST).map_err(dbe)? else {
            return Ok(Durable::Unchanged);
        };
        // Every event up to the cursor is applied, and the runner hands over the rest.
        let upto = read_cursor(&self.conn).map_err(dbe)?.unwrap_or(0);
        let upto = self.rebuild(&root, upto, Some(request))?;
        Ok(Durable::Upto(upto))
    }
}

/// Applies remote events (`consume cache`): every field was checked on arrival; a
/// redelivery is recognised by its event id within its source vault, never by its `seq`
/// (a number the sender chose). A snapshot event (see [`snapshot_fills_in`]) is ordered
/// against the live events of its own vault only.
fn apply_remote(
    tx: rusqlite::Transaction<'_>,
    batch: &[Event],
    cfg: &CacheConfig,
    db: &Path,
) -> Result<Durable, ConsumerError> {
    let now = mtime_str(Utc::now());
    let mut dirty = Dirty::default();
    for e in batch {
        let dbe = |err| consumer_error(CacheError::db(db, err), Some(e.seq));
        let fresh = tx
            .prepare_cached("INSERT OR IGNORE INTO remote_seen(vault, id, at) VALUES(?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![e.vault, e.id, now]))
            .map_err(dbe)?;
        if fresh == 0 {
            tracing::debug!(id = %e.id, vault = %e.vault, "cache: event already applied");
            continue;
        }
        let live_seq: Option<i64> = tx
            .query_row(
                "SELECT live_seq FROM remote_vaults WHERE vault = ?1",
                [&e.vault],
                |r| r.get(0),
            )
            .optional()
            .map_err(dbe)?;
        let seq = i64::try_from(e.seq).unwrap_or(i64::MAX);
        if e.origin == Origin::Snapshot {
            let newer_live = live_seq.is_some_and(|l| l > seq);
            if newer_live && get_row(&tx, &e.file_path).map_err(dbe)?.is_some() {
                continue;
            }
        } else if live_seq.is_none_or(|l| l < seq) {
            tx.execute(
                "INSERT INTO remote_vaults(vault, live_seq) VALUES(?1, ?2)
                 ON CONFLICT(vault) DO UPDATE SET live_seq = excluded.live_seq",
                params![e.vault, seq],
            )
            .map_err(dbe)?;
        }
        apply_event(&tx, e, None, cfg, &mut dirty, None).map_err(dbe)?;
    }
    let dbe = |e| consumer_error(CacheError::db(db, e), None);
    dirty.fts.write(&tx).map_err(dbe)?;
    reresolve(&tx, &dirty).map_err(dbe)?;
    // Kept for `own_cursor` and inspection only: nothing is skipped by it here.
    let max_seq = batch.iter().map(|e| e.seq).max().unwrap_or(0);
    let cursor = read_cursor(&tx).map_err(dbe)?.unwrap_or(0).max(max_seq);
    write_cursor(&tx, cursor).map_err(dbe)?;
    tx.commit().map_err(dbe)?;
    // Every event handed over so far has its effect: acks all of them.
    Ok(Durable::Upto(cursor))
}

impl Consumer for CacheConsumer {
    fn name(&self) -> &str {
        NAME
    }

    fn status(&self) -> Option<vaultkeeper_core::status::ConsumerReport> {
        Some(vaultkeeper_core::status::ConsumerReport::Cache(
            vaultkeeper_core::status::CacheReport {
                indexed: !self.unindexed.load(Ordering::Relaxed),
            },
        ))
    }

    /// One read of the `meta` row, once when the runner starts: the trait's call is
    /// synchronous.
    fn own_cursor(&mut self) -> Result<Option<u64>, ConsumerError> {
        self.cursor().map_err(|e| consumer_error(e, None))
    }

    /// Applies the batch on the blocking pool (the batch is copied there: it must outlive
    /// the call).
    fn handle(
        &mut self,
        batch: &[Event],
    ) -> impl Future<Output = Result<Durable, ConsumerError>> + Send {
        let batch = batch.to_vec();
        self.off_executor(move |state| state.apply(&batch))
    }

    /// Serves a pending rebuild request (`vaultkeeper reindex` while the daemon runs).
    fn flush(&mut self) -> impl Future<Output = Result<Durable, ConsumerError>> + Send {
        self.off_executor(CacheState::serve_request)
    }

    fn deadline(&self) -> Option<Instant> {
        (self.index_at_once && self.unindexed.load(Ordering::Relaxed)).then(Instant::now)
    }

    fn on_deadline(&mut self) -> impl Future<Output = Result<Durable, ConsumerError>> + Send {
        self.off_executor(|state| {
            if state.unindexed.load(Ordering::Relaxed) {
                state.index_now()
            } else {
                Ok(Durable::Unchanged)
            }
        })
    }
}

/// A `publish --snapshot` event carries the origin's journal head as its seq and is not a
/// replay: it applies at that head, and past it only to files the cache lacks (files never
/// published live, e.g. from before the forwarder was turned on).
fn snapshot_fills_in(tx: &Connection, e: &Event, cursor: u64) -> rusqlite::Result<bool> {
    if e.origin != Origin::Snapshot {
        return Ok(false);
    }
    Ok(e.seq == cursor || get_row(tx, &e.file_path)?.is_none())
}

fn apply_event(
    tx: &Connection,
    e: &Event,
    root: Option<&Path>,
    cfg: &CacheConfig,
    dirty: &mut Dirty,
    prepared: Option<PreparedNote>,
) -> rusqlite::Result<()> {
    match e.event {
        Kind::Created | Kind::Modified => upsert(tx, e, &e.file_path, root, cfg, dirty, prepared),
        Kind::Deleted => {
            if delete_note(tx, &e.file_path, &mut dirty.fts)? {
                dirty.keys.insert(name_key(&e.file_path));
            }
            dirty.sources.remove(&e.file_path);
            Ok(())
        }
        Kind::Renamed => {
            let new = &e.file_path;
            let Some(old) = e.old_path.as_deref().filter(|o| o != new) else {
                return upsert(tx, e, new, root, cfg, dirty, None);
            };
            let Some(row) = get_row(tx, old)? else {
                return upsert(tx, e, new, root, cfg, dirty, None);
            };
            let same_content = e.hash.is_none() || e.hash == row.hash;
            if same_content && is_markdown(old) == is_markdown(new) {
                if new != old && delete_note(tx, new, &mut dirty.fts)? {
                    dirty.sources.remove(new);
                }
                move_note(tx, old, new, &row, e, &mut dirty.fts)?;
                dirty.keys.insert(name_key(old));
                dirty.keys.insert(name_key(new));
                dirty.sources.remove(old);
                dirty.sources.insert(new.clone());
                Ok(())
            } else {
                delete_note(tx, old, &mut dirty.fts)?;
                dirty.keys.insert(name_key(old));
                dirty.sources.remove(old);
                upsert(tx, e, new, root, cfg, dirty, None)
            }
        }
    }
}

/// Moves a file's rows to a new path without parsing it again.
fn move_note(
    tx: &Connection,
    old: &str,
    new: &str,
    row: &Row,
    e: &Event,
    fts: &mut FtsBatch,
) -> rusqlite::Result<()> {
    let mtime = e.mtime.map(mtime_str);
    tx.prepare_cached(
        "UPDATE notes SET path = ?2, name_key = ?3, mtime = COALESCE(?4, mtime) WHERE id = ?1",
    )?
    .execute(params![row.id, new, name_key(new), mtime])?;
    if row.title_from == "name" {
        let title = if is_markdown(new) {
            file_stem(new)
        } else {
            new.rsplit('/').next().unwrap_or(new)
        };
        retitle_fts(tx, row.id, title, fts)?;
        tx.prepare_cached("UPDATE notes SET title = ?2, title_key = ?3 WHERE id = ?1")?
            .execute(params![row.id, title, words_key(title)])?;
    }
    for part in Part::ALL {
        tx.prepare_cached(&format!(
            "UPDATE {} SET path = ?2 WHERE path = ?1",
            part.table()
        ))?
        .execute([old, new])?;
    }
    Ok(())
}

/// The file data of an event that carries the file's content: the same outcome as a reindex
/// reading the file from disk.
pub(crate) fn event_data(e: &Event, text: &str, md: bool, cfg: &CacheConfig) -> FileData {
    let hash = e
        .hash
        .clone()
        .unwrap_or_else(|| blake3::hash(text.as_bytes()).to_hex().to_string());
    let (text, error) = if !md {
        (None, None)
    } else {
        let len = text.len() as u64;
        let content = if len > cfg.max_note_bytes {
            Content::TooLarge
        } else {
            Content::of_bytes(text.as_bytes().to_vec())
        };
        note_text(content, len, cfg.max_note_bytes)
    };
    FileData {
        size: e.size,
        mtime: e.mtime.map(mtime_str),
        hash: Some(hash),
        text,
        error,
    }
}

fn upsert(
    tx: &Connection,
    e: &Event,
    path: &str,
    root: Option<&Path>,
    cfg: &CacheConfig,
    dirty: &mut Dirty,
    prepared: Option<PreparedNote>,
) -> rusqlite::Result<()> {
    let existing = get_row(tx, path)?;
    if let (Some(row), Some(h)) = (&existing, &e.hash)
        && row.hash.as_deref() == Some(h.as_str())
    {
        return Ok(());
    }
    let md = is_markdown(path);
    let (data, parsed) = match prepared {
        Some(p) => (p.data, Some(p.parsed)),
        None => match upsert_data(e, path, root, cfg, md) {
            Some(data) => (data, None),
            None => return Ok(()),
        },
    };
    if let Some(row) = &existing
        && data.hash.is_some()
        && row.hash == data.hash
    {
        return Ok(());
    }
    let parsed = parsed.unwrap_or_else(|| match (&data.text, md) {
        (Some(t), true) => Some(parse_note(path, t)),
        _ => None,
    });
    if let Some(err) = &data.error {
        tracing::warn!(path, error = %err, "cache: indexed with an error");
    }
    let rows = NoteRows::new(path, data, parsed);
    // Links are resolved as they are written, against the cache as it stands; a file of
    // the same name that appears or goes later in the batch puts its key in `dirty.keys`.
    let names = &mut dirty.names;
    let mut resolve_link = |src: &str, target: &str| names.resolve(tx, src, target);
    match &existing {
        Some(row) => rows.replace(tx, row.id, row.shape, &mut dirty.fts, &mut resolve_link),
        None => {
            dirty.keys.insert(name_key(path));
            rows.resolved(&mut resolve_link)?
                .insert(tx, Some(&mut dirty.fts))
        }
    }
}

/// What an upsert indexes of `path`: the event's content, else the file on disk, else
/// metadata only; None when the file is gone since the event.
fn upsert_data(
    e: &Event,
    path: &str,
    root: Option<&Path>,
    cfg: &CacheConfig,
    md: bool,
) -> Option<FileData> {
    let data = match (&e.content, root) {
        (Some(text), _) => event_data(e, text, md, cfg),
        (None, Some(root)) => match load_file(root, path, cfg.max_note_bytes) {
            Ok(d) => d,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // Gone since the event: a later event in the journal says where it went.
                tracing::debug!(path, "cache: file vanished before indexing");
                return None;
            }
            Err(err) => {
                tracing::warn!(path, error = %err, "cache: cannot read file, indexing metadata only");
                FileData {
                    size: e.size,
                    mtime: e.mtime.map(mtime_str),
                    hash: e.hash.clone(),
                    text: None,
                    error: Some(format!("cannot read: {err}")),
                }
            }
        },
        (None, None) => FileData {
            size: e.size,
            mtime: e.mtime.map(mtime_str),
            hash: e.hash.clone(),
            text: None,
            error: md.then(|| "content not in the event: metadata only".to_string()),
        },
    };
    Some(data)
}

/// Resolves again the links of touched notes and the links whose target name was touched.
fn reresolve(tx: &Connection, dirty: &Dirty) -> rusqlite::Result<()> {
    if dirty.sources.is_empty() && dirty.keys.is_empty() {
        return Ok(());
    }
    let mut rows: HashMap<i64, (String, String, Option<String>)> = HashMap::new();
    {
        let mut by_src = tx
            .prepare_cached("SELECT rowid, path, target, target_path FROM links WHERE path = ?1")?;
        for src in &dirty.sources {
            let it = by_src.query_map([src], |r| {
                Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in it {
                let (id, v) = row?;
                rows.insert(id, v);
            }
        }
        let mut by_key = tx.prepare_cached(
            "SELECT rowid, path, target, target_path FROM links WHERE target_key = ?1",
        )?;
        for key in &dirty.keys {
            let it = by_key.query_map([key], |r| {
                Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in it {
                let (id, v) = row?;
                rows.insert(id, v);
            }
        }
    }
    // Looked up afresh: the batch's writes are all made.
    let mut names = NameLookup::default();
    let mut update = tx.prepare_cached("UPDATE links SET target_path = ?2 WHERE rowid = ?1")?;
    for (id, (src, target, old)) in rows {
        let new = names.resolve(tx, &src, &target)?;
        if new != old {
            update.execute(params![id, new])?;
        }
    }
    Ok(())
}

/// Figures from a full index.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReindexStats {
    /// Files listed.
    pub files: usize,
    /// Markdown notes indexed.
    pub notes: usize,
    /// Other files indexed (attachments).
    pub attachments: usize,
    /// Links stored.
    pub links: usize,
    /// Links left unresolved.
    pub unresolved: usize,
    /// Files indexed with an error (malformed YAML, binary, too large …).
    pub with_errors: usize,
    /// Files listed but unreadable or gone (not indexed).
    pub skipped: usize,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// Rebuilds the cache at `cache_db` from the vault: `files` are vault-relative paths with `/`,
/// `cursor` the journal seq the vault on disk is known to include. Notes are read and parsed
/// on several threads and written in one transaction, so readers see the old cache until the
/// new one is complete.
pub fn reindex(
    cache_db: &Path,
    vault_root: &Path,
    files: impl Iterator<Item = String>,
    cursor: u64,
    cfg: &CacheConfig,
) -> Result<ReindexStats, CacheError> {
    let files: Vec<String> = files.collect();
    // No integrity check first (it reads the whole file): every table is dropped and made
    // again. Damage met on the way (dropping a damaged table) starts a new file instead.
    let mut conn = schema::open_for_rebuild(cache_db, cfg.busy_timeout)?;
    let first = reindex_conn(
        &mut conn,
        cache_db,
        vault_root,
        files.clone(),
        cursor,
        cfg,
        None,
        None,
    );
    match first {
        Err(CacheError::Db { source, .. }) if vaultkeeper_journal::is_damage(&source) => {
            tracing::warn!(
                "cache {} is damaged ({source}): rebuilding it in a new file",
                cache_db.display()
            );
            drop(conn);
            let mut conn = schema::open_new(cache_db, cfg.busy_timeout)?;
            reindex_conn(
                &mut conn, cache_db, vault_root, files, cursor, cfg, None, None,
            )
            .map(|(stats, _)| stats)
        }
        other => other.map(|(stats, _)| stats),
    }
}

/// What a parser thread hands the writer for one file: its rows, what settling needs to
/// know of it (when settling), and whether it was indexed with an error.
type Loaded = std::io::Result<(NoteRows, Option<Held>, bool)>;

/// The full index behind [`reindex`] and the consumer's rebuilds. With `settle`, the index
/// settles on the journal's snapshot (see [`super::settle`]) and claims the seq it settled
/// on, if higher than `cursor`; returns the figures and the seq claimed.
#[allow(clippy::too_many_arguments)]
fn reindex_conn(
    conn: &mut Connection,
    db: &Path,
    root: &Path,
    mut files: Vec<String>,
    mut cursor: u64,
    cfg: &CacheConfig,
    request: Option<&str>,
    settle: Option<(settle::SnapshotFn<'_>, Limits)>,
) -> Result<(ReindexStats, u64), CacheError> {
    let start = Instant::now();
    files.sort();
    files.dedup();
    // Name key -> the files with it, as indices into `files` (a copy of every path was 19 MB
    // of a 100,000-note first start's peak).
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        by_key.entry(name_key(f)).or_default().push(i);
    }
    let threads = match cfg.reindex_threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let next = AtomicUsize::new(0);
    let max = cfg.max_note_bytes;
    let mut stats = ReindexStats {
        files: files.len(),
        ..Default::default()
    };
    let files = &files;
    let by_key = &by_key;
    let settling = settle.is_some();
    let dbe = |e| CacheError::db(db, e);
    schema::bulk_cache(conn, true);
    let indexed = std::thread::scope(|s| -> Result<(), CacheError> {
        // Parsed files travel in chunks: one send per file woke the writer (or a parser) per
        // file, and those futex wake-ups were a tenth of a full index.
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<Vec<(usize, Loaded)>>(512 / PARSE_CHUNK);
        let mut started = 0usize;
        for _ in 0..threads {
            let sender = sender.clone();
            let next = &next;
            let spawned = std::thread::Builder::new()
                .name("vk-parse".into())
                .spawn_scoped(s, move || {
                    // Links are resolved against the listing, in memory: this cannot fail.
                    let mut in_listing =
                        |src: &str, target: &str| -> Result<_, std::convert::Infallible> {
                            Ok(resolve(src, target, &mut |k| {
                                by_key.get(k).map_or_else(Vec::new, |ids| {
                                    ids.iter().filter_map(|&i| files.get(i).cloned()).collect()
                                })
                            }))
                        };
                    loop {
                        let first = next.fetch_add(PARSE_CHUNK, Ordering::Relaxed);
                        let end = files.len().min(first.saturating_add(PARSE_CHUNK));
                        if first >= end {
                            break;
                        }
                        let mut chunk = Vec::with_capacity(end - first);
                        for (i, rel) in files.iter().enumerate().take(end).skip(first) {
                            // Everything but the SQLite calls happens here, off the writer,
                            // link resolution included: the writer is the one serial part.
                            let loaded = load_file(root, rel, max).map(|d| {
                                let parsed = match (&d.text, is_markdown(rel)) {
                                    (Some(t), true) => Some(parse_note(rel, t)),
                                    _ => None,
                                };
                                let with_error = d.error.is_some()
                                    || parsed.as_ref().is_some_and(|p| !p.errors.is_empty());
                                let held = if settling { d.held() } else { None };
                                let Ok(rows) =
                                    NoteRows::new(rel, d, parsed).resolved(&mut in_listing);
                                (rows, held, with_error)
                            });
                            chunk.push((i, loaded));
                        }
                        if sender.send(chunk).is_err() {
                            break;
                        }
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "reindex: cannot start a parser thread"),
            }
        }
        drop(sender);
        if started == 0 {
            return Err(CacheError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::other("reindex: no parser thread could be started"),
            });
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(dbe)?;
        for t in schema::TABLES {
            tx.execute_batch(&format!("DROP TABLE IF EXISTS {t}"))
                .map_err(dbe)?;
        }
        tx.execute_batch(schema::SCHEMA).map_err(dbe)?;
        // Fewer, larger FTS segments while bulk loading (fewer merges).
        tx.execute_batch("INSERT INTO notes_fts(notes_fts, rank) VALUES('hashsize', 16777216)")
            .map_err(dbe)?;
        let mut dirty = Dirty::default();
        let mut indexed = Indexed::new();
        for (i, loaded) in receiver.into_iter().flatten() {
            let rel = &files[i];
            match loaded {
                Ok((rows, held, with_error)) => {
                    if is_markdown(rel) {
                        stats.notes += 1;
                    } else {
                        stats.attachments += 1;
                    }
                    if with_error {
                        stats.with_errors += 1;
                    }
                    rows.insert(&tx, None).map_err(dbe)?;
                    if let Some(held) = held {
                        indexed.insert(rel.clone(), held);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %rel, error = %e, "reindex: skipping file");
                    stats.skipped += 1;
                    dirty.keys.insert(name_key(rel));
                }
            }
        }
        let t_rows = start.elapsed();
        tx.execute_batch(schema::INDEXES).map_err(dbe)?;
        let t_idx = start.elapsed();
        if let Some((snapshot, limits)) = settle {
            let head = settle::settle(
                &tx,
                db,
                root,
                max,
                &mut indexed,
                snapshot,
                &mut dirty,
                limits,
            )?;
            cursor = cursor.max(head);
        }
        // Links resolved to a file that could not be read must not point at it, and the
        // files settling read again resolve their links now.
        dirty.fts.write(&tx).map_err(dbe)?;
        reresolve(&tx, &dirty).map_err(dbe)?;
        write_cursor(&tx, cursor).map_err(dbe)?;
        let (links, unresolved): (i64, i64) = tx
            .query_row(
                "SELECT count(*), count(*) - count(target_path) FROM links",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(dbe)?;
        stats.links = usize::try_from(links).unwrap_or(0);
        stats.unresolved = usize::try_from(unresolved).unwrap_or(0);
        stats.elapsed_ms = start.elapsed().as_millis();
        if let Some(token) = request {
            // Tells the waiting `vaultkeeper reindex` it was served, and with what.
            let record = serde_json::json!({ "request": token, "stats": &stats });
            tx.execute(
                "INSERT INTO meta(key, value) VALUES(?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![LAST_REINDEX, record.to_string()],
            )
            .map_err(dbe)?;
        }
        let t_before_commit = start.elapsed();
        tx.commit().map_err(dbe)?;
        tracing::debug!(rows = ?t_rows, indexes = ?t_idx, pre_commit = ?t_before_commit, total = ?start.elapsed(), "reindex phases");
        Ok(())
    });
    schema::bulk_cache(conn, false);
    indexed?;
    stats.elapsed_ms = start.elapsed().as_millis();
    Ok((stats, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_wal_is_checkpointed_beside_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("cache.db");
        let mut consumer = CacheConsumer::open(&db, None, &CacheConfig::default()).expect("open");
        let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        let before = size();
        let batch: Vec<Event> = (1..=4u64)
            .map(|i| {
                let text = format!("# N{i}\n{}", "word ".repeat(20_000));
                let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
                let mut e = Event::builder(Kind::Created, format!("n{i}.md"))
                    .read(text.len() as u64, Some(hash), Some(text))
                    .source("v", "h")
                    .origin(Origin::Watch)
                    .build();
                e.seq = i;
                e
            })
            .collect();
        consumer.apply(&batch).expect("apply");
        // 400 KB of bodies committed: far below SQLite's own mark (1000 pages, 8 MiB), so only
        // the checkpointer copies them into the database file.
        let deadline = Instant::now() + Duration::from_secs(20);
        while size() < before + 300 * 1024 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint copied the WAL into {} ({} bytes)",
                db.display(),
                size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn work_leaves_its_current_thread_runtime_free() {
        // The daemon runs each consumer on its own current-thread runtime. A full index inside
        // `handle` (here: a lister that waits for the runtime's timer) must not block it: if
        // the SQLite work ran on the runtime thread, the timer could not fire and the lister
        // would give up.
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(&vault).expect("mkdir");
        std::fs::write(vault.join("A.md"), "# A\n").expect("write");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let lister: FileLister = Box::new(move |_root: &Path| {
            rx.recv_timeout(Duration::from_secs(20))
                .map_err(|_| std::io::Error::other("starved: the runtime's timer never fired"))?;
            Ok(vec!["A.md".to_string()])
        });
        let db = dir.path().join("cache.db");
        let mut consumer = CacheConsumer::open(&db, Some(vault), &CacheConfig::default())
            .expect("open")
            .with_file_lister(lister);
        let mut first = Event::builder(Kind::Created, "A.md")
            .source("v", "h")
            .origin(Origin::Watch)
            .build();
        first.seq = 1;
        let batch = [first];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let durable = rt.block_on(async {
            let timer = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send(()).expect("the lister is waiting");
            };
            let (durable, ()) = tokio::join!(consumer.handle(&batch), timer);
            durable
        });
        assert_eq!(durable.expect("handled"), Durable::Upto(1));
        assert_eq!(consumer.cursor().expect("cursor"), Some(1));
    }
}
