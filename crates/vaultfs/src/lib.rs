//! vaultkeeper-vaultfs: the vault on disk, seen one way by everyone.
//!
//! - [`paths`]: the one way to find a vault and its state folder,
//! - [`ignore`]: which files are not part of the vault,
//! - [`scan`]: listing and reading files with one text/binary/size rule,
//! - [`config`]: the `[watch]` settings those rules come from.

pub mod config;
pub mod ignore;
pub mod paths;
pub mod scan;

pub use config::WatchConfig;

/// The host name used in events.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
