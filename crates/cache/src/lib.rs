//! The shadow cache: an always-current SQLite mirror of the vault (notes, links, tags, tasks,
//! full text) and the read-only queries over it.
//!
//! A tour, in the order data flows:
//! - `parse` (private): one note's text into rows, pure; split by concern (the markdown pass,
//!   frontmatter, links, tags, line-shaped syntax).
//! - [`resolve`]: Obsidian's link resolution rules (public: writers check a rewritten link).
//! - [`schema`]: tables, schema version, opening the database; readers get [`schema::open_ro`].
//! - `rows` (private): one file's rows, computed (on parser threads in a full index), then
//!   inserted.
//! - [`apply`]: the writer: the `cache` consumer ([`CacheConsumer`], its SQLite work on tokio's
//!   blocking pool) and the full [`reindex`]; the `reindex` command's request to a daemon.
//! - [`query`]: read-only queries with serializable results (the binary renders them);
//!   search (private `search`: query syntax, bm25, snippets) is re-exported there. The search
//!   tokenizer is `parse::tokens`, shared by the index and the query.
//! - [`graph`]: every file and link as plain rows, for writers that keep links whole.
//! - [`CacheReader`]: what readers (query commands, MCP) open: read-only, queries only.
//! - [`CacheError`]: every failure, naming the file, with SQLite's error as its source.

pub mod apply;
pub mod graph;
mod parse;
mod prepare;
pub mod query;
mod reader;
pub mod resolve;
mod rows;
pub mod schema;
mod search;
mod settle;

use std::path::PathBuf;
use std::time::Duration;

pub use reader::CacheReader;

pub use apply::{
    CacheConsumer, NAME, ReindexState, ReindexStats, reindex, reindex_state, request_reindex,
};

/// The default `max_note_bytes`: 2 MiB (about 300,000 words, a long book), so one note
/// costs at most about 30 MB while it is indexed (a 50 MB note cost 440 MB).
pub const DEFAULT_MAX_NOTE_BYTES: u64 = 2 * 1024 * 1024;

/// The `[cache]` section of the configuration.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Run the cache consumer.
    pub enabled: bool,
    /// Notes larger than this (bytes) are indexed as metadata only, with an error, and
    /// `note` says their body is not indexed. This bounds what one note costs: parsing and
    /// indexing a note holds about 15x its size in memory for a moment.
    pub max_note_bytes: u64,
    /// Threads parsing notes in a full reindex; 0 means one per core.
    pub reindex_threads: usize,
    /// How long a write waits for a lock held by another connection.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_note_bytes: DEFAULT_MAX_NOTE_BYTES,
            reindex_threads: 0,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// What can go wrong in the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// SQLite failed on the cache database.
    #[error("cache database {path}: {source}")]
    Db {
        /// The cache file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Reading a vault file or creating the cache folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// There is no cache yet.
    #[error("no cache at {0} (is the daemon running, or run `vaultkeeper reindex`)")]
    NoCache(PathBuf),
    /// The cache is from another version of vaultkeeper.
    #[error("cache {path} has schema version {found}, expected {expected}: run `vaultkeeper reindex`", expected = schema::SCHEMA_VERSION)]
    Stale {
        /// The cache file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// A note named on the command line does not exist in the cache.
    #[error("no note matches {0:?}")]
    NotFound(String),
    /// A note name several files answer to (give the path).
    #[error("{name:?} matches {} notes: {}; give the path", paths.len(), paths.join(", "))]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// Every file it could be, sorted.
        paths: Vec<String>,
    },
    /// `sql` refused a statement.
    #[error("refused: {0}")]
    Refused(String),
    /// A query was not understood (bad search syntax).
    #[error("{0}")]
    BadQuery(String),
    /// SQLite refused a query (bad SQL, a search FTS5 cannot run); `context` says which
    /// (empty: the statement itself).
    #[error("{context}{source}")]
    Query {
        /// What was being run, with a trailing `: ` (or empty).
        context: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The journal a full index settles on could not be read.
    #[error(transparent)]
    Journal(#[from] vaultkeeper_journal::JournalError),
    /// `sql` stopped a statement at one of its bounds (time, memory); says which.
    #[error("stopped: {0}")]
    Stopped(String),
}

impl CacheError {
    pub(crate) fn db(path: &std::path::Path, source: rusqlite::Error) -> CacheError {
        CacheError::Db {
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when retrying later may succeed (the database is locked by another writer).
    pub fn is_transient(&self) -> bool {
        match self {
            CacheError::Db { source, .. } => schema::is_busy(source),
            CacheError::Journal(e) => e.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_toml() {
        let c: CacheConfig =
            toml::from_str("max_note_bytes = 10\nbusy_timeout = \"250ms\"\n").expect("parse");
        assert!(c.enabled);
        assert_eq!(c.max_note_bytes, 10);
        assert_eq!(c.busy_timeout, Duration::from_millis(250));
        assert!(toml::from_str::<CacheConfig>("nope = 1").is_err());
    }
}
