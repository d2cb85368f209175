//! vaultkeeper-journal: the embedded bus. A SQLite journal of events, consumer cursors,
//! dead letters and the watcher's snapshot of the vault, all changed in single transactions.
//!
//! A tour of [`Journal`]:
//!
//! - opening: [`Journal::open`] (the daemon, the only writer), [`Journal::open_readonly`],
//!   [`Journal::check_at_start`] and [`check_file`] (damage is refused, never repaired here),
//! - events: [`Journal::append`] (events and snapshot rows in one transaction),
//!   [`Journal::read_after`], [`Journal::get`], [`Journal::head`], [`Journal::prune`],
//! - cursors: [`Journal::cursor`], [`Journal::set_cursor`], [`Journal::cursors`],
//! - dead letters: [`Journal::add_dead_letter`], [`Journal::dead_letters`], retries,
//! - the watcher's snapshot: [`Journal::load_files`] and [`SnapshotChange`],
//! - errors: [`JournalError`], naming the database file, with its source kept.
//!
//! Event bodies are the [`Event`] envelope's JSON; reading one back checks its derived
//! fields (see `vaultkeeper_core::event`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use vaultkeeper_core::event::Event;
pub use vaultkeeper_core::file::FileState;
use vaultkeeper_core::file::{hash_hex, parse_hash};
pub mod checkpoint;
pub mod reader;
pub use reader::JournalReader;

/// A journal failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite refused.
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored event body does not parse (written by an incompatible version?), or an
    /// event cannot be encoded.
    #[error("journal {path}: event {seq} is unreadable: {source}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The event's sequence number.
        seq: u64,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// SQLite's integrity check found damage: the file is left as it is, never used.
    #[error(
        "journal {path} is damaged: {problems}. It was left as it is and is not used. Run `vaultkeeper salvage` (with the daemon stopped): it copies what can be read into a new journal and keeps the damaged file beside it; the next start rescans the vault"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the check reported (the first few lines).
        problems: String,
    },
}

impl JournalError {
    /// True when trying again later may succeed: the disk is full, or another writer holds
    /// the database.
    pub fn is_transient(&self) -> bool {
        match self {
            JournalError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
                    | Some(rusqlite::ErrorCode::DatabaseBusy)
                    | Some(rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// A change to the snapshot, written with the events that caused it.
#[derive(Debug, Clone)]
pub enum SnapshotChange {
    /// The file is now in this state.
    Put(String, FileState),
    /// The file is gone.
    Remove(String),
}

/// An event a consumer gave up on.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// Row id, for `dead-letters --retry/--drop`.
    pub id: i64,
    /// The consumer that failed.
    pub consumer: String,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's id.
    pub event_id: String,
    /// The file the event named.
    pub path: String,
    /// The last error.
    pub reason: String,
    /// How often it was tried.
    pub attempts: u32,
    /// When it was given up on (RFC 3339).
    pub at: String,
    /// A retry was asked for and has not run yet.
    pub retry_requested: bool,
}

/// A consumer's position.
#[derive(Debug, Clone, Serialize)]
pub struct CursorRow {
    /// The consumer's name.
    pub consumer: String,
    /// The last seq whose effect is durable.
    pub seq: u64,
    /// When it last moved (RFC 3339).
    pub updated_at: String,
}

const SCHEMA_VERSION: i64 = 1;

/// The page size of a new journal. Each WAL frame is written with two `pwrite`s (header,
/// page) and SQLite's page size is 4 KiB by default; 16 KiB pages take a quarter of the
/// frames and system calls for the same events. Events are read in runs of seqs, so a
/// bigger page costs reads nothing.
const PAGE_SIZE: i64 = 16384;

/// Bytes of WAL after which a commit (or the background checkpoint) checkpoints, 32 MiB.
pub const CHECKPOINT_EVERY_BYTES: u64 = 32 << 20;

/// A row's bytes in the WAL besides its body (columns, index entries), for the estimate.
const ROW_OVERHEAD: u64 = 200;

/// Columns bound per event row in [`Journal::append`].
const APPEND_COLUMNS: usize = 9;

/// Event rows per INSERT statement in [`Journal::append`] (the rest go one by one).
const APPEND_ROWS: usize = 32;

/// One event row.
const APPEND_ONE: &str = "INSERT INTO events(seq, id, at, kind, path, old_path, hash, size, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// [`APPEND_ROWS`] event rows in one statement.
fn append_sql_many() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
        format!(
            "INSERT INTO events(seq, id, at, kind, path, old_path, hash, size, body) VALUES {}",
            vec![row; APPEND_ROWS].join(", ")
        )
    })
}

/// The highest seq ever given (AUTOINCREMENT's mark; 0 for a new journal), read inside the
/// appending transaction.
fn high_water(conn: &Connection) -> rusqlite::Result<u64> {
    let mark: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
                    coalesce((SELECT max(seq) FROM events), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(mark).unwrap_or(0))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    old_path TEXT,
    hash TEXT,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors(
    consumer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters(
    id INTEGER PRIMARY KEY,
    consumer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL,
    retry INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// An open journal. Each thread or task opens its own; SQLite's WAL lets readers
/// and the one writer proceed together.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Checkpoints the WAL off the appending thread, once asked to
    /// ([`Journal::checkpoint_in_background`]).
    checkpointer: Option<checkpoint::Checkpointer>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Journal {
    /// Opens (creating and migrating) the journal for reading and writing.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let conn = Connection::open(path).map_err(|source| JournalError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let journal = Journal {
            conn,
            path: path.to_path_buf(),
            checkpointer: None,
        };
        journal.setup()?;
        Ok(journal)
    }

    /// Opens an existing journal read-only (queries, `events`, `status`).
    pub fn open_readonly(path: &Path) -> Result<Journal, JournalError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| JournalError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let journal = Journal {
            conn,
            path: path.to_path_buf(),
            checkpointer: None,
        };
        journal
            .conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| journal.err(e))?;
        Ok(journal)
    }

    fn err(&self, source: rusqlite::Error) -> JournalError {
        JournalError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// A stored body back into an event, with its sequence number.
    fn parse_body(&self, seq: i64, body: &str) -> Result<Event, JournalError> {
        let mut event: Event = serde_json::from_str(body).map_err(|err| JournalError::Corrupt {
            path: self.path.clone(),
            seq: seq as u64,
            source: err,
        })?;
        event.seq = seq as u64;
        Ok(event)
    }

    fn setup(&self) -> Result<(), JournalError> {
        // WAL: readers never block the writer. FULL: an appended event survives power
        // loss, not only a crash; appends are batched, so the fsync is paid per flush.
        self.conn
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        // Set before the file has its first page; an existing journal keeps its own size.
        self.conn
            .pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        // Checkpoints every 32 MiB of WAL instead of SQLite's 4 MiB: each one costs two more
        // fsyncs (the WAL, then the database), which were half of an append's fsyncs. An
        // append is durable at its commit either way (the WAL is fsynced then); the WAL file
        // is kept at that size after a checkpoint.
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let every = CHECKPOINT_EVERY_BYTES as i64;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", every / page.max(512))
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "journal_size_limit", every)
            .map_err(|e| self.err(e))?;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version < SCHEMA_VERSION {
            self.conn.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
            self.conn
                .pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Checks the journal at `path` before the daemon uses it: `PRAGMA quick_check`, which
    /// reads every page but skips the index-to-table cross checks (see [`check_db`]).
    /// Fails with [`JournalError::Damaged`] on damage; a missing journal is fine.
    pub fn check_at_start(path: &Path) -> Result<(), JournalError> {
        if !path.exists() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let problems = check_file(path, false)?;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, path = %path.display(), "journal quick_check done");
        if problems.is_empty() {
            Ok(())
        } else {
            Err(JournalError::Damaged {
                path: path.to_path_buf(),
                problems: summarize(&problems),
            })
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends events (assigning their `seq`) and applies snapshot changes, in one
    /// transaction: when it returns, the events are durable (WAL, `synchronous = FULL`: the
    /// commit is fsynced). Returns the new head.
    ///
    /// The events get the next seqs in order, written explicitly: the write transaction is
    /// taken first (IMMEDIATE), so no other writer can come between reading the high-water
    /// mark and inserting, and AUTOINCREMENT moves its mark to the last one. Rows go in
    /// [`APPEND_ROWS`] at a time, one statement each, which roughly halves SQLite's cost per
    /// event against one statement per event.
    pub fn append(
        &mut self,
        events: &mut [Event],
        snapshot: &[SnapshotChange],
    ) -> Result<u64, JournalError> {
        let path = self.path.clone();
        let e = |source| JournalError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        // What the WAL gets, about: each body with its row's columns and index entries.
        let mut wal_bytes = snapshot.len() as u64 * ROW_OVERHEAD;
        {
            let first = high_water(&tx).map_err(e)? + 1;
            let mut bodies: Vec<String> = Vec::with_capacity(events.len());
            for event in events.iter_mut() {
                // The body never carries its seq: the column is the one truth.
                event.seq = 0;
                bodies.push(serde_json::to_string(&event).map_err(|err| {
                    JournalError::Corrupt {
                        path: path.clone(),
                        seq: 0,
                        source: err,
                    }
                })?);
            }
            wal_bytes += bodies
                .iter()
                .map(|b| b.len() as u64 + ROW_OVERHEAD)
                .sum::<u64>();
            let mut seq = first;
            let mut done = 0usize;
            while done < events.len() {
                let rows = if events.len() - done >= APPEND_ROWS {
                    APPEND_ROWS
                } else {
                    1
                };
                let sql = if rows == APPEND_ROWS {
                    append_sql_many()
                } else {
                    APPEND_ONE
                };
                let mut insert = tx.prepare_cached(sql).map_err(e)?;
                let mut at = Vec::with_capacity(rows);
                for event in &events[done..done + rows] {
                    at.push(
                        event
                            .timestamp
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    );
                }
                let mut k = 1;
                for (i, event) in events[done..done + rows].iter().enumerate() {
                    let s = i64::try_from(seq + i as u64).unwrap_or(i64::MAX);
                    insert.raw_bind_parameter(k, s).map_err(e)?;
                    insert.raw_bind_parameter(k + 1, &event.id).map_err(e)?;
                    insert.raw_bind_parameter(k + 2, &at[i]).map_err(e)?;
                    insert
                        .raw_bind_parameter(k + 3, event.event.as_str())
                        .map_err(e)?;
                    insert
                        .raw_bind_parameter(k + 4, &event.file_path)
                        .map_err(e)?;
                    insert
                        .raw_bind_parameter(k + 5, &event.old_path)
                        .map_err(e)?;
                    insert.raw_bind_parameter(k + 6, &event.hash).map_err(e)?;
                    insert
                        .raw_bind_parameter(k + 7, event.size as i64)
                        .map_err(e)?;
                    insert
                        .raw_bind_parameter(k + 8, &bodies[done + i])
                        .map_err(e)?;
                    k += APPEND_COLUMNS;
                }
                insert.raw_execute().map_err(e)?;
                for event in &mut events[done..done + rows] {
                    event.seq = seq;
                    seq += 1;
                }
                done += rows;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO files(path, size, mtime_ns, ino, hash) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(path) DO UPDATE SET size = excluded.size,
                       mtime_ns = excluded.mtime_ns, ino = excluded.ino, hash = excluded.hash",
                )
                .map_err(e)?;
            let mut remove = tx
                .prepare_cached("DELETE FROM files WHERE path = ?1")
                .map_err(e)?;
            for change in snapshot {
                match change {
                    SnapshotChange::Put(p, s) => {
                        put.execute(params![
                            p,
                            s.size as i64,
                            s.mtime_ns,
                            s.ino as i64,
                            hash_hex(s.hash.as_ref())
                        ])
                        .map_err(e)?;
                    }
                    SnapshotChange::Remove(p) => {
                        remove.execute(params![p]).map_err(e)?;
                    }
                }
            }
        }
        tx.commit().map_err(e)?;
        if let Some(c) = &mut self.checkpointer {
            c.wrote(wal_bytes);
        }
        self.head()
    }

    /// Checkpoints the WAL on a thread of its own from now on, about every `every_bytes`
    /// appended, instead of in the append that crosses SQLite's mark (see `checkpoint`).
    /// For the one appender (the watcher); on an error, appends checkpoint as before.
    pub fn checkpoint_in_background(&mut self, every_bytes: u64) -> std::io::Result<()> {
        if self.checkpointer.is_some() {
            return Ok(());
        }
        let pace = checkpoint::Pace {
            every_bytes,
            gap: std::time::Duration::ZERO,
        };
        let started = checkpoint::Checkpointer::start(&self.conn, &self.path, pace, "journal")?;
        self.checkpointer = Some(started);
        Ok(())
    }

    /// The head of the journal at `path`, or 0 when there is no journal yet.
    pub fn head_of(path: &Path) -> Result<u64, JournalError> {
        if !path.exists() {
            return Ok(0);
        }
        Journal::open_readonly(path)?.head()
    }

    /// The highest sequence number ever appended (0 for an empty journal).
    pub fn head(&self) -> Result<u64, JournalError> {
        // sqlite_sequence remembers the high-water mark even after pruning.
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// The oldest sequence number still held, if any.
    pub fn first_seq(&self) -> Result<Option<u64>, JournalError> {
        let seq: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(seq.map(|s| s as u64))
    }

    /// Up to `limit` events with `seq > after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, body) = row.map_err(|e| self.err(e))?;
            out.push(self.parse_body(seq, &body)?);
        }
        Ok(out)
    }

    /// One event by seq.
    pub fn get(&self, seq: u64) -> Result<Option<Event>, JournalError> {
        Ok(self
            .read_after(seq.saturating_sub(1), 1)?
            .into_iter()
            .find(|e| e.seq == seq))
    }

    /// A consumer's cursor, if it has one.
    pub fn cursor(&self, consumer: &str) -> Result<Option<u64>, JournalError> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM cursors WHERE consumer = ?1",
                params![consumer],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(seq.map(|s| s as u64))
    }

    /// Moves a consumer's cursor.
    pub fn set_cursor(&self, consumer: &str, seq: u64) -> Result<(), JournalError> {
        self.conn
            .prepare_cached(
                "INSERT INTO cursors(consumer, seq, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![consumer, seq as i64, now_rfc3339()]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every consumer's cursor.
    pub fn cursors(&self) -> Result<Vec<CursorRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT consumer, seq, updated_at FROM cursors ORDER BY consumer")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CursorRow {
                    consumer: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    updated_at: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Removes a consumer's cursor, on the user's word (`vaultkeeper forget`): it no longer
    /// holds back retention, and the consumer starts afresh if it comes back. Returns
    /// whether there was one. A consumer that is merely off for a run keeps its cursor.
    pub fn forget_cursor(&self, consumer: &str) -> Result<bool, JournalError> {
        let n = self
            .conn
            .execute("DELETE FROM cursors WHERE consumer = ?1", params![consumer])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Records an event a consumer gave up on.
    pub fn add_dead_letter(
        &self,
        consumer: &str,
        event: &Event,
        reason: &str,
        attempts: u32,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO dead_letters(consumer, seq, event_id, path, reason, attempts, at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    consumer,
                    event.seq as i64,
                    event.id,
                    event.file_path,
                    reason,
                    attempts,
                    now_rfc3339(),
                    serde_json::to_string(event).unwrap_or_default()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// All dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, consumer, seq, event_id, path, reason, attempts, at, retry
                 FROM dead_letters ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    consumer: r.get(1)?,
                    seq: r.get::<_, i64>(2)? as u64,
                    event_id: r.get(3)?,
                    path: r.get(4)?,
                    reason: r.get(5)?,
                    attempts: r.get(6)?,
                    at: r.get(7)?,
                    retry_requested: r.get::<_, i64>(8)? != 0,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Asks for a dead letter to be handed to its consumer again; returns whether it exists.
    pub fn request_retry(&self, id: i64) -> Result<bool, JournalError> {
        let n = self
            .conn
            .execute(
                "UPDATE dead_letters SET retry = 1 WHERE id = ?1",
                params![id],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Dead letters of `consumer` waiting for a retry, with their events.
    pub fn retries(&self, consumer: &str) -> Result<Vec<(i64, Event)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, seq, body FROM dead_letters WHERE consumer = ?1 AND retry = 1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![consumer], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, seq, body) = row.map_err(|e| self.err(e))?;
            out.push((id, self.parse_body(seq, &body)?));
        }
        Ok(out)
    }

    /// Records a failed retry: the letter stays, with the new reason.
    pub fn retry_failed(&self, id: i64, reason: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "UPDATE dead_letters SET retry = 0, attempts = attempts + 1, reason = ?2, at = ?3
                 WHERE id = ?1",
                params![id, reason, now_rfc3339()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a dead letter; returns whether it existed.
    pub fn remove_dead_letter(&self, id: i64) -> Result<bool, JournalError> {
        let n = self
            .conn
            .execute("DELETE FROM dead_letters WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The watcher's snapshot of the vault.
    pub fn load_files(&self) -> Result<BTreeMap<String, FileState>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, mtime_ns, ino, hash FROM files")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    FileState {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        ino: r.get::<_, i64>(3)? as u64,
                        hash: parse_hash(r.get_ref(4)?.as_str().unwrap_or_default()),
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The head and the watcher's snapshot journaled with it, read together: the vault as
    /// the journal knows it at that seq (a full index of the cache settles on it).
    pub fn snapshot(&self) -> Result<(u64, BTreeMap<String, FileState>), JournalError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let head = self.head()?;
        let files = self.load_files()?;
        tx.finish().map_err(|e| self.err(e))?;
        Ok((head, files))
    }

    /// Deletes events that every consumer has passed and that are older than `max_age`.
    /// Returns how many were removed.
    pub fn prune(&self, max_age: Duration) -> Result<usize, JournalError> {
        let min_cursor: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM cursors", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let Some(min_cursor) = min_cursor else {
            return Ok(0);
        };
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(3650));
        let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let n = self
            .conn
            .execute(
                "DELETE FROM events WHERE seq <= ?1 AND at < ?2",
                params![min_cursor, cutoff],
            )
            .map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// A value from the meta table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, JournalError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a value in the meta table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Runs SQLite's own check on an open database: `PRAGMA integrity_check` when `full`, else
/// the cheaper `quick_check` (same page and b-tree checks, no index-content checks). Returns
/// the problems found (empty when healthy). Damage so bad that the check cannot run counts
/// as a problem; only a busy or unreadable file is an error.
pub fn check_db(conn: &Connection, full: bool) -> rusqlite::Result<Vec<String>> {
    let pragma = if full {
        "PRAGMA integrity_check(20)"
    } else {
        "PRAGMA quick_check(20)"
    };
    let rows = conn.prepare(pragma).and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    });
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(Vec::new()),
        Ok(rows) => Ok(rows),
        Err(e) if is_damage(&e) => Ok(vec![e.to_string()]),
        Err(e) => Err(e),
    }
}

/// True for the errors SQLite gives for a damaged file (as opposed to busy, I/O, permissions).
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase)
    )
}

/// Opens the database at `path` read-only and runs [`check_db`] on it.
pub fn check_file(path: &Path, full: bool) -> Result<Vec<String>, JournalError> {
    let err = |source| JournalError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) if is_damage(&e) => return Ok(vec![e.to_string()]),
        Err(e) => return Err(err(e)),
    };
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    check_db(&conn, full).map_err(err)
}

/// The first few problems on one line, for a message.
pub fn summarize(problems: &[String]) -> String {
    let mut out = problems
        .iter()
        .take(3)
        .map(|p| p.trim())
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > 3 {
        out.push_str(&format!(" (and {} more)", problems.len() - 3));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultkeeper_core::event::sample as ev;

    #[test]
    fn a_new_journal_has_big_pages_and_an_old_one_keeps_its_own() {
        let pragma = |j: &Journal, name: &str| -> i64 {
            j.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .expect("pragma")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let new = Journal::open(&dir.path().join("new.db")).expect("open");
        assert_eq!(pragma(&new, "page_size"), PAGE_SIZE);
        assert_eq!(
            pragma(&new, "wal_autocheckpoint"),
            CHECKPOINT_EVERY_BYTES as i64 / PAGE_SIZE
        );
        // A journal made before pages grew: 4 KiB pages, in WAL mode, with events in it.
        let old_path = dir.path().join("old.db");
        {
            let c = Connection::open(&old_path).expect("old");
            c.pragma_update(None, "page_size", 4096).expect("page");
            c.pragma_update(None, "journal_mode", "WAL").expect("wal");
            c.execute_batch(SCHEMA).expect("schema");
            c.pragma_update(None, "user_version", SCHEMA_VERSION)
                .expect("version");
        }
        let mut old = Journal::open(&old_path).expect("reopen");
        assert_eq!(
            pragma(&old, "page_size"),
            4096,
            "kept: WAL cannot change it"
        );
        assert_eq!(
            pragma(&old, "wal_autocheckpoint"),
            CHECKPOINT_EVERY_BYTES as i64 / 4096,
            "the checkpoint mark is in bytes, whatever the page size"
        );
        let mut batch = vec![ev("a.md")];
        assert_eq!(old.append(&mut batch, &[]).expect("append"), 1);
        assert_eq!(old.read_after(0, 10).expect("read"), batch);
    }

    #[test]
    fn append_assigns_seq_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(&dir.path().join("j.db")).expect("open");
        let mut batch = vec![ev("a.md"), ev("b.md")];
        let head = j
            .append(
                &mut batch,
                &[SnapshotChange::Put(
                    "a.md".into(),
                    FileState {
                        size: 1,
                        mtime_ns: 2,
                        ino: 3,
                        hash: Some(vaultkeeper_core::file::ContentHash::from([7; 32])),
                    },
                )],
            )
            .expect("append");
        assert_eq!(head, 2);
        assert_eq!(batch[0].seq, 1);
        assert_eq!(batch[1].seq, 2);
        let back = j.read_after(0, 10).expect("read");
        assert_eq!(back, batch);
        assert_eq!(j.read_after(1, 10).expect("read").len(), 1);
        assert_eq!(j.load_files().expect("files").len(), 1);
    }

    /// The appender leaves checkpoints to the background thread: the database file takes
    /// the WAL's pages without an append crossing SQLite's mark, and nothing is lost.
    #[test]
    fn checkpoints_run_beside_the_appender() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("j.db");
        let mut j = Journal::open(&db).expect("open");
        j.checkpoint_in_background(64 * 1024).expect("thread");
        let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        let before = size();
        let body = "x".repeat(1000);
        let mut total = 0;
        for b in 0..10 {
            let mut batch: Vec<Event> = (0..30)
                .map(|i| {
                    let mut e = ev(&format!("{b}/{i}.md"));
                    e.content = Some(body.clone());
                    e
                })
                .collect();
            j.append(&mut batch, &[]).expect("append");
            total += batch.len();
        }
        // 300 KiB appended: far below SQLite's own mark (32 MiB), past ours (64 KiB).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while size() < before + 200 * 1024 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the WAL into {} ({} bytes)",
                db.display(),
                size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(j.read_after(0, 1000).expect("read").len(), total);
        drop(j);
        let again = Journal::open(&db).expect("reopen");
        assert_eq!(again.head().expect("head"), total as u64);
    }

    #[test]
    fn a_large_batch_gets_consecutive_seqs_in_order() {
        // More than one multi-row statement and a remainder row by row.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(&dir.path().join("j.db")).expect("open");
        let mut first = vec![ev("first.md")];
        j.append(&mut first, &[]).expect("append");
        let n = APPEND_ROWS * 3 + 5;
        let mut batch: Vec<Event> = (0..n).map(|i| ev(&format!("{i}.md"))).collect();
        let head = j.append(&mut batch, &[]).expect("append");
        assert_eq!(head, n as u64 + 1);
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (2..=n as u64 + 1).collect::<Vec<_>>());
        let back = j.read_after(1, n + 10).expect("read");
        assert_eq!(back, batch);
    }

    #[test]
    fn prune_respects_cursors_and_seq_never_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(&dir.path().join("j.db")).expect("open");
        let mut batch: Vec<Event> = (0..10).map(|i| ev(&format!("{i}.md"))).collect();
        j.append(&mut batch, &[]).expect("append");
        // No cursor: nothing is pruned.
        assert_eq!(j.prune(Duration::ZERO).expect("prune"), 0);
        j.set_cursor("a", 10).expect("cursor");
        j.set_cursor("b", 4).expect("cursor");
        assert_eq!(j.prune(Duration::ZERO).expect("prune"), 4);
        assert_eq!(j.first_seq().expect("first"), Some(5));
        j.set_cursor("b", 10).expect("cursor");
        assert_eq!(j.prune(Duration::ZERO).expect("prune"), 6);
        let mut more = vec![ev("x.md")];
        j.append(&mut more, &[]).expect("append");
        assert_eq!(more[0].seq, 11, "sequence numbers are never reused");
        assert_eq!(j.head().expect("head"), 11);
    }
}
