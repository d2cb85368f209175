//! Read-only queries over the cache, each returning a `Serialize` result (the `--json` output).
//!
//! Open the connection with [`super::schema::open_ro`]. Notes named by the user (`note NAME`)
//! are found by exact vault path first, then with the same resolver as links, from the vault
//! root.
//!
//! Search ([`search`], [`search_with`]) lives in `crate::search`, re-exported here; its
//! syntax: words (all required, each with its stem family), `"phrases"`, `prefix*`,
//! `title:word`, `field:key=value`, `OR`/`AND`/`NOT`; punctuation is never an operator.

use rusqlite::{Connection, OptionalExtension, params, types::ValueRef};
use serde::Serialize;

pub use crate::search::{
    MAX_SUBSTRING_TERMS, SearchHit, SearchOptions, SearchResult, fts_query, search, search_with,
};

use super::CacheError;
use super::resolve::{fold, resolve, target_key};

fn q(e: rusqlite::Error) -> CacheError {
    CacheError::Query {
        context: String::new(),
        source: e,
    }
}

/// Finds the path of the note named `name_or_path` (exact path, else the link resolver).
pub fn find_note(conn: &Connection, name_or_path: &str) -> Result<String, CacheError> {
    let exact: Option<String> = conn
        .query_row(
            "SELECT path FROM notes WHERE path = ?1",
            [name_or_path],
            |r| r.get(0),
        )
        .optional()
        .map_err(q)?;
    if let Some(p) = exact {
        return Ok(p);
    }
    let mut st = conn
        .prepare_cached("SELECT path FROM notes WHERE name_key = ?1")
        .map_err(q)?;
    let found = resolve("", name_or_path, &mut |k| {
        st.query_map([k], |r| r.get(0))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>())
            .unwrap_or_default()
    });
    match found {
        Some(p) if !name_or_path.trim().is_empty() => Ok(p),
        _ => Err(CacheError::NotFound(name_or_path.to_string())),
    }
}

/// [`find_note`] for a person asking by name: a name that several files answer to, none of
/// them at exactly that vault path, is [`CacheError::Ambiguous`] with every candidate, where
/// a link (and [`find_note`]) silently takes the resolver's pick.
pub fn find_unique_note(conn: &Connection, name_or_path: &str) -> Result<String, CacheError> {
    let found = find_note(conn, name_or_path)?;
    let want = fold(name_or_path.trim().trim_start_matches('/'));
    let at_that_path = |c: &str| {
        let f = fold(c);
        f == want || f.strip_suffix(".md") == Some(want.as_str())
    };
    if at_that_path(&found) {
        return Ok(found);
    }
    let mut st = conn
        .prepare_cached("SELECT path FROM notes WHERE name_key = ?1")
        .map_err(q)?;
    let candidates: Vec<String> = st
        .query_map([target_key(name_or_path)], |r| r.get(0))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(q)?;
    let suffix = format!("/{want}");
    let mut same: Vec<String> = candidates
        .into_iter()
        .filter(|c| {
            let f = fold(c);
            !want.contains('/')
                || f.ends_with(&suffix)
                || f.strip_suffix(".md").is_some_and(|s| s.ends_with(&suffix))
        })
        .collect();
    if same.len() > 1 {
        same.sort();
        return Err(CacheError::Ambiguous {
            name: name_or_path.to_string(),
            paths: same,
        });
    }
    Ok(found)
}

/// One link, outgoing or incoming.
#[derive(Debug, Clone, Serialize)]
pub struct LinkRow {
    /// The note that contains the link.
    pub path: String,
    /// 1-based line in that note.
    pub line: u32,
    /// `wikilink`, `embed` or `markdown`.
    pub kind: String,
    /// The target as written.
    pub target_raw: String,
    /// The resolved vault path; `null` when unresolved.
    pub target_path: Option<String>,
    /// `#Heading` part.
    pub heading: Option<String>,
    /// `#^block` part.
    pub block: Option<String>,
    /// Display text.
    pub display: Option<String>,
}

const LINK_COLS: &str = "path, line, kind, target_raw, target_path, heading, block, display";

fn link_rows(
    conn: &Connection,
    where_sql: &str,
    arg: Option<&str>,
) -> Result<Vec<LinkRow>, CacheError> {
    let sql = format!("SELECT {LINK_COLS} FROM links WHERE {where_sql} ORDER BY path, line, rowid");
    let mut st = conn.prepare_cached(&sql).map_err(q)?;
    let map = |r: &rusqlite::Row<'_>| {
        Ok(LinkRow {
            path: r.get(0)?,
            line: r.get(1)?,
            kind: r.get(2)?,
            target_raw: r.get(3)?,
            target_path: r.get(4)?,
            heading: r.get(5)?,
            block: r.get(6)?,
            display: r.get(7)?,
        })
    };
    let rows = match arg {
        Some(a) => st.query_map([a], map),
        None => st.query_map([], map),
    }
    .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
    .map_err(q)?;
    Ok(rows)
}

/// A heading of a note.
#[derive(Debug, Clone, Serialize)]
pub struct HeadingRow {
    /// 1 to 6.
    pub level: u8,
    /// Text.
    pub text: String,
    /// 1-based line.
    pub line: u32,
}

/// `note` output: everything the cache knows about one file.
#[derive(Debug, Clone, Serialize)]
pub struct NoteInfo {
    /// Vault path.
    pub path: String,
    /// Title.
    pub title: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339).
    pub mtime: Option<String>,
    /// blake3 hex.
    pub hash: Option<String>,
    /// Word count.
    pub words: u64,
    /// A `.md` note (else an attachment).
    pub is_markdown: bool,
    /// Frontmatter as JSON.
    pub frontmatter: serde_json::Value,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Distinct tags.
    pub tags: Vec<String>,
    /// Headings.
    pub headings: Vec<HeadingRow>,
    /// Outgoing links.
    pub links: Vec<LinkRow>,
    /// Incoming links.
    pub backlinks: Vec<LinkRow>,
    /// Number of tasks, and of open ones.
    pub tasks: u64,
    /// Open tasks (status not `x`, `X` or `-`).
    pub open_tasks: u64,
    /// Parse and read errors (malformed YAML …).
    pub error: Option<String>,
    /// Whether the note's body is in the cache (searchable, with snippets). False for a
    /// markdown note indexed as metadata only (over `max_note_bytes`, binary, unreadable)
    /// and for attachments.
    pub body_indexed: bool,
    /// Why a markdown note's body is not indexed (`null` when it is, and for attachments).
    pub not_indexed: Option<String>,
}

/// Why the body of a markdown note is missing from the cache: the part of its error that
/// says so (each such error ends in "metadata only"), else the whole error.
fn not_indexed_reason(error: Option<&str>) -> String {
    match error {
        Some(e) => e
            .split("; ")
            .find(|part| part.ends_with("metadata only"))
            .unwrap_or(e)
            .to_string(),
        None => "the body is not in the cache".to_string(),
    }
}

/// Everything about one note, found by [`find_unique_note`] (a shared name is an error
/// listing the notes).
pub fn note_unique(conn: &Connection, name_or_path: &str) -> Result<NoteInfo, CacheError> {
    let path = find_unique_note(conn, name_or_path)?;
    note(conn, &path)
}

/// Everything about one note.
pub fn note(conn: &Connection, name_or_path: &str) -> Result<NoteInfo, CacheError> {
    let path = find_note(conn, name_or_path)?;
    #[allow(clippy::type_complexity)]
    let (title, size, mtime, hash, words, is_md, fm, aliases, error, has_body): (
        String,
        i64,
        Option<String>,
        Option<String>,
        i64,
        bool,
        Option<String>,
        String,
        Option<String>,
        bool,
    ) = conn
        .query_row(
            "SELECT title, size, mtime, hash, words, is_markdown, frontmatter, aliases, error,
                    EXISTS (SELECT 1 FROM bodies b WHERE b.id = notes.id)
             FROM notes WHERE path = ?1",
            [&path],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            },
        )
        .map_err(q)?;
    let tags = conn
        .prepare_cached("SELECT DISTINCT tag FROM tags WHERE path = ?1 ORDER BY tag")
        .and_then(|mut st| {
            st.query_map([&path], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(q)?;
    let headings = conn
        .prepare_cached("SELECT level, text, line FROM headings WHERE path = ?1 ORDER BY line")
        .and_then(|mut st| {
            st.query_map([&path], |r| {
                Ok(HeadingRow {
                    level: r.get(0)?,
                    text: r.get(1)?,
                    line: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(q)?;
    let (tasks, open_tasks): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE status NOT IN ('x', 'X', '-')) FROM tasks WHERE path = ?1",
            [&path],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(q)?;
    Ok(NoteInfo {
        links: link_rows(conn, "path = ?1", Some(&path))?,
        backlinks: link_rows(conn, "target_path = ?1", Some(&path))?,
        title,
        size: u64::try_from(size).unwrap_or(0),
        mtime,
        hash,
        words: u64::try_from(words).unwrap_or(0),
        is_markdown: is_md,
        frontmatter: fm
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or(serde_json::Value::Null),
        aliases: serde_json::from_str(&aliases).unwrap_or_default(),
        tags,
        headings,
        tasks: u64::try_from(tasks).unwrap_or(0),
        open_tasks: u64::try_from(open_tasks).unwrap_or(0),
        body_indexed: has_body,
        not_indexed: (is_md && !has_body).then(|| not_indexed_reason(error.as_deref())),
        error,
        path,
    })
}

/// `links` and `backlinks` output.
#[derive(Debug, Clone, Serialize)]
pub struct LinksResult {
    /// The note asked about.
    pub note: String,
    /// The links.
    pub links: Vec<LinkRow>,
}

/// Links that resolve to the note.
pub fn backlinks(conn: &Connection, name_or_path: &str) -> Result<LinksResult, CacheError> {
    let path = find_note(conn, name_or_path)?;
    Ok(LinksResult {
        links: link_rows(conn, "target_path = ?1", Some(&path))?,
        note: path,
    })
}

/// Links written in the note.
pub fn links(conn: &Connection, name_or_path: &str) -> Result<LinksResult, CacheError> {
    let path = find_note(conn, name_or_path)?;
    Ok(LinksResult {
        links: link_rows(conn, "path = ?1", Some(&path))?,
        note: path,
    })
}

/// One tag and how much it is used.
#[derive(Debug, Clone, Serialize)]
pub struct TagCount {
    /// The tag (as first written, case folded for grouping).
    pub tag: String,
    /// Notes carrying it.
    pub notes: u64,
    /// Occurrences.
    pub uses: u64,
}

/// `tags` output.
#[derive(Debug, Clone, Serialize)]
pub struct TagsResult {
    /// Sorted by tag.
    pub tags: Vec<TagCount>,
}

/// Every tag with counts.
pub fn tags(conn: &Connection) -> Result<TagsResult, CacheError> {
    let mut st = conn
        .prepare_cached(
            "SELECT min(tag), count(DISTINCT path), count(*) FROM tags GROUP BY tag_key ORDER BY tag_key",
        )
        .map_err(q)?;
    let tags = st
        .query_map([], |r| {
            Ok(TagCount {
                tag: r.get(0)?,
                notes: r.get(1)?,
                uses: r.get(2)?,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(q)?;
    Ok(TagsResult { tags })
}

/// Which tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskFilter {
    /// Every task.
    #[default]
    All,
    /// Status other than `x`, `X` (done) and `-` (cancelled).
    Open,
    /// Status `x` or `X`.
    Done,
}

/// One task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    /// Note.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// Status character.
    pub status: String,
    /// `x` or `X`.
    pub done: bool,
    /// Text after the checkbox.
    pub text: String,
}

/// `tasks` output.
#[derive(Debug, Clone, Serialize)]
pub struct TasksResult {
    /// By path and line.
    pub tasks: Vec<TaskRow>,
}

/// Tasks, filtered by state and by tag (a tag of the note or `#tag` in the task text).
pub fn tasks(
    conn: &Connection,
    filter: TaskFilter,
    tag: Option<&str>,
) -> Result<TasksResult, CacheError> {
    let tag = tag.map(|t| fold(t.trim().trim_start_matches('#')));
    let state = match filter {
        TaskFilter::All => "1",
        TaskFilter::Open => "status NOT IN ('x', 'X', '-')",
        TaskFilter::Done => "done = 1",
    };
    let sql = format!(
        "SELECT path, line, status, done, text FROM tasks k WHERE {state}
           AND (?1 IS NULL OR (lower(text) || ' ') GLOB ('*#' || ?1 || '[^a-z0-9_-]*') OR EXISTS (SELECT 1 FROM tags t WHERE t.path = k.path
                AND (t.tag_key = ?1 OR substr(t.tag_key, 1, length(?1) + 1) = ?1 || '/')))
         ORDER BY path, line"
    );
    let mut st = conn.prepare_cached(&sql).map_err(q)?;
    let tasks = st
        .query_map([tag], |r| {
            Ok(TaskRow {
                path: r.get(0)?,
                line: r.get(1)?,
                status: r.get(2)?,
                done: r.get(3)?,
                text: r.get(4)?,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(q)?;
    Ok(TasksResult { tasks })
}

/// `orphans` output.
#[derive(Debug, Clone, Serialize)]
pub struct OrphansResult {
    /// Markdown notes that no other note links to or embeds.
    pub notes: Vec<String>,
}

/// Markdown notes with no incoming link from another note.
pub fn orphans(conn: &Connection) -> Result<OrphansResult, CacheError> {
    let mut st = conn
        .prepare_cached(
            "SELECT path FROM notes n WHERE is_markdown = 1 AND NOT EXISTS
               (SELECT 1 FROM links l WHERE l.target_path = n.path AND l.path <> n.path)
             ORDER BY path",
        )
        .map_err(q)?;
    let notes = st
        .query_map([], |r| r.get(0))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(q)?;
    Ok(OrphansResult { notes })
}

/// `unresolved` output.
#[derive(Debug, Clone, Serialize)]
pub struct UnresolvedResult {
    /// Links with no target file.
    pub links: Vec<LinkRow>,
}

/// Links that resolve to no file.
pub fn unresolved(conn: &Connection) -> Result<UnresolvedResult, CacheError> {
    Ok(UnresolvedResult {
        links: link_rows(conn, "target_path IS NULL", None)?,
    })
}

/// One recently changed note.
#[derive(Debug, Clone, Serialize)]
pub struct RecentRow {
    /// Vault path.
    pub path: String,
    /// Title.
    pub title: String,
    /// Modification time.
    pub mtime: Option<String>,
}

/// `recent` output.
#[derive(Debug, Clone, Serialize)]
pub struct RecentResult {
    /// Newest first.
    pub notes: Vec<RecentRow>,
}

/// The most recently modified markdown notes.
pub fn recent(conn: &Connection, limit: usize) -> Result<RecentResult, CacheError> {
    let mut st = conn
        .prepare_cached(
            "SELECT path, title, mtime FROM notes WHERE is_markdown = 1
             ORDER BY mtime DESC, path LIMIT ?1",
        )
        .map_err(q)?;
    let notes = st
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(RecentRow {
                path: r.get(0)?,
                title: r.get(1)?,
                mtime: r.get(2)?,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(q)?;
    Ok(RecentResult { notes })
}

/// One field value.
#[derive(Debug, Clone, Serialize)]
pub struct FieldRow {
    /// Note.
    pub path: String,
    /// Key as written.
    pub key: String,
    /// Value as text.
    pub value: String,
    /// `frontmatter` or `inline`.
    pub source: String,
    /// 1-based line.
    pub line: u32,
}

/// `fields` output.
#[derive(Debug, Clone, Serialize)]
pub struct FieldsResult {
    /// By path and line.
    pub fields: Vec<FieldRow>,
}

/// Fields named `key` (case-insensitive), optionally with a value (ASCII case-insensitive).
pub fn fields(
    conn: &Connection,
    key: &str,
    value: Option<&str>,
) -> Result<FieldsResult, CacheError> {
    let mut st = conn
        .prepare_cached(
            "SELECT path, key, value, source, line FROM fields
             WHERE key_fold = ?1 AND (?2 IS NULL OR value = ?2 COLLATE NOCASE)
             ORDER BY path, line, rowid",
        )
        .map_err(q)?;
    let fields = st
        .query_map(params![fold(key.trim()), value], |r| {
            Ok(FieldRow {
                path: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
                source: r.get(3)?,
                line: r.get(4)?,
            })
        })
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(q)?;
    Ok(FieldsResult { fields })
}

/// `sql` output.
#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows; blobs are shown as `"<blob N bytes>"`.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Set when more rows were there but a bound stopped the reading, and names it:
    /// `row limit (N)` or `output limit (N bytes)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// The bounds of one [`sql`] statement. Rows are read one at a time and reading stops at
/// `max_rows` or `max_bytes`; the statement is interrupted at `timeout`; SQLite's own
/// memory (sorts, `group_concat`, CTE queues) is held under `max_heap` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlBounds {
    /// Most rows returned.
    pub max_rows: usize,
    /// Most bytes of values returned (text and numbers, roughly as JSON).
    pub max_bytes: usize,
    /// Longest time the statement may run.
    pub timeout: std::time::Duration,
    /// SQLite's hard heap limit for this process, in bytes.
    pub max_heap: i64,
}

impl Default for SqlBounds {
    fn default() -> Self {
        SqlBounds {
            max_rows: 10_000,
            max_bytes: 64 * 1024 * 1024,
            timeout: std::time::Duration::from_secs(10),
            max_heap: 256 * 1024 * 1024,
        }
    }
}

/// How many SQLite VM steps run between two looks at the clock.
const PROGRESS_STEPS: std::ffi::c_int = 10_000;

/// The first keyword, after whitespace and comments, upper-cased.
fn first_keyword(sql: &str) -> String {
    let mut s = sql;
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "user_version",
    "schema_version",
    "compile_options",
    "database_list",
    "function_list",
    "pragma_list",
    "collation_list",
    "module_list",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
    "foreign_keys",
    "data_version",
    "application_id",
];

/// Runs one read-only statement within `bounds`. Refused: anything but
/// `SELECT`/`WITH`/`VALUES`/`EXPLAIN` and a few reading `PRAGMA`s; more than one statement;
/// anything SQLite says may write. The connection itself is read-only too (`open_ro`), so a
/// refusal missed here still cannot write. A statement stopped by its time or memory bound
/// is a [`CacheError::Stopped`] naming the bound.
pub fn sql_within(
    conn: &Connection,
    query: &str,
    bounds: &SqlBounds,
) -> Result<SqlResult, CacheError> {
    let kw = first_keyword(query);
    match kw.as_str() {
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" => {}
        "PRAGMA" => {
            let body = query.trim().trim_end_matches(';');
            let ident = |s: &str| -> String {
                s.trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
                    .to_ascii_lowercase()
            };
            let rest = body.trim_start().get(6..).unwrap_or("").trim_start();
            let mut name = ident(rest);
            // `PRAGMA main.table_info(notes)`: the schema name is not the pragma's.
            if let Some(after) = rest
                .get(name.len()..)
                .and_then(|r| r.trim_start().strip_prefix('.'))
            {
                name = ident(after);
            }
            if body.contains('=') || !READ_PRAGMAS.contains(&name.as_str()) {
                return Err(CacheError::Refused(format!(
                    "PRAGMA {name}: only reading pragmas are allowed ({})",
                    READ_PRAGMAS.join(", ")
                )));
            }
        }
        "" => return Err(CacheError::Refused("empty statement".into())),
        other => {
            return Err(CacheError::Refused(format!(
                "{other}: only SELECT, WITH, VALUES, EXPLAIN and reading PRAGMAs are allowed"
            )));
        }
    }
    // Memory: SQLite's heap is capped (process-wide; the pragma only ever lowers it), big
    // sorts and temporary tables spill to files instead of the heap, and the page cache
    // stays small. Past the cap SQLite fails the statement with SQLITE_NOMEM, cleanly.
    conn.pragma_update(None, "hard_heap_limit", bounds.max_heap)
        .and_then(|()| conn.pragma_update(None, "temp_store", "FILE"))
        .and_then(|()| conn.pragma_update(None, "cache_size", -8192))
        .map_err(q)?;
    let mut st = conn.prepare(query).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => {
            CacheError::Refused("more than one statement".to_string())
        }
        other => q(other),
    })?;
    if !st.readonly() {
        return Err(CacheError::Refused("statement may write".to_string()));
    }
    // Time: checked every few thousand VM steps, so even a statement that never yields a
    // row (an endless CTE under count(*)) is interrupted.
    let deadline = std::time::Instant::now() + bounds.timeout;
    let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&timed_out);
    conn.progress_handler(
        PROGRESS_STEPS,
        Some(move || {
            let late = std::time::Instant::now() >= deadline;
            if late {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            late
        }),
    );
    let result = read_rows(&mut st, bounds);
    conn.progress_handler(PROGRESS_STEPS, None::<fn() -> bool>);
    result.map_err(|e| {
        if timed_out.load(std::sync::atomic::Ordering::Relaxed) {
            CacheError::Stopped(format!(
                "the statement reached its time bound ({:?}); narrow it (WHERE, LIMIT) or allow more time",
                bounds.timeout
            ))
        } else if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OutOfMemory) {
            CacheError::Stopped(format!(
                "the statement reached its memory bound ({} MiB of SQLite heap); narrow it (WHERE, LIMIT)",
                bounds.max_heap / (1024 * 1024)
            ))
        } else {
            q(e)
        }
    })
}

/// [`sql_within`] the default [`SqlBounds`].
pub fn sql(conn: &Connection, query: &str) -> Result<SqlResult, CacheError> {
    sql_within(conn, query, &SqlBounds::default())
}

/// Steps through the rows, keeping at most the bounds' rows and bytes.
fn read_rows(st: &mut rusqlite::Statement<'_>, bounds: &SqlBounds) -> rusqlite::Result<SqlResult> {
    let columns: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut stopped_by = None;
    let mut it = st.query([])?;
    while let Some(r) = it.next()? {
        if rows.len() >= bounds.max_rows {
            stopped_by = Some(format!("row limit ({})", bounds.max_rows));
            break;
        }
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            let (value, size) = match r.get_ref(i)? {
                ValueRef::Null => (serde_json::Value::Null, 4),
                ValueRef::Integer(v) => (v.into(), 20),
                ValueRef::Real(v) => (v.into(), 24),
                ValueRef::Text(t) => (String::from_utf8_lossy(t).into_owned().into(), t.len()),
                ValueRef::Blob(b) => (format!("<blob {} bytes>", b.len()).into(), 24),
            };
            bytes = bytes.saturating_add(size);
            row.push(value);
        }
        if bytes > bounds.max_bytes {
            stopped_by = Some(format!("output limit ({} bytes)", bounds.max_bytes));
            break;
        }
        rows.push(row);
    }
    Ok(SqlResult {
        columns,
        rows,
        stopped_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_indexed_reason_is_the_metadata_only_part() {
        assert_eq!(
            not_indexed_reason(Some(
                "too large: 9 bytes > max_note_bytes 4: metadata only; bad YAML"
            )),
            "too large: 9 bytes > max_note_bytes 4: metadata only"
        );
        assert_eq!(not_indexed_reason(Some("cannot read: x")), "cannot read: x");
        assert_eq!(not_indexed_reason(None), "the body is not in the cache");
    }

    #[test]
    fn keywords() {
        assert_eq!(first_keyword("  -- c\n /* x */ select 1"), "SELECT");
        assert_eq!(first_keyword("/* unclosed"), "");
    }
}
