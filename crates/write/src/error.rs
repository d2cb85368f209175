//! [`WriteError`]: every reason a write is refused or fails. Refusals come before anything is
//! written; the message names the path and says what to do.

/// Why a write did not happen (or, for [`WriteError::NotCommitted`], happened uncommitted).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An empty path.
    #[error("refused: empty path")]
    EmptyPath,
    /// A path that climbs out of the vault or is absolute.
    #[error(
        "refused: {0:?} is outside the vault (give a path relative to the vault root, without `..`)"
    )]
    OutsideVault(String),
    /// A path through a symlink (which could lead outside the vault).
    #[error("refused: {0:?} goes through a symlink ({1}); writes never follow symlinks")]
    Symlink(String, String),
    /// A path into the repository or the trash.
    #[error("refused: {0:?} is inside {1}, which writes never touch")]
    Reserved(String, &'static str),
    /// A path that is not a valid file name (NUL, not UTF-8, a trailing `/`).
    #[error("refused: {0:?} is not a valid vault path")]
    InvalidPath(String),
    /// The content the client expects is not what is on disk: someone edited it meanwhile.
    #[error(
        "refused: {path} changed since it was read (expected hash {expected}, current hash {current}); read it again and redo the edit"
    )]
    Stale {
        /// The vault path.
        path: String,
        /// The hash the client gave.
        expected: String,
        /// The hash on disk now.
        current: String,
    },
    /// The new content is above the bound.
    #[error("refused: {path} would be {size} bytes, above the limit of {max} bytes")]
    TooLarge {
        /// The vault path.
        path: String,
        /// The size it would have.
        size: u64,
        /// The bound.
        max: u64,
    },
    /// The file to edit does not exist.
    #[error("no file {0} in the vault")]
    NotFound(String),
    /// The file to create (or move to) exists.
    #[error("refused: {0} already exists")]
    Exists(String),
    /// The file to edit is not UTF-8 text.
    #[error("refused: {0} is not UTF-8 text")]
    NotText(String),
    /// An edit's precondition does not hold (text not found, heading missing, …).
    #[error("refused: {0}")]
    Edit(String),
    /// The cache does not match the disk for a file a move must rewrite.
    #[error(
        "refused: the cache is behind for {0} (it changed since the daemon indexed it); wait a moment for the daemon, or run `vaultkeeper reindex`, and retry"
    )]
    CacheBehind(String),
    /// Writes need git, and git is off for this vault.
    #[error(
        "refused: assistant writes need git so that each one can be reverted, and git is off: {0}"
    )]
    NoGit(String),
    /// git cannot commit now (rebase, merge, lock): nothing was written.
    #[error("refused: git cannot commit now ({0}); nothing was written, retry when it is done")]
    GitBusy(String),
    /// The files were written but the commit failed (the daemon's git consumer commits them later).
    #[error(
        "{paths} written, but the commit failed: {reason} (the daemon's git auto-commit will commit it later)"
    )]
    NotCommitted {
        /// The paths written.
        paths: String,
        /// Why the commit failed.
        reason: String,
    },
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] vaultkeeper_cache::CacheError),
    /// Opening the repository failed.
    #[error(transparent)]
    Git(#[from] vaultkeeper_git::GitError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The vault path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl WriteError {
    /// An I/O error on vault path `path`.
    pub(crate) fn io(path: &str) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
        move |source| WriteError::Io {
            path: path.to_string(),
            source,
        }
    }
}
