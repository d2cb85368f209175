//! What stops the watcher from starting or from journaling a flush; each names its cause.

/// An error of the watcher.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The journal refused a read or an append.
    #[error("watcher: {0}")]
    Journal(#[from] vaultkeeper_journal::JournalError),
    /// The watcher thread could not be started.
    #[error("cannot start the watcher thread")]
    Thread(#[source] std::io::Error),
}

/// The watcher's result type.
pub type Result<T, E = WatcherError> = std::result::Result<T, E>;
