//! Every call the MCP server makes into the shadow cache and the journal: the one place to
//! adapt when their APIs shift. Each call opens its own read-only connection, so a request
//! sees whatever the daemon has committed by then (WAL readers never block the writer).

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use vaultkeeper_cache::query::{self, TaskFilter};
use vaultkeeper_cache::schema;
use vaultkeeper_journal::Journal;

fn open(cache_db: &Path) -> Result<Connection, String> {
    schema::open_ro(cache_db).map_err(|e| e.to_string())
}

/// Full-text search (see [`query::search`]).
pub fn search(
    cache_db: &Path,
    text: &str,
    tag: Option<&str>,
    path_glob: Option<&str>,
    limit: usize,
) -> Result<query::SearchResult, String> {
    query::search(&open(cache_db)?, text, tag, path_glob, limit).map_err(|e| e.to_string())
}

/// Everything the cache knows about a note, found by path or name.
pub fn note(cache_db: &Path, name_or_path: &str) -> Result<query::NoteInfo, String> {
    query::note(&open(cache_db)?, name_or_path).map_err(|e| e.to_string())
}

/// Links resolving to a note.
pub fn backlinks(cache_db: &Path, name_or_path: &str) -> Result<query::LinksResult, String> {
    query::backlinks(&open(cache_db)?, name_or_path).map_err(|e| e.to_string())
}

/// Every tag with counts.
pub fn tags(cache_db: &Path) -> Result<query::TagsResult, String> {
    query::tags(&open(cache_db)?).map_err(|e| e.to_string())
}

/// Tasks by state and tag.
pub fn tasks(
    cache_db: &Path,
    filter: TaskFilter,
    tag: Option<&str>,
) -> Result<query::TasksResult, String> {
    query::tasks(&open(cache_db)?, filter, tag).map_err(|e| e.to_string())
}

/// One read-only statement within `bounds` (the cache refuses anything that may write).
pub fn sql(
    cache_db: &Path,
    statement: &str,
    bounds: &query::SqlBounds,
) -> Result<query::SqlResult, String> {
    query::sql_within(&open(cache_db)?, statement, bounds).map_err(|e| e.to_string())
}

/// A note listed as a resource.
#[derive(Debug, Clone, Serialize)]
pub struct NoteEntry {
    /// Vault path.
    pub path: String,
    /// Title.
    pub title: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every markdown note, by path.
pub fn markdown_notes(cache_db: &Path) -> Result<Vec<NoteEntry>, String> {
    // Every note, however many: only the time and memory bounds apply.
    let all = query::SqlBounds {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
        ..query::SqlBounds::default()
    };
    let res = sql(
        cache_db,
        "SELECT path, title, size FROM notes WHERE is_markdown = 1 ORDER BY path",
        &all,
    )?;
    Ok(res
        .rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [p, t, s] => Some(NoteEntry {
                path: p.as_str()?.to_string(),
                title: t.as_str().unwrap_or_default().to_string(),
                size: s.as_u64().unwrap_or(0),
            }),
            _ => None,
        })
        .collect())
}

/// True when `path` is exactly a file the cache knows (no name resolution).
pub fn is_indexed(cache_db: &Path, path: &str) -> Result<bool, String> {
    let conn = open(cache_db)?;
    match query::find_note(&conn, path) {
        Ok(found) => Ok(found == path),
        Err(vaultkeeper_cache::CacheError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// The last `limit` journal events, newest first, without their content.
pub fn recent_events(journal_db: &Path, limit: usize) -> Result<Vec<serde_json::Value>, String> {
    if !journal_db.exists() {
        return Err(format!(
            "no journal at {} yet: start the daemon with `vaultkeeper run`",
            journal_db.display()
        ));
    }
    let journal = Journal::open_readonly(journal_db).map_err(|e| e.to_string())?;
    let head = journal.head().map_err(|e| e.to_string())?;
    let after = head.saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX));
    let mut events = journal
        .read_after(after, limit)
        .map_err(|e| e.to_string())?;
    events.reverse();
    events
        .into_iter()
        .map(|mut e| {
            e.content = None;
            let mut v = serde_json::to_value(&e).map_err(|e| e.to_string())?;
            if let Some(obj) = v.as_object_mut() {
                obj.remove("content");
            }
            Ok(v)
        })
        .collect()
}
