//! [`CacheReader`]: the cache for readers (query commands, MCP). It opens the database
//! read-only and has only the queries of [`crate::query`], so a reader cannot write rows,
//! the cursor or a reindex request, whatever it calls.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::CacheError;
use crate::query::{
    self, FieldsResult, LinksResult, NoteInfo, OrphansResult, RecentResult, SearchOptions,
    SearchResult, SqlBounds, SqlResult, TagsResult, TaskFilter, TasksResult, UnresolvedResult,
};
use crate::schema;

/// A read-only cache: the queries and the cursor, nothing that writes.
#[derive(Debug)]
pub struct CacheReader {
    // Opened by `schema::open_ro` only: SQLite itself refuses writes on it.
    conn: Connection,
    path: PathBuf,
}

impl CacheReader {
    /// Opens the cache at `path` read-only (works while the daemon writes: WAL). Fails with
    /// [`CacheError::NoCache`] when there is none, [`CacheError::Stale`] on another schema.
    pub fn open(path: &Path) -> Result<CacheReader, CacheError> {
        Ok(CacheReader {
            conn: schema::open_ro(path)?,
            path: path.to_path_buf(),
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The highest journal seq the cache has applied, if any.
    pub fn cursor(&self) -> Result<Option<u64>, CacheError> {
        schema::read_cursor(&self.conn).map_err(|e| CacheError::db(&self.path, e))
    }

    /// The path of the note named `name_or_path` (see [`query::find_note`]).
    pub fn find_note(&self, name_or_path: &str) -> Result<String, CacheError> {
        query::find_note(&self.conn, name_or_path)
    }

    /// Full-text search (see [`query::search`]).
    pub fn search(
        &self,
        text: &str,
        tag: Option<&str>,
        path_glob: Option<&str>,
        limit: usize,
    ) -> Result<SearchResult, CacheError> {
        query::search(&self.conn, text, tag, path_glob, limit)
    }

    /// Full-text search with every option (see [`query::search_with`]).
    pub fn search_with(
        &self,
        text: &str,
        opts: &SearchOptions,
    ) -> Result<SearchResult, CacheError> {
        query::search_with(&self.conn, text, opts)
    }

    /// Everything the cache knows about a note (see [`query::note`]).
    pub fn note(&self, name_or_path: &str) -> Result<NoteInfo, CacheError> {
        query::note(&self.conn, name_or_path)
    }

    /// Everything about one note; a name several notes share is an error listing them
    /// (see [`query::note_unique`]).
    pub fn note_unique(&self, name_or_path: &str) -> Result<NoteInfo, CacheError> {
        query::note_unique(&self.conn, name_or_path)
    }

    /// Links resolving to a note.
    pub fn backlinks(&self, name_or_path: &str) -> Result<LinksResult, CacheError> {
        query::backlinks(&self.conn, name_or_path)
    }

    /// Links written in a note.
    pub fn links(&self, name_or_path: &str) -> Result<LinksResult, CacheError> {
        query::links(&self.conn, name_or_path)
    }

    /// Every tag with counts.
    pub fn tags(&self) -> Result<TagsResult, CacheError> {
        query::tags(&self.conn)
    }

    /// Tasks by state and tag.
    pub fn tasks(&self, filter: TaskFilter, tag: Option<&str>) -> Result<TasksResult, CacheError> {
        query::tasks(&self.conn, filter, tag)
    }

    /// Notes no other note links to.
    pub fn orphans(&self) -> Result<OrphansResult, CacheError> {
        query::orphans(&self.conn)
    }

    /// Links that point at no file.
    pub fn unresolved(&self) -> Result<UnresolvedResult, CacheError> {
        query::unresolved(&self.conn)
    }

    /// The `limit` most recently modified notes.
    pub fn recent(&self, limit: usize) -> Result<RecentResult, CacheError> {
        query::recent(&self.conn, limit)
    }

    /// Notes with field `key`, optionally with `value`.
    pub fn fields(&self, key: &str, value: Option<&str>) -> Result<FieldsResult, CacheError> {
        query::fields(&self.conn, key, value)
    }

    /// One read-only statement within `bounds` (see [`query::sql_within`]).
    pub fn sql_within(&self, statement: &str, bounds: &SqlBounds) -> Result<SqlResult, CacheError> {
        query::sql_within(&self.conn, statement, bounds)
    }

    /// One read-only statement within the default bounds.
    pub fn sql(&self, statement: &str) -> Result<SqlResult, CacheError> {
        query::sql(&self.conn, statement)
    }

    /// Every file with its hash (see [`crate::graph::files`]).
    pub fn files(&self) -> Result<Vec<crate::graph::FileRef>, CacheError> {
        crate::graph::files(&self.conn)
    }

    /// Every link with its target and where it resolved (see [`crate::graph::links`]).
    pub fn all_links(&self) -> Result<Vec<crate::graph::LinkRef>, CacheError> {
        crate::graph::links(&self.conn)
    }
}
