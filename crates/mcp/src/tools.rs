//! The MCP tools and note resources: argument schemas, limits, and the JSON each returns.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    ErrorData, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{McpError, guard, store};
use vaultkeeper_cache::query::{NoteInfo, TaskFilter};

/// Default and largest `limit` of `search_notes`.
const SEARCH_LIMIT: (usize, usize) = (20, 200);
/// Default and largest `limit` of `recent_changes`.
const RECENT_LIMIT: (usize, usize) = (20, 1000);
/// Default and largest `limit` of `list_tasks`.
const TASK_LIMIT: (usize, usize) = (200, 5000);
/// Default and largest number of rows `query_sql` returns.
const SQL_LIMIT: (usize, usize) = (500, 10_000);

fn clamp(limit: Option<u32>, (default, max): (usize, usize)) -> usize {
    limit
        .map_or(default, |l| usize::try_from(l).unwrap_or(max))
        .clamp(1, max)
}

/// Where the vault and its state are; shared by every request.
#[derive(Debug)]
struct Where {
    root: PathBuf,
    cache_db: PathBuf,
    journal_db: PathBuf,
    /// Set when the write tools are on.
    writer: Option<vaultkeeper_write::Writer>,
}

/// The MCP server over one vault: its tools and note resources.
#[derive(Debug, Clone)]
pub struct VaultServer {
    at: Arc<Where>,
    tool_router: ToolRouter<Self>,
}

/// `search_notes` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Words to find (all required); "a phrase" in quotes; prefix*; title:word for titles
    /// only; OR / AND / NOT in capitals.
    pub query: String,
    /// Only notes with this tag (nested tags included), with or without `#`.
    pub tag: Option<String>,
    /// Only notes whose vault path matches this glob (`*` also matches `/`), e.g. `Plugins/*`.
    pub path: Option<String>,
    /// Most hits to return (default 20, at most 200).
    #[serde(default, deserialize_with = "crate::args::lenient")]
    #[schemars(schema_with = "crate::args::search_limit")]
    pub limit: Option<u32>,
}

/// Arguments naming one note.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoteArgs {
    /// The note's vault path (`Folder/Note.md`) or its name as in a wikilink (`Note`).
    pub note: String,
}

/// `recent_changes` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecentArgs {
    /// How many journal events (default 20, at most 1000).
    #[serde(default, deserialize_with = "crate::args::lenient")]
    #[schemars(schema_with = "crate::args::recent_limit")]
    pub limit: Option<u32>,
}

/// Which tasks `list_tasks` returns.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Not done and not cancelled.
    #[default]
    Open,
    /// Checked `x`.
    Done,
    /// Every task.
    All,
}

/// `list_tasks` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskArgs {
    /// open (default), done or all.
    pub state: Option<TaskState>,
    /// Only tasks in notes with this tag, or with `#tag` in their text.
    pub tag: Option<String>,
    /// Most tasks to return (default 200, at most 5000).
    #[serde(default, deserialize_with = "crate::args::lenient")]
    #[schemars(schema_with = "crate::args::task_limit")]
    pub limit: Option<u32>,
}

/// `query_sql` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SqlArgs {
    /// One read-only statement (SELECT, WITH, VALUES, EXPLAIN, reading PRAGMAs) over the
    /// cache tables: notes, links, tags, headings, blocks, tasks, fields, bodies, notes_fts.
    pub sql: String,
    /// Most rows to return (default 500, at most 10000).
    #[serde(default, deserialize_with = "crate::args::lenient")]
    #[schemars(schema_with = "crate::args::sql_limit")]
    pub limit: Option<u32>,
}

/// `read_note` result: the cache's view of the note plus its text from the vault file.
#[derive(Debug, Serialize)]
struct NoteWithContent {
    #[serde(flatten)]
    info: NoteInfo,
    uri: String,
    /// The file's text; `null` for a file that is not UTF-8 text (an attachment).
    content: Option<String>,
}

/// A list cut to a limit.
#[derive(Debug, Serialize)]
struct Limited<T> {
    #[serde(flatten)]
    inner: T,
    /// Items before the cut.
    total: usize,
    truncated: bool,
}

/// Runs blocking cache or file work off the async threads and renders it as JSON text.
pub(crate) async fn blocking<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, McpError> + Send + 'static,
) -> Result<String, McpError> {
    let value = tokio::task::spawn_blocking(f).await??;
    Ok(serde_json::to_string(&value)?)
}

/// A name or path given by the client: paths that climb out of the vault are refused before
/// any lookup (names never contain `..` segments or start with `/`).
fn check_name(name: &str) -> Result<(), McpError> {
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        guard::check_relative(name)
    } else if name.trim().is_empty() {
        Err(McpError::EmptyName)
    } else {
        Ok(())
    }
}

#[tool_router]
impl VaultServer {
    /// A server for the vault at `root` (canonical) with its cache and journal databases.
    pub fn new(root: PathBuf, cache_db: PathBuf, journal_db: PathBuf) -> VaultServer {
        VaultServer {
            at: Arc::new(Where {
                root,
                cache_db,
                journal_db,
                writer: None,
            }),
            tool_router: Self::tool_router(),
        }
    }

    /// The same server with the write tools on, writing through `writer`.
    pub fn with_writer(self, writer: vaultkeeper_write::Writer) -> VaultServer {
        VaultServer {
            at: Arc::new(Where {
                root: self.at.root.clone(),
                cache_db: self.at.cache_db.clone(),
                journal_db: self.at.journal_db.clone(),
                writer: Some(writer),
            }),
            tool_router: self.tool_router + Self::write_router(),
        }
    }

    /// The writer, when the write tools are on.
    pub(crate) fn writer(&self) -> Option<vaultkeeper_write::Writer> {
        self.at.writer.clone()
    }

    #[tool(
        description = "Full-text search over the vault's notes (titles weigh more). Returns hits best first with path, title, score and a snippet where matches are between « and ». Filters: tag, path glob."
    )]
    async fn search_notes(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            store::search(
                &at.cache_db,
                &a.query,
                a.tag.as_deref(),
                a.path.as_deref(),
                clamp(a.limit, SEARCH_LIMIT),
            )
        })
        .await
    }

    #[tool(
        description = "Read one note by vault path or name: its text (from the vault file), its hash (give it to a write tool as expected_hash), frontmatter, title, tags, headings, outgoing links and backlinks."
    )]
    async fn read_note(&self, Parameters(a): Parameters<NoteArgs>) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            check_name(&a.note)?;
            let mut info = store::note(&at.cache_db, &a.note)?;
            let content = if info.is_markdown {
                Some(guard::read_text(&at.root, &info.path)?)
            } else {
                guard::read_text(&at.root, &info.path).ok()
            };
            // The hash of the text returned (the disk), not the cache's, which may lag: it is
            // what a write tool's `expected_hash` is checked against.
            if let Some(text) = &content {
                info.hash = Some(vaultkeeper_write::atomic::hash(text.as_bytes()));
            }
            Ok(NoteWithContent {
                uri: guard::uri_of(&info.path),
                info,
                content,
            })
        })
        .await
    }

    #[tool(
        description = "The links (wikilinks, embeds, markdown links) in other notes that resolve to this note, with the linking note's path and line."
    )]
    async fn list_backlinks(
        &self,
        Parameters(a): Parameters<NoteArgs>,
    ) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            check_name(&a.note)?;
            store::backlinks(&at.cache_db, &a.note)
        })
        .await
    }

    #[tool(
        description = "The latest file events from the journal, newest first: created, modified, deleted, renamed, with path, time, size and hash (no content)."
    )]
    async fn recent_changes(
        &self,
        Parameters(a): Parameters<RecentArgs>,
    ) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            let events = store::recent_events(&at.journal_db, clamp(a.limit, RECENT_LIMIT))?;
            Ok(serde_json::json!({ "events": events }))
        })
        .await
    }

    #[tool(description = "Every tag in the vault with the number of notes and of uses.")]
    async fn list_tags(&self) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || store::tags(&at.cache_db)).await
    }

    #[tool(
        description = "Tasks (- [ ] checkboxes) with note path, line, status and text. Open tasks by default; filter by state and tag."
    )]
    async fn list_tasks(&self, Parameters(a): Parameters<TaskArgs>) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            let filter = match a.state.unwrap_or_default() {
                TaskState::Open => TaskFilter::Open,
                TaskState::Done => TaskFilter::Done,
                TaskState::All => TaskFilter::All,
            };
            let mut res = store::tasks(&at.cache_db, filter, a.tag.as_deref())?;
            let total = res.tasks.len();
            let limit = clamp(a.limit, TASK_LIMIT);
            res.tasks.truncate(limit);
            Ok(Limited {
                inner: res,
                total,
                truncated: total > limit,
            })
        })
        .await
    }

    #[tool(
        description = "Run one read-only SQL statement on the vault cache (SQLite). Tables: notes(path, title, frontmatter, aliases, size, mtime, words, is_markdown), links(path, target_raw, target_path, kind, line), tags(path, tag, line), headings(path, level, text, line), tasks(path, line, status, done, text), fields(path, key, value, source, line), bodies(id = notes.id, body: the note text), notes_fts (search terms only; use the search tool). Writes are refused."
    )]
    async fn query_sql(&self, Parameters(a): Parameters<SqlArgs>) -> Result<String, McpError> {
        let at = self.at.clone();
        blocking(move || {
            // Rows stream and reading stops at the limit: an endless CTE costs `limit` rows.
            let bounds = vaultkeeper_cache::query::SqlBounds {
                max_rows: clamp(a.limit, SQL_LIMIT),
                ..vaultkeeper_cache::query::SqlBounds::default()
            };
            let res = store::sql(&at.cache_db, &a.sql, &bounds)?;
            Ok(Limited {
                total: res.rows.len(),
                truncated: res.stopped_by.is_some(),
                inner: res,
            })
        })
        .await
    }
}

impl VaultServer {
    fn read_note_resource(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let path =
            guard::path_of(uri).map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        let known = store::is_indexed(&self.at.cache_db, &path)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        if !known {
            return Err(ErrorData::resource_not_found(
                format!("no note {path:?} in the vault cache"),
                None,
            ));
        }
        let text = guard::read_text(&self.at.root, &path)
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri).with_mime_type(guard::mime_of(&path)),
        ]))
    }
}

async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ErrorData> + Send + 'static,
) -> Result<T, ErrorData> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ErrorData::internal_error(format!("internal error: {e}"), None))?
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for VaultServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "vaultkeeper",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(if self.at.writer.is_some() {
            "Access to a markdown (Obsidian) vault through vaultkeeper's cache. Search with \
             search_notes, open a note with read_note (path or name), follow links with \
             list_backlinks; notes are also resources at vault:///<path>. Write tools take the \
             hash read_note returned as expected_hash; each write is one git commit."
        } else {
            "Read-only access to a markdown (Obsidian) vault through vaultkeeper's cache. \
             Search with search_notes, open a note with read_note (path or name), follow \
             links with list_backlinks; notes are also resources at vault:///<path>."
        })
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let cache_db = self.at.cache_db.clone();
        let notes = off_thread(move || {
            store::markdown_notes(&cache_db)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))
        })
        .await?;
        Ok(ListResourcesResult::with_all_items(
            notes
                .into_iter()
                .map(|n| {
                    Resource::new(guard::uri_of(&n.path), n.path)
                        .with_title(n.title)
                        .with_mime_type("text/markdown")
                        .with_size(n.size)
                })
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{}{{path}}", guard::URI_PREFIX), "note")
                .with_description("A note by its vault path, each segment percent-encoded")
                .with_mime_type("text/markdown"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let me = self.clone();
        let uri = request.uri;
        off_thread(move || me.read_note_resource(&uri))
            .await
            .map(Into::into)
    }
}
