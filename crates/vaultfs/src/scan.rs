//! Probing the vault against the watcher's snapshot: stat, hash when it moved, and the
//! parallel walk the watcher's scan and the one lister ([`crate::list`]) share.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ignore::IgnoreRules;
use crate::read::read_file;
use vaultkeeper_core::file::FileState;

/// What the disk says about one path, compared with the snapshot.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Same size, mtime and inode as the snapshot: not read again.
    Unchanged,
    /// A regular file whose state differs from the snapshot (or that is new). Its hash is
    /// empty for a new file a walk was told not to read (`hash_new` false).
    Present(FileState),
    /// No regular file there (missing, a folder, a symlink, ignored).
    Gone,
    /// It is there but cannot be read; the snapshot is left alone.
    Unreadable(String),
}

/// Size, mtime and inode from metadata, with an empty hash.
pub fn quick_state(meta: &Metadata) -> FileState {
    FileState {
        size: meta.len(),
        mtime_ns: mtime_ns(meta),
        ino: inode(meta),
        hash: None,
    }
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// The modification time as a timestamp.
pub fn mtime_of(state: &FileState) -> Option<DateTime<Utc>> {
    (state.mtime_ns > 0).then(|| DateTime::from_timestamp_nanos(state.mtime_ns))
}

#[cfg(unix)]
fn inode(meta: &Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &Metadata) -> u64 {
    0
}

/// Compares one path on disk with its snapshot entry, hashing only when size, mtime
/// or inode moved. A symlink is never followed.
pub fn probe(root: &Path, rel: &str, prev: Option<&FileState>) -> Probe {
    let abs = root.join(rel);
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Probe::Gone,
        Err(e) => return Probe::Unreadable(format!("{}: {e}", abs.display())),
    };
    if !meta.is_file() {
        return Probe::Gone;
    }
    probe_meta(&abs, &meta, prev)
}

/// [`probe`] with metadata already at hand (from the walk).
pub fn probe_meta(abs: &Path, meta: &Metadata, prev: Option<&FileState>) -> Probe {
    probe_meta_with(abs, meta, prev, true)
}

/// [`probe_meta`]; with `hash_new` false, a file the snapshot does not have is not read:
/// it is [`Probe::Present`] with an empty hash (its one read comes when its event is built).
fn probe_meta_with(abs: &Path, meta: &Metadata, prev: Option<&FileState>, hash_new: bool) -> Probe {
    let quick = quick_state(meta);
    if prev.is_none() && !hash_new {
        return Probe::Present(quick);
    }
    if let Some(prev) = prev
        && prev.size == quick.size
        && prev.mtime_ns == quick.mtime_ns
        && prev.ino == quick.ino
    {
        return Probe::Unchanged;
    }
    // Only the hash is needed here; content is read when the event is built.
    match read_file(abs, 0) {
        Ok(read) => Probe::Present(FileState {
            size: read.size,
            hash: Some(read.hash),
            ..quick
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::Gone,
        Err(e) => Probe::Unreadable(format!("{}: {e}", abs.display())),
    }
}

/// One thing the walk found.
#[derive(Debug)]
pub enum Found {
    /// A regular file and what probing it said.
    File(String, Probe),
    /// A folder (for watching).
    Dir(String),
    /// Something skipped, with the reason naming the path.
    Skipped(String),
    /// A folder (vault-relative, `""` for the root) that could not be listed, or not
    /// completely, for a reason other than being gone. What the snapshot holds under it
    /// is unknown, not deleted.
    Unlistable(String, String),
}

/// Vault-relative path with `/`, or `None` for a name that is not UTF-8.
pub fn relative(root: &Path, abs: &Path) -> Option<String> {
    let rel = abs.strip_prefix(root).ok()?;
    let s = rel.to_str()?;
    Some(if std::path::MAIN_SEPARATOR == '/' {
        s.to_string()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    })
}

/// Walks `start` (a folder of the vault, `""` for the root) on all cores, probing every
/// file that is not ignored against `snapshot`. Symlinks are reported and not followed.
/// With `hash_new` false, files the snapshot does not have are not read (see
/// [`Probe::Present`]): a first scan, with nothing to pair them with, reads each file once.
pub fn walk(
    root: &Path,
    start: &str,
    rules: &Arc<IgnoreRules>,
    snapshot: &Arc<BTreeMap<String, FileState>>,
    hash_new: bool,
    on_found: impl FnMut(Found),
) {
    walk_inner(root, start, rules, Some(snapshot), hash_new, on_found);
}

/// The walk of the whole vault for [`crate::list`]: files are found, never read (their
/// probe is reported as [`Probe::Unchanged`]).
pub(crate) fn walk_listing(root: &Path, rules: &Arc<IgnoreRules>, on_found: impl FnMut(Found)) {
    walk_inner(root, "", rules, None, true, on_found);
}

/// The walk; with a snapshot each file is probed against it, without one it is only found.
fn walk_inner(
    root: &Path,
    start: &str,
    rules: &Arc<IgnoreRules>,
    snapshot: Option<&Arc<BTreeMap<String, FileState>>>,
    hash_new: bool,
    mut on_found: impl FnMut(Found),
) {
    let start_abs: PathBuf = if start.is_empty() {
        root.to_path_buf()
    } else {
        root.join(start)
    };
    let root_owned = root.to_path_buf();
    let filter_rules = Arc::clone(rules);
    let filter_root = root.to_path_buf();
    let walker = ignore::WalkBuilder::new(&start_abs)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)))
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            match relative(&filter_root, entry.path()) {
                Some(rel) => !filter_rules.is_ignored(&rel, is_dir),
                None => true, // reported by the visitor
            }
        })
        .build_parallel();
    let (tx, rx) = std::sync::mpsc::channel::<Found>();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            walker.run(|| {
                let tx = tx.clone();
                let root = root_owned.clone();
                let snapshot = snapshot.map(Arc::clone);
                Box::new(move |entry| {
                    let found = match entry {
                        Err(e) => walk_error(&root, &e),
                        Ok(entry) => classify(&root, &entry, snapshot.as_deref(), hash_new),
                    };
                    if let Some(found) = found {
                        let _ = tx.send(found);
                    }
                    ignore::WalkState::Continue
                })
            });
            drop(tx);
        });
        for found in rx {
            on_found(found);
        }
    });
}

/// Turns a walk error into what it means for the snapshot. A folder that vanished while
/// it was walked is simply gone (its files are not seen, so they are deleted); any other
/// failure makes the path unlistable, and an error without a path makes the whole walk
/// untrustworthy (the root).
fn walk_error(root: &Path, e: &ignore::Error) -> Option<Found> {
    if e.io_error()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
        && error_path(e).is_some_and(|p| p != root)
    {
        return None;
    }
    let rel = error_path(e)
        .and_then(|p| relative(root, p))
        .unwrap_or_default();
    let shown = if error_path(e).is_some() {
        e.to_string()
    } else {
        format!("{}: {e}", root.display())
    };
    Some(Found::Unlistable(rel, shown))
}

/// The path an error of the walker is about, through its wrappers.
fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Partial(errs) if errs.len() == 1 => error_path(&errs[0]),
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

/// True when `path` is `dir` or lies under it (`""` is the root, above everything).
pub fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

fn classify(
    root: &Path,
    entry: &ignore::DirEntry,
    snapshot: Option<&BTreeMap<String, FileState>>,
    hash_new: bool,
) -> Option<Found> {
    let path = entry.path();
    let Some(rel) = relative(root, path) else {
        return Some(Found::Skipped(format!(
            "{}: name is not valid UTF-8, skipped",
            path.display()
        )));
    };
    let file_type = entry.file_type()?;
    if file_type.is_dir() {
        return Some(Found::Dir(rel));
    }
    if file_type.is_symlink() {
        return Some(Found::Skipped(format!(
            "{}: symbolic link, not followed",
            path.display()
        )));
    }
    if !file_type.is_file() {
        return Some(Found::Skipped(format!(
            "{}: not a regular file, skipped",
            path.display()
        )));
    }
    let Some(snapshot) = snapshot else {
        return Some(Found::File(rel, Probe::Unchanged));
    };
    let meta = match entry.metadata() {
        Ok(m) => m,
        Err(e) => {
            return Some(Found::File(
                rel,
                Probe::Unreadable(format!("{}: {e}", path.display())),
            ));
        }
    };
    let probe = probe_meta_with(path, &meta, snapshot.get(&rel), hash_new);
    Some(Found::File(rel, probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_under_means_the_folder_or_below_it() {
        assert!(is_under("a/b.md", "a"));
        assert!(is_under("a", "a"));
        assert!(is_under("x/y.md", ""));
        assert!(!is_under("ab/c.md", "a"));
        assert!(!is_under("a.md", "a"));
    }

    #[test]
    fn probe_skips_unchanged_and_sees_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.md"), "one").expect("write");
        let Probe::Present(state) = probe(dir.path(), "a.md", None) else {
            panic!("expected present")
        };
        assert!(matches!(
            probe(dir.path(), "a.md", Some(&state)),
            Probe::Unchanged
        ));
        std::fs::write(dir.path().join("a.md"), "two!").expect("write");
        assert!(matches!(
            probe(dir.path(), "a.md", Some(&state)),
            Probe::Present(_)
        ));
        assert!(matches!(probe(dir.path(), "missing.md", None), Probe::Gone));
    }
}
