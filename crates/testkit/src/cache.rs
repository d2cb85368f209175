//! Readings of a shadow cache for the tests that compare it: the cursor, every row as
//! text, and the check that a live cache equals one rebuilt from scratch by `reindex`.
//! Read-only, through SQLite itself, so the cache crate is not needed.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::vault::TestVault;

/// The cache at `db`, opened read-only.
fn ro(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open cache ro")
}

/// The cache's cursor (`meta.cursor`), if the cache at `db` exists and has one.
pub fn cache_cursor(db: &Path) -> Option<u64> {
    if !db.exists() {
        return None;
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| {
        r.get::<_, String>(0)
    })
    .ok()?
    .parse()
    .ok()
}

/// Every row of every content table, as text, sorted. Excluded: `meta` (the cursor differs by
/// construction), `notes.id` and the FTS rowid (row ids depend on insertion order, so the FTS
/// rows are keyed by the note's path instead), and `notes.mtime` (an event's mtime is the stat
/// made when it was observed; a later write with the same content is, by design, no work for
/// the cache, so its mtime may lag the disk while every derived row is identical).
pub fn dump(db: &Path) -> Vec<(String, Vec<String>)> {
    let c = ro(db);
    let queries = [
        (
            "notes",
            "SELECT path, name_key, title, title_from, frontmatter, aliases, size, hash, words, is_markdown, error FROM notes",
        ),
        ("tags", "SELECT * FROM tags"),
        ("links", "SELECT * FROM links"),
        ("headings", "SELECT * FROM headings"),
        ("blocks", "SELECT * FROM blocks"),
        ("tasks", "SELECT * FROM tasks"),
        ("fields", "SELECT * FROM fields"),
        (
            "bodies",
            "SELECT n.path, b.body FROM bodies b JOIN notes n ON n.id = b.id",
        ),
        // The FTS table keeps terms only (contentless): which notes it has, by path, and
        // every term with its document and occurrence counts.
        (
            "notes_fts",
            "SELECT n.path FROM notes_fts f JOIN notes n ON n.id = f.rowid",
        ),
        ("notes_vocab", "SELECT term, doc, cnt FROM notes_vocab"),
    ];
    // Every table of the schema is covered (so a new table cannot silently escape the check).
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'notes_fts_%' AND name NOT LIKE 'sqlite_%'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    for t in &tables {
        assert!(
            t == "meta" || queries.iter().any(|(n, _)| n == t),
            "table {t} is not compared"
        );
    }
    queries
        .iter()
        .map(|(name, q)| {
            let mut st = c.prepare(q).expect("prepare");
            let n = st.column_count();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    let mut cols = Vec::with_capacity(n);
                    for i in 0..n {
                        cols.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(cols.join("|"))
                })
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            rows.sort();
            (name.to_string(), rows)
        })
        .collect()
}

/// Rebuilds the vault's cache with `reindex` into a fresh state folder and asserts that `db`
/// holds the same rows, table by table; returns the live dump.
pub fn assert_cache_equals_fresh_reindex(v: &TestVault, db: &Path) -> Vec<(String, Vec<String>)> {
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = v
        .cmd()
        .env("VAULTKEEPER_STATE_DIR", fresh.path())
        .args(["reindex"])
        .output()
        .expect("reindex");
    assert!(
        out.status.success(),
        "reindex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = dump(db);
    let rebuilt = dump(&fresh.path().join("cache.db"));
    for ((name, a), (_, b)) in live.iter().zip(&rebuilt) {
        if a != b {
            let only_live: Vec<_> = a.iter().filter(|r| !b.contains(r)).take(5).collect();
            let only_fresh: Vec<_> = b.iter().filter(|r| !a.contains(r)).take(5).collect();
            panic!(
                "table {name}: {} rows live, {} rebuilt\nonly live: {only_live:#?}\nonly rebuilt: {only_fresh:#?}",
                a.len(),
                b.len()
            );
        }
    }
    live
}
