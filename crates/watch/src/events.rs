//! Turning a change the reconcile found into an event and snapshot rows, from one read of
//! the file through vaultfs's reader and [`Event`]'s builder.

use std::path::Path;

use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_journal::{FileState, SnapshotChange};
use vaultkeeper_vaultfs::scan;

use super::reconcile::Change;

/// Who the events are from: the vault's name and this host.
pub(crate) struct EventSource {
    pub(crate) vault: String,
    pub(crate) host: String,
}

/// What building one change gave: the events and snapshot rows to journal, and a warning
/// (a file that became unreadable) for the caller to log once.
#[derive(Default)]
pub(crate) struct Built {
    pub(crate) events: Vec<Event>,
    pub(crate) snapshot: Vec<SnapshotChange>,
    pub(crate) warning: Option<String>,
}

impl EventSource {
    fn deleted(&self, path: &str, prev: Option<&FileState>, origin: Origin) -> Event {
        Event::builder(Kind::Deleted, path)
            .hash(prev.and_then(|p| p.hash).map(|h| h.to_hex().to_string()))
            .source(&self.vault, &self.host)
            .origin(origin)
            .build()
    }

    /// Reads the file under `root` for its content and turns `change` into events and
    /// snapshot rows, appended to `out`.
    pub(crate) fn build(
        &self,
        root: &Path,
        max_content: u64,
        change: &Change,
        origin: Origin,
        out: &mut Built,
    ) {
        if change.kind == Kind::Deleted {
            out.events
                .push(self.deleted(&change.path, change.prev.as_ref(), origin));
            out.snapshot
                .push(SnapshotChange::Remove(change.path.clone()));
            return;
        }
        let Some(state) = &change.state else { return };
        let abs = root.join(&change.path);
        match vaultkeeper_vaultfs::read_file(&abs, max_content) {
            Ok(read) => {
                let (size, hash) = (read.size, Some(read.hash));
                // The event's mtime is the snapshot's, so both agree on what was seen.
                let e = read
                    .event(change.kind, change.path.as_str())
                    .old_path(change.old_path.clone())
                    .mtime(scan::mtime_of(state))
                    .source(&self.vault, &self.host)
                    .origin(origin)
                    .build();
                out.events.push(e);
                if let Some(old) = &change.old_path {
                    out.snapshot.push(SnapshotChange::Remove(old.clone()));
                }
                out.snapshot.push(SnapshotChange::Put(
                    change.path.clone(),
                    FileState {
                        size,
                        hash,
                        ..state.clone()
                    },
                ));
            }
            Err(err) => {
                // It vanished or became unreadable after it was seen: whatever was at the
                // old place is gone; the new place is picked up by its own notification.
                if err.kind() != std::io::ErrorKind::NotFound {
                    out.warning = Some(format!("{}: {err}", abs.display()));
                }
                let old = match change.kind {
                    Kind::Renamed => change.old_path.clone(),
                    Kind::Modified if err.kind() == std::io::ErrorKind::NotFound => {
                        Some(change.path.clone())
                    }
                    _ => None,
                };
                if let Some(old) = old {
                    out.events
                        .push(self.deleted(&old, change.prev.as_ref(), origin));
                    out.snapshot.push(SnapshotChange::Remove(old));
                }
            }
        }
    }
}
