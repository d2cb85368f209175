//! One client's view of the journal: events after its own cursor, filtered, in order,
//! read in bounded batches. The journal's head (a watch channel) only wakes it up: a slow
//! client reads on from where it is, so it can never miss an event nor hold the daemon up.
//! Clients at the head take their batches from the shared [`Recent`] window, which one of
//! them fills from the journal for all.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_journal::JournalReader;

use crate::error::ApiError;
use crate::recent::{Recent, Shared};

/// Events read from the journal at once; what one client can hold in memory.
pub const BATCH: usize = 256;

/// Which events a client wants: kinds (`created,modified`) and a path glob.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    kinds: Option<Vec<Kind>>,
    glob: Option<globset::GlobMatcher>,
}

impl Filter {
    /// Parses the `kind` (comma-separated) and `path` (glob) parameters.
    pub fn parse(kind: Option<&str>, path: Option<&str>) -> Result<Filter, ApiError> {
        let kinds = match kind.filter(|k| !k.is_empty()) {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|k| {
                        let k = k.trim();
                        Kind::parse(k.strip_prefix("file.").unwrap_or(k)).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "kind {k:?}: expected created, modified, deleted or renamed"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let glob = match path.filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(
                globset::Glob::new(p)
                    .map_err(|e| ApiError::bad_request(format!("path glob {p:?}: {e}")))?
                    .compile_matcher(),
            ),
        };
        Ok(Filter { kinds, glob })
    }

    /// Whether `e` passes: its kind is wanted and its path (or a rename's old path) matches.
    pub fn matches(&self, e: &Event) -> bool {
        let kind = self.kinds.as_ref().is_none_or(|k| k.contains(&e.event));
        let path = self.glob.as_ref().is_none_or(|g| {
            g.is_match(&e.file_path) || e.old_path.as_deref().is_some_and(|o| g.is_match(o))
        });
        kind && path
    }
}

/// What a client receives.
#[derive(Debug, Clone)]
pub enum Item {
    /// A journaled event.
    Event(Arc<Shared>),
    /// The events the client asked for are gone: it resumes at `resume_at`.
    Reset(Reset),
}

impl Item {
    /// The cursor a client resumes from after this item (the SSE `id:`).
    pub fn id(&self) -> u64 {
        match self {
            Item::Event(e) => e.event.seq,
            Item::Reset(r) => r.resume_at,
        }
    }
}

/// An explicit gap: never a silent one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reset {
    /// The cursor the client asked to resume from.
    pub since: u64,
    /// The cursor it resumes from now; events in between are not in the journal.
    pub resume_at: u64,
    /// The oldest event the journal still holds (none when it is empty).
    pub first: Option<u64>,
    /// `pruned` (retention removed them) or `ahead` (the cursor is past the journal's head:
    /// the journal was salvaged or replaced).
    pub reason: &'static str,
}

/// Where a client's stream reads from, and when it stops.
#[derive(Debug, Clone)]
pub struct Source {
    /// The journal file.
    pub journal: PathBuf,
    /// The journal's head, sent by the watcher on each append (a wake-up only).
    pub head: watch::Receiver<u64>,
    /// Cancelled when the daemon stops: every stream then ends.
    pub stop: CancellationToken,
    /// The newest events, shared by the streams of this source.
    pub recent: Arc<Recent>,
}

struct Cursor {
    source: Source,
    filter: Filter,
    reader: Option<JournalReader>,
    pos: u64,
    queue: VecDeque<Item>,
}

/// How often a stream looks at the journal without a wake-up (a missed one costs at most this).
const POLL: Duration = Duration::from_secs(1);

/// A client's stream of items.
pub type Items = futures::stream::BoxStream<'static, Item>;

/// The stream of events after `since` (the head now when `None`) that pass `filter`.
/// It ends when the daemon stops, or on a journal error (logged; the client resumes).
pub fn follow(source: Source, since: Option<u64>, filter: Filter) -> Result<Items, ApiError> {
    let reader = JournalReader::open(&source.journal)
        .map_err(|e| ApiError::internal(format!("cannot read the journal: {e}")))?;
    let pos = match since {
        Some(s) => s,
        None => reader
            .head()
            .map_err(|e| ApiError::internal(format!("cannot read the journal: {e}")))?,
    };
    let cursor = Cursor {
        source,
        filter,
        reader: Some(reader),
        pos,
        queue: VecDeque::new(),
    };
    Ok(futures::StreamExt::boxed(futures::stream::unfold(
        cursor, next,
    )))
}

async fn next(mut c: Cursor) -> Option<(Item, Cursor)> {
    loop {
        if let Some(item) = c.queue.pop_front() {
            return Some((item, c));
        }
        if c.source.stop.is_cancelled() {
            return None;
        }
        // Seen before reading: an append after this read wakes the wait below.
        let _ = c.source.head.borrow_and_update();
        if c.take_shared() {
            continue;
        }
        // At the head, one client reads for all: the others find its batch in the window.
        let recent = c.source.recent.clone();
        let filling = if recent.at_end(c.pos) {
            let guard = recent.filling.lock().await;
            if c.take_shared() {
                continue;
            }
            Some(guard)
        } else {
            None
        };
        let reader = c.reader.take()?;
        let (pos, filter, recent) = (c.pos, c.filter.clone(), recent.clone());
        let read = vaultkeeper_core::blocking::off_executor(move || {
            let batch = read_batch(&reader, &recent, pos, &filter);
            (reader, batch)
        })
        .await;
        let Ok((reader, batch)) = read else {
            return None;
        };
        c.reader = Some(reader);
        match batch {
            Ok(Batch { items, pos, full }) => {
                c.pos = pos;
                c.queue.extend(items);
                if !c.queue.is_empty() || full {
                    continue;
                }
            }
            Err(e) => {
                tracing::warn!("an event stream stopped on a journal error: {e}");
                return None;
            }
        }
        drop(filling);
        tokio::select! {
            _ = c.source.head.changed() => {}
            _ = c.source.stop.cancelled() => return None,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

impl Cursor {
    /// Queues the next batch from the shared window when it holds the next event.
    fn take_shared(&mut self) -> bool {
        let Some(events) = self.source.recent.after(self.pos, BATCH) else {
            return false;
        };
        let Some(last) = events.last() else {
            return false;
        };
        self.pos = last.event.seq;
        let filter = &self.filter;
        self.queue.extend(
            events
                .into_iter()
                .filter(|e| filter.matches(&e.event))
                .map(Item::Event),
        );
        true
    }
}

/// One read: the items to send, the new cursor, and whether more may follow at once.
struct Batch {
    items: Vec<Item>,
    pos: u64,
    full: bool,
}

/// Reads one batch after `pos`. A cursor below the oldest event held, or past the head,
/// gets a [`Reset`] first.
fn read_batch(
    reader: &JournalReader,
    recent: &Recent,
    pos: u64,
    filter: &Filter,
) -> Result<Batch, vaultkeeper_journal::JournalError> {
    let mut items = Vec::new();
    let mut pos = pos;
    let head = reader.head()?;
    let first = reader.first_seq()?;
    if pos > head {
        items.push(Item::Reset(Reset {
            since: pos,
            resume_at: head,
            first,
            reason: "ahead",
        }));
        pos = head;
    }
    // Pruned: the next event held is not the next one asked for.
    let oldest_wanted = pos + 1;
    let gap_to = match first {
        Some(f) if f > oldest_wanted => Some(f - 1),
        None if head > pos => Some(head),
        _ => None,
    };
    if let Some(to) = gap_to {
        items.push(Item::Reset(Reset {
            since: pos,
            resume_at: to,
            first,
            reason: "pruned",
        }));
        pos = to;
    }
    let events: Vec<Arc<Shared>> = reader
        .read_after(pos, BATCH)?
        .into_iter()
        .map(Shared::new)
        .collect();
    let full = events.len() == BATCH;
    recent.extend(pos, &events);
    for e in events {
        pos = e.event.seq;
        if filter.matches(&e.event) {
            items.push(Item::Event(e));
        }
    }
    Ok(Batch { items, pos, full })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use vaultkeeper_journal::Journal;

    fn journal_with(dir: &std::path::Path, paths: &[&str]) -> (Journal, PathBuf) {
        let db = dir.join("journal.db");
        let mut j = Journal::open(&db).expect("journal");
        let mut events: Vec<Event> = paths
            .iter()
            .map(|p| Event::builder(Kind::Created, *p).build())
            .collect();
        j.append(&mut events, &[]).expect("append");
        (j, db)
    }

    fn source(db: PathBuf, head: u64) -> (Source, watch::Sender<u64>) {
        let (tx, rx) = watch::channel(head);
        let source = Source {
            journal: db,
            head: rx,
            stop: CancellationToken::new(),
            recent: Default::default(),
        };
        (source, tx)
    }

    async fn take(stream: Items, n: usize) -> Vec<Item> {
        tokio::time::timeout(Duration::from_secs(10), stream.take(n).collect::<Vec<_>>())
            .await
            .expect("items in time")
    }

    #[tokio::test]
    async fn a_pruned_cursor_gets_a_reset_then_what_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, db) = journal_with(dir.path(), &["a.md", "b.md", "c.md", "d.md"]);
        // Every consumer passed seq 2; retention 0 prunes 1 and 2.
        j.set_cursor("git", 2).expect("cursor");
        // Pruned once their timestamp is in the past (millisecond precision).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut pruned = 0;
        while pruned < 2 {
            pruned += j.prune(Duration::ZERO).expect("prune");
            assert!(std::time::Instant::now() < deadline, "not pruned");
        }
        assert_eq!(pruned, 2);
        let (src, _tx) = source(db, 4);
        let items = take(follow(src, Some(0), Filter::default()).expect("follow"), 3).await;
        let Item::Reset(reset) = &items[0] else {
            panic!("a reset first: {items:?}");
        };
        assert_eq!(
            reset,
            &Reset {
                since: 0,
                resume_at: 2,
                first: Some(3),
                reason: "pruned"
            }
        );
        let ids: Vec<u64> = items.iter().map(Item::id).collect();
        assert_eq!(ids, vec![2, 3, 4]);
    }

    #[tokio::test]
    async fn more_than_a_batch_arrives_whole_and_in_order_and_new_events_wake_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..(BATCH * 2 + 10)).map(|i| format!("n{i}.md")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut j, db) = journal_with(dir.path(), &refs);
        let head = j.head().expect("head");
        let (src, tx) = source(db, head);
        let stream = follow(
            src,
            Some(0),
            Filter::parse(Some("created"), Some("n*.md")).expect("filter"),
        )
        .expect("follow");
        let mut stream = stream;
        let mut got = Vec::new();
        for _ in 0..names.len() {
            got.push(stream.next().await.expect("an item").id());
        }
        let want: Vec<u64> = (1..=head).collect();
        assert_eq!(got, want);
        // One the filter drops, then one it keeps: only the second arrives.
        let mut more = vec![
            Event::builder(Kind::Modified, "n-late.md").build(),
            Event::builder(Kind::Created, "n-late.md").build(),
        ];
        let new_head = j.append(&mut more, &[]).expect("append");
        tx.send_replace(new_head);
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("woken")
            .expect("an item");
        assert_eq!(next.id(), new_head);
    }

    #[tokio::test]
    async fn streams_sharing_the_window_each_get_every_event_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..(BATCH * 3)).map(|i| format!("n{i}.md")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut j, db) = journal_with(dir.path(), &refs);
        let head = j.head().expect("head");
        let (src, tx) = source(db, head);
        // One at the head fills the window with the newest; two behind it must still read
        // everything before the window from the journal, and share the window after.
        let mut at_head = follow(src.clone(), Some(head - 5), Filter::default()).expect("follow");
        for want in (head - 4)..=head {
            assert_eq!(at_head.next().await.expect("item").id(), want);
        }
        let behind: Vec<Items> = (0..2)
            .map(|_| follow(src.clone(), Some(0), Filter::default()).expect("follow"))
            .collect();
        let mut more: Vec<Event> = (0..(BATCH + 7))
            .map(|i| Event::builder(Kind::Created, format!("m{i}.md")).build())
            .collect();
        let new_head = j.append(&mut more, &[]).expect("append");
        tx.send_replace(new_head);
        let got = take(at_head, (new_head - head) as usize).await;
        let ids: Vec<u64> = got.iter().map(Item::id).collect();
        assert_eq!(ids, ((head + 1)..=new_head).collect::<Vec<_>>());
        for stream in behind {
            let got = take(stream, new_head as usize).await;
            let ids: Vec<u64> = got.iter().map(Item::id).collect();
            assert_eq!(ids, (1..=new_head).collect::<Vec<_>>());
        }
    }

    #[test]
    fn filters_by_kind_and_glob_on_either_path() {
        let f = Filter::parse(Some("renamed,file.deleted"), Some("keep/**")).expect("filter");
        let moved = Event::builder(Kind::Renamed, "out.md")
            .old_path(Some("keep/a.md".into()))
            .build();
        assert!(f.matches(&moved));
        assert!(f.matches(&Event::builder(Kind::Deleted, "keep/x/y.md").build()));
        assert!(!f.matches(&Event::builder(Kind::Created, "keep/b.md").build()));
        assert!(!f.matches(&Event::builder(Kind::Deleted, "other.md").build()));
        assert!(Filter::parse(Some("exploded"), None).is_err());
        assert!(Filter::parse(None, Some("a[")).is_err());
    }
}
