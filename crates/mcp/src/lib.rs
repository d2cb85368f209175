//! `vaultkeeper mcp`: a Model Context Protocol server on stdio over the shadow cache and the
//! journal; read-only unless the write tools are on.
//!
//! A tour:
//! - [`serve_stdio`]: the entry point (a small runtime, stdio transport, logs on stderr).
//! - [`http`]: the same server over streamable HTTP, mounted by the daemon's local API.
//! - [`tools`]: the tools (search_notes, read_note, list_backlinks, recent_changes, list_tags,
//!   list_tasks, query_sql) and the note resources (`vault:///<path>`).
//! - [`write_tools`]: the write tools, on with `[mcp] write` / `--write` (see `vaultkeeper_write`).
//! - [`args`]: integer arguments generic clients can send; [`config`]: `[mcp]`.
//! - [`store`]: every call into the cache and the journal, through their read-only types
//!   (`CacheReader`, `JournalReader`), one connection per request, so edits applied by the
//!   daemon show up at once.
//! - [`guard`]: keeping reads inside the vault; note URIs.
//! - [`McpError`]: every failure; a tool's error reaches the client as its message.

pub mod args;
pub mod config;
mod error;
pub mod guard;
pub mod http;
pub mod store;
pub mod tools;
pub mod write_tools;

use rmcp::ServiceExt;

use vaultkeeper_vaultfs::paths::VaultPaths;

pub use config::McpConfig;
pub use error::McpError;
pub use http::{HttpService, http_service};
pub use tools::VaultServer;

/// Serves MCP on stdin/stdout until the client closes stdin, with the write tools when a
/// `writer` is given. Logs go to stderr only.
pub fn serve_stdio(
    paths: &VaultPaths,
    writer: Option<vaultkeeper_write::Writer>,
) -> Result<(), McpError> {
    let cache_db = paths.cache();
    if !cache_db.exists() {
        tracing::warn!(cache = %cache_db.display(), "no cache yet: tools will fail until the daemon has built it");
    }
    let mut server = VaultServer::new(paths.root.clone(), cache_db, paths.journal());
    if let Some(w) = writer {
        server = server.with_writer(w);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(McpError::Runtime)?;
    rt.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| McpError::Init(Box::new(e)))?;
        let reason = running.waiting().await.map_err(McpError::Serve)?;
        tracing::debug!(?reason, "MCP client gone");
        Ok(())
    })
}
