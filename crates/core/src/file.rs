//! What the watcher last saw of a file: the snapshot entry the journal keeps.

/// What the watcher last saw of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Inode number (0 where there is none), used to pair renames.
    pub ino: u64,
    /// blake3 hex of the content.
    pub hash: String,
}
