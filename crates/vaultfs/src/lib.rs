//! vaultkeeper-vaultfs: the vault on disk, seen one way by everyone.
//!
//! A tour, in the order a file meets it:
//!
//! - [`paths`]: the one way to find a vault and its state folder ([`PathsError`] when not),
//! - [`ignore`]: which files are not part of the vault (built-ins, `.gitignore`, config globs),
//! - [`list`]: the one lister, used by the watcher's reindex, `publish --snapshot`, `doctor`
//!   and the cache; unlistable folders are reported, not lost,
//! - [`read`]: the one reader, with one text/binary/size rule ([`read::Content`]) for the
//!   watcher's event content and the cache's note text,
//! - [`scan`]: probing paths against the watcher's snapshot, and the parallel walk,
//! - [`config`]: the `[watch]` settings those rules come from,
//! - [`host_name`]: the host named in events.

pub mod config;
pub mod error;
pub mod ignore;
pub mod list;
pub mod paths;
pub mod read;
pub mod scan;

pub use config::WatchConfig;
pub use error::PathsError;
pub use list::{Listing, list_files};
pub use read::{Content, FileRead, read_file};

/// The host name used in events.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
