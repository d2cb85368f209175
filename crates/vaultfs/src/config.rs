//! `[watch]`: which files are read, how much of them, and how changes are seen.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[watch]`: how changes are seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Quiet time after the last change before the pending changes are journaled.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
    /// Longest a change waits for quiet before it is journaled anyway.
    #[serde(with = "humantime_serde")]
    pub max_latency: Duration,
    /// Poll instead of using kernel notifications (NFS, SMB, some FUSE and sync mounts).
    pub poll: bool,
    /// How often to rescan when polling.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Extra glob patterns to ignore, relative to the vault (gitignore-style globs).
    pub ignore: Vec<String>,
    /// Whether the vault's `.gitignore` is honoured.
    pub gitignore: bool,
    /// Text files up to this many bytes carry their content in the event.
    pub max_content_bytes: u64,
    /// Notifications buffered between the kernel and the watcher; beyond it they are
    /// dropped and replaced by a rescan of the vault.
    pub queue: usize,
    /// How long a new file whose name looks like an editor's temporary copy
    /// (`Note.md.123`, `.Note.md.Xk29aQ`) waits before it may become `created`; a save
    /// that renames it over the note within that time is one event of the note. 0 turns it off.
    #[serde(with = "humantime_serde")]
    pub temp_settle: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            debounce: Duration::from_millis(100),
            max_latency: Duration::from_secs(2),
            poll: false,
            poll_interval: Duration::from_secs(5),
            ignore: Vec::new(),
            gitignore: true,
            max_content_bytes: 1024 * 1024,
            queue: 65536,
            temp_settle: Duration::from_secs(3),
        }
    }
}
