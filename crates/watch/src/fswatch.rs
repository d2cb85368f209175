//! The kernel side: one non-recursive notify watch per vault folder, kept in step
//! with the folders that exist, and the bridge from notify's thread into ours.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TrySendError;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use super::Msg;
use super::queue;

/// Why a folder could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inotify watch limit is reached: the caller falls back to polling.
    #[error("the inotify watch limit is reached")]
    Limit,
    /// Anything else (the folder vanished, permission denied), with a message naming it.
    #[error("{0}")]
    Other(String),
}

/// The live notify watcher and the folders it watches (path → inode at watch time).
pub struct FsWatch {
    inner: RecommendedWatcher,
    watched: BTreeMap<String, u64>,
}

impl FsWatch {
    /// Starts notify; its callback only forwards into `tx`. When the channel is full the
    /// event is dropped and `overflow` set, which makes the watcher rescan: a gap is never silent.
    pub(crate) fn new(tx: queue::Sender, overflow: Arc<AtomicBool>) -> notify::Result<FsWatch> {
        let inner =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                match tx.try_send(Msg::Fs(res)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => overflow.store(true, Ordering::SeqCst),
                }
            })?;
        Ok(FsWatch {
            inner,
            watched: BTreeMap::new(),
        })
    }

    /// Whether `rel` is watched, and as the same folder (inode) that is there now.
    pub fn is_current(&self, rel: &str, ino: u64) -> bool {
        self.watched.get(rel) == Some(&ino)
    }

    /// Watches one folder (not its children: each folder has its own watch, so ignored
    /// folders such as `.git` cost nothing).
    pub fn add(&mut self, root: &Path, rel: &str, ino: u64) -> Result<(), WatchError> {
        if self.is_current(rel, ino) {
            return Ok(());
        }
        if self.watched.contains_key(rel) {
            self.remove_one(root, rel);
        }
        let abs = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        match self.inner.watch(&abs, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(rel.to_string(), ino);
                Ok(())
            }
            Err(e) => match e.kind {
                notify::ErrorKind::MaxFilesWatch => Err(WatchError::Limit),
                _ => Err(WatchError::Other(format!("{}: {e}", abs.display()))),
            },
        }
    }

    fn remove_one(&mut self, root: &Path, rel: &str) {
        if self.watched.remove(rel).is_some() {
            let abs = if rel.is_empty() {
                root.to_path_buf()
            } else {
                root.join(rel)
            };
            // A folder that was deleted has lost its watch already; the error is expected.
            let _ = self.inner.unwatch(&abs);
        }
    }

    /// Drops the watches of `rel` and every folder under it. After a folder is renamed
    /// its kernel watch follows the inode while notify still reports the old path, so
    /// stale watches must go before the new path is watched.
    pub fn remove_under(&mut self, root: &Path, rel: &str) {
        let prefix = format!("{rel}/");
        let stale: Vec<String> = self
            .watched
            .range(rel.to_string()..)
            .take_while(|(k, _)| k.as_str() == rel || k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.remove_one(root, &k);
        }
    }

    /// The watched folders.
    pub fn folders(&self) -> impl Iterator<Item = &String> {
        self.watched.keys()
    }

    /// How many folders are watched.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// True when nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }
}
