//! The CPU work of a batch of events, done on other cores while the writer applies it: each
//! note's parse, and the terms each note about to be replaced or deleted holds in the
//! full-text index (made again from what the cache stores, see `rows::FtsBatch`).
//!
//! The writer applies a batch alone, in one transaction. Catching up after a 10,000-edit
//! burst, a third of its time went to these two tokenizations, on one core while the other
//! idled. Parser threads now work through the batch in order, ahead of the writer, which
//! takes each event's results when it gets there.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::Connection;
use vaultkeeper_core::event::{Event, Kind};

use super::CacheConfig;
use super::apply::{FileData, event_data, is_markdown};
use super::parse::fts::FtsColumns;
use super::parse::{ParsedNote, parse_note};
use super::rows::{FtsBatch, StoredText};

/// Fewer jobs than this are done by the writer as it goes: threads would cost more.
const MIN_JOBS: usize = 8;

/// Content prepared per batch, at most: parses hold a few times their note's size.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Parser threads, at most.
const MAX_THREADS: usize = 4;

/// An upsert's file data and parse, made ahead of the writer.
pub(crate) struct PreparedNote {
    /// What the event says of the file, content included.
    pub(crate) data: FileData,
    /// Its parse (None: not markdown, or indexed as metadata only).
    pub(crate) parsed: Option<ParsedNote>,
}

/// What the parser threads made for a batch, handed to the writer event by event.
pub(crate) struct Prepared {
    /// None when nothing was prepared (the writer does it all).
    done: Option<Receiver<Done>>,
    /// Per event of the batch: a note job, an old-terms job.
    expect: Vec<(bool, bool)>,
    notes: HashMap<usize, PreparedNote>,
    olds: HashMap<usize, (i64, FtsColumns)>,
}

impl Prepared {
    /// Event `i`'s prepared upsert, if it was prepared, waiting for it if need be; the old
    /// terms of the note it replaces or deletes go into `fts` (see [`FtsBatch::know`]).
    pub(crate) fn take(&mut self, i: usize, fts: &mut FtsBatch) -> Option<PreparedNote> {
        let (note, old) = self.expect.get(i).copied().unwrap_or_default();
        while (note && !self.notes.contains_key(&i)) || (old && !self.olds.contains_key(&i)) {
            // A disconnected channel (every thread is done) leaves the rest to the writer.
            match self.done.as_ref().map(Receiver::recv) {
                Some(Ok(Done::Note(j, n))) => {
                    self.notes.insert(j, *n);
                }
                Some(Ok(Done::Old(j, id, c))) => {
                    self.olds.insert(j, (id, c));
                }
                Some(Err(_)) | None => break,
            }
        }
        if let Some((id, columns)) = self.olds.remove(&i) {
            fts.know(id, columns);
        }
        self.notes.remove(&i)
    }
}

enum Job<'a> {
    /// Event `i` of the batch creates or modifies a file, with this content.
    Note(usize, &'a Event, &'a str),
    /// Note `id`, at the path of event `i`, leaves the full-text index: its terms are needed.
    Old(usize, i64, StoredText),
}

enum Done {
    Note(usize, Box<PreparedNote>),
    Old(usize, i64, FtsColumns),
}

/// Runs `write` (the writer's pass over `batch`) while parser threads prepare the upserts
/// with content among its events past `cursor`, and the terms of the notes they replace or
/// delete (redeliveries, at or below the cursor, are nearly all skipped: not worth it).
/// Reads the stored text of those notes through `tx` first, so call it inside the batch's
/// transaction, before any write.
pub(crate) fn alongside<R>(
    tx: &Connection,
    batch: &[Event],
    cursor: Option<u64>,
    cfg: &CacheConfig,
    write: impl FnOnce(&mut Prepared) -> R,
) -> rusqlite::Result<R> {
    let mut prepared = Prepared {
        done: None,
        expect: vec![(false, false); batch.len()],
        notes: HashMap::new(),
        olds: HashMap::new(),
    };
    let jobs = jobs(tx, batch, cursor)?;
    if jobs.len() < MIN_JOBS {
        return Ok(write(&mut prepared));
    }
    for job in &jobs {
        match job {
            Job::Note(i, ..) => prepared.expect[*i].0 = true,
            Job::Old(i, ..) => prepared.expect[*i].1 = true,
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_THREADS);
    let next = AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel();
    prepared.done = Some(receiver);
    let jobs = &jobs;
    Ok(std::thread::scope(|s| {
        for _ in 0..threads {
            let (next, sender): (&AtomicUsize, Sender<Done>) = (&next, sender.clone());
            let spawned = std::thread::Builder::new()
                .name("vk-prepare".into())
                .spawn_scoped(s, move || {
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if sender.send(run(job, cfg)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                // With no thread at all the channel closes at once: the writer does it all.
                tracing::debug!(error = %e, "cache: cannot start a thread to prepare a batch");
            }
        }
        drop(sender);
        let out = write(&mut prepared);
        // The writer stopped early (an error): the threads stop at their next send.
        drop(prepared);
        out
    }))
}

/// The batch's jobs, in event order (the writer waits for them in that order).
fn jobs<'a>(
    tx: &Connection,
    batch: &'a [Event],
    cursor: Option<u64>,
) -> rusqlite::Result<Vec<Job<'a>>> {
    let mut jobs = Vec::new();
    let mut bytes = 0usize;
    let mut replaced = HashSet::new();
    for (i, e) in batch.iter().enumerate() {
        if cursor.is_some_and(|c| e.seq <= c) || bytes > MAX_BYTES {
            continue;
        }
        let upsert = matches!(e.event, Kind::Created | Kind::Modified);
        match &e.content {
            Some(text) if upsert => {
                bytes += text.len();
                jobs.push(Job::Note(i, e, text));
            }
            _ if upsert || e.event == Kind::Deleted => {}
            _ => continue,
        }
        if replaced.insert(e.file_path.as_str())
            && let Some((id, stored)) = StoredText::read_path(tx, &e.file_path)?
        {
            bytes += stored.len();
            jobs.push(Job::Old(i, id, stored));
        }
    }
    Ok(jobs)
}

fn run(job: &Job<'_>, cfg: &CacheConfig) -> Done {
    match job {
        Job::Note(i, e, text) => {
            let path = e.file_path.as_str();
            let md = is_markdown(path);
            let data = event_data(e, text, md, cfg);
            let parsed = match (&data.text, md) {
                (Some(t), true) => Some(parse_note(path, t)),
                _ => None,
            };
            Done::Note(*i, Box::new(PreparedNote { data, parsed }))
        }
        Job::Old(i, id, stored) => Done::Old(*i, *id, stored.columns(None)),
    }
}
