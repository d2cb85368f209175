//! [`JournalReader`]: the journal for readers (MCP, `events`, queries). It opens the file
//! with `SQLITE_OPEN_READ_ONLY` and has only reads, so a reader cannot move a cursor or
//! append an event, whatever it calls.

use std::path::Path;

use vaultkeeper_core::event::Event;

use crate::{CursorRow, DeadLetter, Journal, JournalError};

/// A read-only journal: the head, events, cursors and dead letters, nothing that writes.
#[derive(Debug)]
pub struct JournalReader {
    // Opened by `Journal::open_readonly` only: SQLite itself refuses writes on it.
    journal: Journal,
}

impl JournalReader {
    /// Opens the existing journal at `path` read-only (works while the daemon writes: WAL).
    pub fn open(path: &Path) -> Result<JournalReader, JournalError> {
        Ok(JournalReader {
            journal: Journal::open_readonly(path)?,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// The highest sequence number ever appended (0 for an empty journal).
    pub fn head(&self) -> Result<u64, JournalError> {
        self.journal.head()
    }

    /// The oldest sequence number still held, if any.
    pub fn first_seq(&self) -> Result<Option<u64>, JournalError> {
        self.journal.first_seq()
    }

    /// Up to `limit` events with `seq > after`, in order.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, JournalError> {
        self.journal.read_after(after, limit)
    }

    /// The last `limit` events, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<Event>, JournalError> {
        let head = self.head()?;
        let after = head.saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX));
        let mut events = self.read_after(after, limit)?;
        events.reverse();
        Ok(events)
    }

    /// The head and the watcher's snapshot journaled with it, read together.
    pub fn snapshot(
        &self,
    ) -> Result<
        (
            u64,
            std::collections::BTreeMap<String, vaultkeeper_core::file::FileState>,
        ),
        JournalError,
    > {
        self.journal.snapshot()
    }

    /// A consumer's cursor, if it has one.
    pub fn cursor(&self, consumer: &str) -> Result<Option<u64>, JournalError> {
        self.journal.cursor(consumer)
    }

    /// Every consumer's cursor.
    pub fn cursors(&self) -> Result<Vec<CursorRow>, JournalError> {
        self.journal.cursors()
    }

    /// All dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, JournalError> {
        self.journal.dead_letters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_writer_wrote_and_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("j.db");
        let w = Journal::open(&db).expect("open");
        w.set_cursor("git", 0).expect("cursor");
        let r = JournalReader::open(&db).expect("reader");
        assert_eq!(r.head().expect("head"), 0);
        assert!(r.recent(5).expect("recent").is_empty());
        assert_eq!(r.cursor("git").expect("cursor"), Some(0));
        assert_eq!(r.cursors().expect("cursors").len(), 1);
        assert!(r.dead_letters().expect("dead").is_empty());
        // The connection itself refuses writes: the type is not the only guard.
        let write = r.journal.set_cursor("git", 1);
        assert!(write.is_err(), "a read-only journal accepted a write");
    }
}
