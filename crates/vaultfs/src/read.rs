//! The one file reader: one pass that hashes, sizes and stamps a file, and one rule for when
//! its bytes are text (the watcher's event content and the cache's note body both come here).

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use vaultkeeper_core::event::{Event, EventBuilder, Kind};
use vaultkeeper_core::file::ContentHash;

/// What a file's bytes are, under the one text/binary/size rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// UTF-8 without NUL bytes, within the size limit.
    Text(String),
    /// A NUL byte: binary, whatever the encoding.
    Binary,
    /// Not UTF-8 (and no NUL): the text with invalid sequences replaced by U+FFFD.
    NotUtf8(String),
    /// Larger than the limit: hashed, never kept.
    TooLarge,
}

impl Content {
    /// Classifies bytes that fit the limit: a NUL makes them binary, then UTF-8 decides.
    pub fn of_bytes(bytes: Vec<u8>) -> Content {
        if bytes.contains(&0) {
            return Content::Binary;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Content::Text(text),
            Err(e) => Content::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// The exact text, only for [`Content::Text`] (what an event carries).
    pub fn into_text(self) -> Option<String> {
        match self {
            Content::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// One read of a file: its hash, size, modification time and content.
#[derive(Debug, Clone)]
pub struct FileRead {
    /// blake3 of the bytes.
    pub hash: ContentHash,
    /// Bytes read.
    pub size: u64,
    /// Modification time from the open file's metadata, when the platform gives one.
    pub mtime: Option<DateTime<Utc>>,
    /// What the bytes are (see [`Content`]).
    pub content: Content,
}

impl FileRead {
    /// The text an event carries: UTF-8 without NUL within the limit, else none.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(text) => Some(text),
            _ => None,
        }
    }

    /// An event builder for a `kind` change at `path` that carries this read: its size,
    /// hash, modification time and text (only [`Content::Text`] travels in events).
    pub fn event(self, kind: Kind, path: impl Into<String>) -> EventBuilder {
        Event::builder(kind, path)
            .read(
                self.size,
                Some(self.hash.to_hex().to_string()),
                self.content.into_text(),
            )
            .mtime(self.mtime)
    }
}

/// Bytes hashed at a time past the content limit.
const BLOCK: u64 = 64 * 1024;

/// Reads a regular file once, streaming it through blake3 so a huge file never sits in
/// memory; keeps its bytes only up to `max_content` and classifies them with
/// [`Content::of_bytes`]. Symlinks are followed (callers that must not, check first).
///
/// What is kept is read straight into a buffer sized from the file's metadata, and what is
/// only hashed goes through a block that is never zeroed: a zeroed 64 KiB block per file
/// was a `memset` of 6.5 GB over a 100,000-note first start, in the watcher and again in
/// the cache.
pub fn read_file(abs: &Path, max_content: u64) -> std::io::Result<FileRead> {
    let mut file = std::fs::File::open(abs)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mtime = meta.modified().ok().map(DateTime::<Utc>::from);
    // One byte past the limit tells a file over it (or grown past it since the stat).
    let limit = max_content.saturating_add(1);
    let mut kept = Vec::with_capacity(capacity(meta.len().saturating_add(1).min(limit)));
    let mut size = read_up_to(&mut file, &mut kept, limit)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&kept);
    let content = if size <= max_content {
        Content::of_bytes(kept)
    } else {
        let mut block = kept;
        block.reserve(capacity(BLOCK).saturating_sub(block.len()));
        loop {
            block.clear();
            let n = read_up_to(&mut file, &mut block, BLOCK)?;
            if n == 0 {
                break;
            }
            hasher.update(&block);
            size += n;
        }
        Content::TooLarge
    };
    Ok(FileRead {
        hash: hasher.finalize(),
        size,
        mtime,
        content,
    })
}

/// Appends up to `limit` bytes of `file` to `buf` (fewer only at the end of the file);
/// returns how many. `read_to_end` retries interrupted reads and fills spare capacity
/// without zeroing it first.
fn read_up_to(file: &mut std::fs::File, buf: &mut Vec<u8>, limit: u64) -> std::io::Result<u64> {
    let n = file.take(limit).read_to_end(buf)?;
    Ok(n as u64)
}

fn capacity(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_keeps_text_and_streams_large() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.md");
        std::fs::write(&p, "hello").expect("write");
        let r = read_file(&p, 100).expect("read");
        assert_eq!(r.text(), Some("hello"));
        assert_eq!(r.hash, blake3::hash(b"hello"));
        assert!(r.mtime.is_some());
        let r = read_file(&p, 3).expect("read");
        assert_eq!(r.text(), None, "over the limit: no content");
        assert_eq!(r.content, Content::TooLarge);
        assert_eq!(r.size, 5);
        std::fs::write(&p, b"a\0b").expect("write");
        let r = read_file(&p, 100).expect("read");
        assert_eq!(r.text(), None, "binary");
        assert_eq!(r.content, Content::Binary);
        std::fs::write(&p, [0xff, 0xfe]).expect("write");
        let r = read_file(&p, 100).expect("read");
        assert_eq!(r.text(), None, "not UTF-8");
        assert_eq!(r.content, Content::NotUtf8("\u{fffd}\u{fffd}".into()));
    }

    #[test]
    fn the_limit_keeps_a_file_of_its_size_and_hashes_past_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.md");
        std::fs::write(&p, "12345").expect("write");
        assert_eq!(read_file(&p, 5).expect("read").text(), Some("12345"));
        assert_eq!(read_file(&p, 4).expect("read").content, Content::TooLarge);
        // Several blocks past the limit, and nothing kept: the hash is still of every byte.
        let big: Vec<u8> = (0..(3 * BLOCK as usize + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&p, &big).expect("write");
        for max in [0, 10, BLOCK, 2 * BLOCK + 1] {
            let r = read_file(&p, max).expect("read");
            assert_eq!(r.size, big.len() as u64, "max {max}");
            assert_eq!(r.hash, blake3::hash(&big), "max {max}");
            assert_eq!(r.content, Content::TooLarge, "max {max}");
        }
        let r = read_file(&p, big.len() as u64).expect("read");
        assert_eq!(r.hash, blake3::hash(&big));
        assert_ne!(r.content, Content::TooLarge, "exactly the limit is kept");
        std::fs::write(&p, "").expect("write");
        let r = read_file(&p, 0).expect("read");
        assert_eq!((r.size, r.text()), (0, Some("")));
    }

    #[test]
    fn a_folder_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_file(dir.path(), 100).is_err());
    }
}
