//! The cache's SQLite schema, its version, and opening the database (read-write or read-only).
//!
//! The schema is versioned with `PRAGMA user_version`. The cache holds nothing that the vault
//! cannot give back, so a version change (or a file that is not a database) is handled by
//! starting an empty database: its cursor is gone, and the consumer rebuilds it with a reindex.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::CacheError;

/// Current schema version; bump it with any change to [`SCHEMA`] (or to what the search
/// tokenizer writes into `notes_fts`). Version 2: the tokenizer of `parse::tokens`, with
/// aliases and frontmatter columns, and the original body in `bodies`. Version 3: `notes_fts`
/// without `contentless_delete` (deletions hand FTS5 the old terms, see `rows::FtsBatch`).
/// Version 4: `notes.shape`, so an edit rewrites only the parts that changed (`rows::Shape`),
/// and an index on `notes.title_key` (a search looks up the notes titled as the query).
pub const SCHEMA_VERSION: i64 = 4;

/// Every table and the FTS table of version [`SCHEMA_VERSION`] (indexes: [`INDEXES`]).
///
/// `notes_fts` holds terms only (contentless): its columns get the text that
/// `parse::tokens` made (words folded, CJK as bigrams, marked stems), which FTS5 splits on
/// spaces alone, since every other character class is a token character. A row is deleted by
/// giving FTS5 its terms again, made from what `notes` and `bodies` store of the note. The
/// original body, for snippets, is in `bodies` (same id as `notes`); `notes_vocab` lists the
/// index's terms (substring search looks words up there).
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name_key TEXT NOT NULL,
    title TEXT NOT NULL,
    title_from TEXT NOT NULL,
    title_key TEXT NOT NULL DEFAULT '',
    frontmatter TEXT,
    aliases TEXT NOT NULL DEFAULT '[]',
    size INTEGER NOT NULL,
    mtime TEXT,
    hash TEXT,
    words INTEGER NOT NULL DEFAULT 0,
    is_markdown INTEGER NOT NULL,
    error TEXT,
    shape BLOB
);
CREATE TABLE IF NOT EXISTS tags(
    path TEXT NOT NULL,
    tag TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    source TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS links(
    path TEXT NOT NULL,
    target_raw TEXT NOT NULL,
    target TEXT NOT NULL,
    target_key TEXT NOT NULL,
    target_path TEXT,
    kind TEXT NOT NULL,
    heading TEXT,
    block TEXT,
    display TEXT,
    line INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS headings(
    path TEXT NOT NULL,
    level INTEGER NOT NULL,
    text TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks(
    path TEXT NOT NULL,
    block_id TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks(
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    status TEXT NOT NULL,
    done INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fields(
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    key_fold TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bodies(
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(
    title, aliases, fm, body,
    content = '',
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* C*'"
);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_vocab USING fts5vocab(notes_fts, row);
"#;

/// The indexes, created after the rows in a full reindex (faster than maintaining them).
pub(crate) const INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS notes_name_key ON notes(name_key);
CREATE INDEX IF NOT EXISTS notes_mtime ON notes(mtime);
CREATE INDEX IF NOT EXISTS notes_title_key ON notes(title_key);
CREATE INDEX IF NOT EXISTS tags_path ON tags(path);
CREATE INDEX IF NOT EXISTS tags_key ON tags(tag_key);
CREATE INDEX IF NOT EXISTS links_path ON links(path);
CREATE INDEX IF NOT EXISTS links_target_key ON links(target_key);
CREATE INDEX IF NOT EXISTS links_target_path ON links(target_path);
CREATE INDEX IF NOT EXISTS headings_path ON headings(path);
CREATE INDEX IF NOT EXISTS blocks_path ON blocks(path);
CREATE INDEX IF NOT EXISTS tasks_path ON tasks(path);
CREATE INDEX IF NOT EXISTS fields_path ON fields(path);
CREATE INDEX IF NOT EXISTS fields_key ON fields(key_fold);
"#;

/// Tables dropped by a rebuild, in an order that is always valid.
pub(crate) const TABLES: &[&str] = &[
    "notes_vocab",
    "notes_fts",
    "bodies",
    "fields",
    "tasks",
    "blocks",
    "headings",
    "links",
    "tags",
    "notes",
    "meta",
];

/// Page cache of a cache connection between full indexes, in KiB: the daemon's connection
/// lives for the whole run, and every page it ever read stays resident up to this size.
pub(crate) const STEADY_CACHE_KIB: i64 = 4096;

/// Prepared statements a writing connection keeps (see [`try_open`]).
const STATEMENT_CACHE: usize = 64;

/// Bytes of the cache a read-only connection maps into memory (see [`open_ro`]).
const READ_MMAP_BYTES: i64 = 256 * 1024 * 1024;

/// Page cache while a full index writes its one big transaction, in KiB (keeps it off the
/// disk until the commit).
pub(crate) const BULK_CACHE_KIB: i64 = 16384;

/// Raises (`true`) or lowers (`false`) `conn`'s page cache around a full index. Lowering also
/// hands the index's pages back (`shrink_memory`), so they do not stay resident for the rest
/// of the run. Best effort: a failure only costs memory, so it is logged, not returned.
pub(crate) fn bulk_cache(conn: &Connection, bulk: bool) {
    let kib = if bulk {
        BULK_CACHE_KIB
    } else {
        STEADY_CACHE_KIB
    };
    let done = conn.pragma_update(None, "cache_size", -kib).and_then(|()| {
        if bulk {
            Ok(())
        } else {
            conn.execute_batch("PRAGMA shrink_memory")
        }
    });
    if let Err(e) = done {
        tracing::debug!(error = %e, bulk, "cache: cannot resize the page cache");
    }
}

fn remove_db_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        // Absent files are fine: the point is that none is left.
        let _ = std::fs::remove_file(&p);
    }
}

fn try_open(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy)?;
    // An event's upsert alone cycles through more than rusqlite's default 16 cached
    // statements; past it each one was prepared again per event (6% of a catch-up).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Only takes effect on a new, empty database: larger pages suit the FTS index.
    conn.pragma_update(None, "page_size", 8192)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL + NORMAL: a crash loses at most the last transactions, never consistency; the
    // cursor lives in the same transactions, so lost work is simply handed over again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Between full indexes the page cache stays small (what the daemon holds while idle); a
    // full index raises it for its one big transaction (see [`bulk_cache`]).
    conn.pragma_update(None, "cache_size", -STEADY_CACHE_KIB)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != SCHEMA_VERSION {
        if version != 0 {
            tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "cache schema changed: rebuilding");
            let tx = conn.unchecked_transaction()?;
            for t in TABLES {
                tx.execute_batch(&format!("DROP TABLE IF EXISTS {t}"))?;
            }
            tx.commit()?;
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(INDEXES)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    Ok(conn)
}

/// Opens the cache for a short write beside the running daemon, without the integrity
/// check: the daemon's own [`open_rw`] checks (and rebuilds) the file, and a second check
/// here would scan the whole cache per call, or rebuild it under the daemon.
pub(crate) fn open_beside_daemon(path: &Path, busy: Duration) -> Result<Connection, CacheError> {
    try_open(path, busy).map_err(|e| CacheError::db(path, e))
}

/// Opens (creating or rebuilding as needed) the cache for writing. Never fails on a cache that
/// is damaged (a `quick_check` runs on every open) or from another version: it starts empty
/// instead, and the consumer, finding no cursor, rebuilds it from the vault.
pub(crate) fn open_rw(path: &Path, busy: Duration) -> Result<Connection, CacheError> {
    make_parent(path)?;
    let damage = match try_open(path, busy) {
        Ok(c) => {
            // A damaged page in the middle opens fine and reads as missing rows; the cache
            // would then answer wrongly for good. Checking costs one read of the file.
            let started = std::time::Instant::now();
            match vaultkeeper_journal::check_db(&c, false) {
                Ok(problems) if problems.is_empty() => {
                    tracing::debug!(path = %path.display(), ms = started.elapsed().as_millis() as u64, "cache quick_check done");
                    return Ok(c);
                }
                Ok(problems) => vaultkeeper_journal::summarize(&problems),
                Err(e) if is_busy(&e) => return Err(CacheError::db(path, e)),
                Err(e) => e.to_string(),
            }
        }
        Err(e) if is_busy(&e) => return Err(CacheError::db(path, e)),
        Err(e) => e.to_string(),
    };
    tracing::warn!(
        "cache {} is damaged or unreadable ({damage}): rebuilding it from the vault",
        path.display()
    );
    open_new(path, busy)
}

/// Opens (creating as needed) the cache for a full rebuild, without the integrity check of
/// [`open_rw`]: the rebuild drops and makes every table again, so the check would read the
/// whole file only to throw it away. A file that is not a database starts empty.
pub(crate) fn open_for_rebuild(path: &Path, busy: Duration) -> Result<Connection, CacheError> {
    make_parent(path)?;
    match try_open(path, busy) {
        Ok(c) => Ok(c),
        Err(e) if is_busy(&e) => Err(CacheError::db(path, e)),
        Err(_) => open_new(path, busy),
    }
}

/// Makes the folder the cache lives in.
fn make_parent(path: &Path) -> Result<(), CacheError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Removes the cache's files and opens a new, empty one (after damage).
pub(crate) fn open_new(path: &Path, busy: Duration) -> Result<Connection, CacheError> {
    remove_db_files(path);
    try_open(path, busy).map_err(|e| CacheError::db(path, e))
}

/// Opens the cache read-only for queries (works while the daemon writes: WAL).
pub fn open_ro(path: &Path) -> Result<Connection, CacheError> {
    if !path.exists() {
        return Err(CacheError::NoCache(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| CacheError::db(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| CacheError::db(path, e))?;
    // A query process is short-lived: reading pages through a memory map saves a copy and a
    // page buffer per page read (the profile of a search matching every note had 20% in
    // pread and page allocation). The map is the file's own pages, dropped with the connection.
    conn.pragma_update(None, "mmap_size", READ_MMAP_BYTES)
        .map_err(|e| CacheError::db(path, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| CacheError::db(path, e))?;
    if version != SCHEMA_VERSION {
        return Err(CacheError::Stale {
            path: path.to_path_buf(),
            found: version,
        });
    }
    Ok(conn)
}

/// True for "database is busy/locked": a transient condition.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The stored cursor (highest applied journal seq), if any.
pub fn read_cursor(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    use rusqlite::OptionalExtension;
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.and_then(|s| s.parse().ok()))
}

/// Stores the cursor (inside the caller's transaction).
pub(crate) fn write_cursor(conn: &Connection, seq: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('cursor', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [seq.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_change_and_garbage_rebuild() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("c.db");
        {
            let c = open_rw(&db, Duration::from_secs(1)).expect("open");
            write_cursor(&c, 7).expect("cursor");
            assert_eq!(read_cursor(&c).expect("read"), Some(7));
            c.pragma_update(None, "user_version", 999).expect("bump");
        }
        let c = open_rw(&db, Duration::from_secs(1)).expect("reopen");
        assert_eq!(read_cursor(&c).expect("read"), None);
        drop(c);
        std::fs::write(&db, b"this is not a database, not at all, no").expect("write");
        for s in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", db.display()));
        }
        let c = open_rw(&db, Duration::from_secs(1)).expect("garbage reopen");
        assert_eq!(read_cursor(&c).expect("read"), None);
        drop(c);
        assert!(open_ro(&db).is_ok());
    }
}
