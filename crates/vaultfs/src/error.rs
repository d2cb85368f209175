//! What can go wrong finding a vault and its state folder; every error names its path.

use std::path::PathBuf;

/// An error of [`crate::paths`].
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// The vault folder cannot be resolved (missing, no permission).
    #[error("vault folder {} is not accessible", path.display())]
    Inaccessible {
        /// The folder as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The vault path is a file or something else that is not a folder.
    #[error("vault {} is not a folder", path.display())]
    NotAFolder {
        /// The canonical path.
        path: PathBuf,
    },
    /// Neither `XDG_STATE_HOME` nor a local data folder is known.
    #[error("no state directory: set XDG_STATE_HOME or `state_dir` in the config")]
    NoStateHome,
    /// The state folder cannot be created.
    #[error("cannot create state folder {}", path.display())]
    CreateStateDir {
        /// The state folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The starting folder of a discovery cannot be resolved.
    #[error("cannot resolve {}", path.display())]
    Resolve {
        /// The folder as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No vault from the starting folder upwards.
    #[error("no vault found from {} upwards; pass --vault PATH (or set `vault` in the config)", start.display())]
    NoVault {
        /// The canonical starting folder.
        start: PathBuf,
    },
}
