//! [`McpError`]: everything a tool, a resource read or the server itself can fail with. A
//! tool's error reaches the client as its message (an error result, not a protocol error).

use std::path::PathBuf;

use rmcp::model::{ContentBlock, IntoContents};

use vaultkeeper_cache::CacheError;
use vaultkeeper_journal::JournalError;

use crate::guard::URI_PREFIX;

/// What can go wrong serving MCP. The message is what the client reads.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The cache refused or failed (no cache yet, a bad query, a note not found).
    #[error("{0}")]
    Cache(#[from] CacheError),
    /// A write was refused or failed (stale hash, outside the vault, too large, git busy).
    #[error("{0}")]
    Write(#[from] vaultkeeper_write::WriteError),
    /// A write tool was called while writes are off.
    #[error(
        "writes are off: start the server with `vaultkeeper mcp --write` or set `[mcp] write = true`"
    )]
    WritesOff,
    /// The journal failed.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// There is no journal yet.
    #[error("no journal at {} yet: start the daemon with `vaultkeeper run`", .0.display())]
    NoJournal(PathBuf),
    /// A path given by the client is empty.
    #[error("empty path")]
    EmptyPath,
    /// A note name given by the client is empty.
    #[error("empty note name")]
    EmptyName,
    /// A path given by the client cannot be a file name (a NUL byte).
    #[error("refused: {0:?} is not a valid path")]
    InvalidPath(String),
    /// A path given by the client climbs out of the vault.
    #[error(
        "refused: {0:?} is outside the vault (give a path relative to the vault root, without `..`)"
    )]
    OutsideVault(String),
    /// A vault path whose file, symlinks followed, is outside the vault.
    #[error("refused: {0:?} resolves outside the vault (a symlink?)")]
    ResolvesOutside(String),
    /// Reading a vault file failed.
    #[error("{path}: {source}")]
    Read {
        /// The vault path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A vault file is not UTF-8 text (an attachment).
    #[error("{0} is not UTF-8 text")]
    NotText(String),
    /// A resource URI that is not a note URI.
    #[error("unknown resource {0:?}: note URIs look like {URI_PREFIX}Folder/Note.md")]
    UnknownResource(String),
    /// A note URI that does not decode to UTF-8.
    #[error("resource {0:?} is not valid UTF-8 once decoded")]
    BadUri(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A result did not serialize.
    #[error("internal error: {0}")]
    Json(#[from] serde_json::Error),
    /// The async runtime did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The MCP handshake with the client failed.
    #[error("MCP initialisation failed: {0}")]
    Init(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The server task ended abnormally.
    #[error("MCP server task failed: {0}")]
    Serve(#[source] tokio::task::JoinError),
}

/// A tool's error is an error result whose text is the message, so the client can read it.
impl IntoContents for McpError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.to_string())]
    }
}
