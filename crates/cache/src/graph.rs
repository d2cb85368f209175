//! The whole link graph as plain rows, for writers that must keep links whole when files
//! move (`vaultkeeper mv`, the MCP move tool): every file with its hash, every link with the
//! target as written and where it resolved.

use rusqlite::Connection;

use super::CacheError;

/// One vault file as the cache knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Vault path.
    pub path: String,
    /// blake3 hex of the content the cache parsed (`None` for metadata-only files).
    pub hash: Option<String>,
}

/// One link as the cache parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRef {
    /// The note holding the link.
    pub path: String,
    /// 1-based line of the link in that note.
    pub line: u32,
    /// `wikilink`, `embed` or `markdown`.
    pub kind: String,
    /// The destination as written, before `|` (`Note#Heading`, `Other%20Note.md`).
    pub raw: String,
    /// The file part, decoded; empty for a link to the note itself.
    pub target: String,
    /// Where it resolved; `None` when unresolved.
    pub target_path: Option<String>,
}

fn q(e: rusqlite::Error) -> CacheError {
    CacheError::Query {
        context: "reading the link graph: ".into(),
        source: e,
    }
}

/// Every file in the cache, by path.
pub fn files(conn: &Connection) -> Result<Vec<FileRef>, CacheError> {
    let mut st = conn
        .prepare("SELECT path, hash FROM notes ORDER BY path")
        .map_err(q)?;
    st.query_map([], |r| {
        Ok(FileRef {
            path: r.get(0)?,
            hash: r.get(1)?,
        })
    })
    .and_then(|it| it.collect())
    .map_err(q)
}

/// Every link in the cache, by note and line.
pub fn links(conn: &Connection) -> Result<Vec<LinkRef>, CacheError> {
    let mut st = conn
        .prepare(
            "SELECT path, line, kind, target_raw, target, target_path FROM links ORDER BY path, line, rowid",
        )
        .map_err(q)?;
    st.query_map([], |r| {
        Ok(LinkRef {
            path: r.get(0)?,
            line: r.get(1)?,
            kind: r.get(2)?,
            raw: r.get(3)?,
            target: r.get(4)?,
            target_path: r.get(5)?,
        })
    })
    .and_then(|it| it.collect())
    .map_err(q)
}
