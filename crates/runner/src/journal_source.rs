//! The journal as a [`Source`]: reads after the consumer's cursor, records the cursor and
//! dead letters in SQLite, and waits on the journal's head. Every SQLite call runs on
//! the blocking pool, never on the runner's executor (the daemon gives each runner a
//! current-thread runtime, where `block_in_place` would panic).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vaultkeeper_core::consumer::StartAt;
use vaultkeeper_core::event::Event;
use vaultkeeper_journal::{Journal, JournalError};

use crate::register::register;
use crate::source::Source;

/// What the journal source can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JournalSourceError {
    /// The journal refused.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A blocking journal call did not finish (the runtime is shutting down).
    #[error("journal {path}: a blocking call did not finish")]
    Task {
        /// The journal file.
        path: PathBuf,
        /// Why.
        #[source]
        source: vaultkeeper_core::blocking::Cancelled,
    },
}

/// Events of one journal, for one consumer.
pub struct JournalSource {
    path: PathBuf,
    journal: Arc<Mutex<Journal>>,
    head: tokio::sync::watch::Receiver<u64>,
    name: String,
    /// Last seq whose effect is durable (the consumer's cursor).
    cursor: u64,
    /// Last seq accepted by the runner.
    read_pos: u64,
    /// End of the last read, skipped events included.
    read_end: u64,
    /// Dead letters above the cursor: never handed over again.
    skip: BTreeSet<u64>,
}

impl JournalSource {
    /// Opens the journal at `path`; `head` tells when it grows.
    pub fn open(
        path: PathBuf,
        head: tokio::sync::watch::Receiver<u64>,
    ) -> Result<JournalSource, JournalError> {
        let journal = Journal::open(&path)?;
        Ok(JournalSource {
            path,
            journal: Arc::new(Mutex::new(journal)),
            head,
            name: String::new(),
            cursor: 0,
            read_pos: 0,
            read_end: 0,
            skip: BTreeSet::new(),
        })
    }

    /// Runs `f` on the journal on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalSourceError> {
        let journal = Arc::clone(&self.journal);
        let done = vaultkeeper_core::blocking::off_executor(move || {
            // A panic while holding the lock leaves a connection that is still usable.
            let j = journal.lock().unwrap_or_else(|p| p.into_inner());
            f(&j)
        })
        .await;
        match done {
            Ok(r) => Ok(r?),
            Err(source) => Err(JournalSourceError::Task {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Source for JournalSource {
    type Error = JournalSourceError;

    async fn open(
        &mut self,
        name: &str,
        start: StartAt,
        own: Option<u64>,
    ) -> Result<u64, Self::Error> {
        let owned = name.to_string();
        let (cursor, skip) = self
            .blocking(move |j| {
                let cursor = match own {
                    Some(c) => c,
                    None => register(j, &owned, start, j.head()?)?.cursor,
                };
                j.set_cursor(&owned, cursor)?;
                let skip: BTreeSet<u64> = j
                    .dead_letters()?
                    .into_iter()
                    .filter(|d| d.consumer == owned && d.seq > cursor)
                    .map(|d| d.seq)
                    .collect();
                Ok((cursor, skip))
            })
            .await?;
        self.name = name.to_string();
        self.cursor = cursor;
        self.read_pos = cursor;
        self.read_end = cursor;
        self.skip = skip;
        Ok(cursor)
    }

    async fn read(&mut self, limit: usize) -> Result<Vec<Event>, Self::Error> {
        let mut from = self.read_pos;
        loop {
            let batch = self.blocking(move |j| j.read_after(from, limit)).await?;
            let Some(end) = batch.last().map(|e| e.seq) else {
                self.read_end = from;
                return Ok(batch);
            };
            self.read_end = end;
            let batch: Vec<Event> = batch
                .into_iter()
                .filter(|e| !self.skip.contains(&e.seq))
                .collect();
            if !batch.is_empty() {
                return Ok(batch);
            }
            // Only dead letters: step over them.
            self.read_pos = end;
            from = end;
        }
    }

    fn accept(&mut self) {
        self.read_pos = self.read_pos.max(self.read_end);
    }

    /// The cursor only moves forward. A consumer whose effect reaches past what it was
    /// handed (the cache's full index, which holds every event up to the seq it settled on)
    /// takes the read position along: the events in between are not read and handed over
    /// again, as after a restart, where the consumer's own cursor is where reading starts.
    async fn durable(&mut self, seq: u64) -> Result<u64, Self::Error> {
        if seq > self.read_pos {
            self.read_pos = seq;
            self.read_end = self.read_end.max(seq);
        }
        let n = seq;
        if n <= self.cursor {
            return Ok(self.cursor);
        }
        self.cursor = n;
        let name = self.name.clone();
        match self.blocking(move |j| j.set_cursor(&name, n)).await {
            Ok(()) => {}
            Err(JournalSourceError::Journal(e)) if e.is_transient() => {
                // The effect is durable, only its record is late (a full disk): the next
                // move records it, and a crash meanwhile replays a little more.
                tracing::warn!(consumer = %self.name, "cannot record the cursor yet: {e}");
            }
            Err(e) => return Err(e),
        }
        Ok(self.cursor)
    }

    async fn dead_letter(
        &mut self,
        seq: u64,
        reason: &str,
        attempts: u32,
    ) -> Result<(), Self::Error> {
        let name = self.name.clone();
        let reason = reason.to_string();
        let recorded = self
            .blocking(move |j| {
                let event = j
                    .read_after(seq.saturating_sub(1), 1)?
                    .into_iter()
                    .find(|e| e.seq == seq);
                if let Some(event) = &event {
                    j.add_dead_letter(&name, event, &reason, attempts)?;
                }
                Ok(event)
            })
            .await?;
        if recorded.is_none() {
            tracing::warn!(consumer = %self.name, seq, "dead letter not recorded: the event is no longer in the journal");
        }
        self.skip.insert(seq);
        Ok(())
    }

    async fn wait(&mut self) -> Result<(), Self::Error> {
        if self.head.changed().await.is_err() {
            // Nobody appends any more: only stop ends the wait.
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn retries(&mut self) -> Result<Vec<(i64, Event)>, Self::Error> {
        let name = self.name.clone();
        self.blocking(move |j| j.retries(&name)).await
    }

    async fn retried(&mut self, id: i64, failure: Option<String>) -> Result<(), Self::Error> {
        self.blocking(move |j| match failure {
            None => j.remove_dead_letter(id).map(|_| ()),
            Some(reason) => j.retry_failed(id, &reason),
        })
        .await
    }
}
