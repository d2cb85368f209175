//! Every call the MCP server makes into the shadow cache and the journal, through their
//! read-only types ([`CacheReader`], [`JournalReader`]): the one place to adapt when their
//! APIs shift. Each call opens its own read-only connection, so a request sees whatever the
//! daemon has committed by then (WAL readers never block the writer).

use std::path::Path;

use serde::Serialize;

use vaultkeeper_cache::query::{self, TaskFilter};
use vaultkeeper_cache::{CacheError, CacheReader};
use vaultkeeper_journal::JournalReader;

use crate::McpError;

fn open(cache_db: &Path) -> Result<CacheReader, McpError> {
    Ok(CacheReader::open(cache_db)?)
}

/// Full-text search (see [`query::search`]).
pub fn search(
    cache_db: &Path,
    text: &str,
    tag: Option<&str>,
    path_glob: Option<&str>,
    limit: usize,
) -> Result<query::SearchResult, McpError> {
    Ok(open(cache_db)?.search(text, tag, path_glob, limit)?)
}

/// Everything the cache knows about a note, found by path or name (a shared name is an error listing the notes).
pub fn note(cache_db: &Path, name_or_path: &str) -> Result<query::NoteInfo, McpError> {
    Ok(open(cache_db)?.note_unique(name_or_path)?)
}

/// Links resolving to a note.
pub fn backlinks(cache_db: &Path, name_or_path: &str) -> Result<query::LinksResult, McpError> {
    Ok(open(cache_db)?.backlinks(name_or_path)?)
}

/// Every tag with counts.
pub fn tags(cache_db: &Path) -> Result<query::TagsResult, McpError> {
    Ok(open(cache_db)?.tags()?)
}

/// Tasks by state and tag.
pub fn tasks(
    cache_db: &Path,
    filter: TaskFilter,
    tag: Option<&str>,
) -> Result<query::TasksResult, McpError> {
    Ok(open(cache_db)?.tasks(filter, tag)?)
}

/// One read-only statement within `bounds` (the cache refuses anything that may write).
pub fn sql(
    cache_db: &Path,
    statement: &str,
    bounds: &query::SqlBounds,
) -> Result<query::SqlResult, McpError> {
    Ok(open(cache_db)?.sql_within(statement, bounds)?)
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
pub fn markdown_notes(cache_db: &Path) -> Result<Vec<NoteEntry>, McpError> {
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
pub fn is_indexed(cache_db: &Path, path: &str) -> Result<bool, McpError> {
    match open(cache_db)?.find_note(path) {
        Ok(found) => Ok(found == path),
        Err(CacheError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The last `limit` journal events, newest first, without their content.
pub fn recent_events(journal_db: &Path, limit: usize) -> Result<Vec<serde_json::Value>, McpError> {
    if !journal_db.exists() {
        return Err(McpError::NoJournal(journal_db.to_path_buf()));
    }
    let journal = JournalReader::open(journal_db)?;
    journal
        .recent(limit)?
        .into_iter()
        .map(|mut e| {
            e.content = None;
            let mut v = serde_json::to_value(&e)?;
            if let Some(obj) = v.as_object_mut() {
                obj.remove("content");
            }
            Ok(v)
        })
        .collect()
}
