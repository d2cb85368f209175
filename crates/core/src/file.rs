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
    /// blake3 of the content; `None` until the file is read. Kept as its 32 bytes: the snapshot
    /// holds one per file, and a hex `String` cost 88 more bytes each (its heap block and
    /// header), about 9 MB of a 100,000-note vault's settled daemon.
    pub hash: Option<ContentHash>,
}

/// A file content's blake3 digest.
pub type ContentHash = blake3::Hash;

/// The digest's hex form, `""` for none: how the journal stores it and events carry it.
pub fn hash_hex(hash: Option<&ContentHash>) -> String {
    hash.map(|h| h.to_hex().to_string()).unwrap_or_default()
}

/// Parses [`hash_hex`]'s form; an empty or malformed text is no hash (the file is read
/// again and compared by content).
pub fn parse_hash(hex: &str) -> Option<ContentHash> {
    ContentHash::from_hex(hex).ok()
}
