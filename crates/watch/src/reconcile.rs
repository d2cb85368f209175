//! Turning "what the disk says" versus "what the snapshot says" into file events,
//! pairing disappearances with appearances into renames.

use std::collections::{BTreeMap, HashMap};

use vaultkeeper_core::event::Kind;
use vaultkeeper_core::file::{ContentHash, FileState};

/// One change to journal, before content is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// created, modified, deleted or renamed.
    pub kind: Kind,
    /// The path now (for a deletion, the path that went away).
    pub path: String,
    /// For a rename, where it came from.
    pub old_path: Option<String>,
    /// The new state (None for a deletion).
    pub state: Option<FileState>,
    /// The state the snapshot had (for a deletion, its last hash is reported).
    pub prev: Option<FileState>,
}

/// The outcome of comparing a set of paths with the snapshot.
#[derive(Debug, Default)]
pub struct Diff {
    /// Changes to journal, in the order they must be applied.
    pub changes: Vec<Change>,
    /// Files whose metadata moved but whose content did not (a `touch`): the snapshot
    /// is updated without an event.
    pub silent: Vec<(String, FileState)>,
}

/// Compares observations with the snapshot. `present` holds files that exist and differ
/// from the snapshot (or are new); `gone` holds snapshot paths that no longer exist.
pub fn diff(
    snapshot: &BTreeMap<String, FileState>,
    present: Vec<(String, FileState)>,
    gone: Vec<String>,
) -> Diff {
    let mut out = Diff::default();
    let mut new_files = Vec::new();
    let mut modified = Vec::new();
    for (path, state) in present {
        match snapshot.get(&path) {
            Some(prev) if prev.hash == state.hash => out.silent.push((path, state)),
            Some(prev) => modified.push(Change {
                kind: Kind::Modified,
                path,
                old_path: None,
                state: Some(state),
                prev: Some(prev.clone()),
            }),
            None => new_files.push((path, state)),
        }
    }

    // Index what vanished by inode and by hash, to pair it with what appeared.
    let mut gone_states: Vec<(String, FileState, bool)> = gone
        .into_iter()
        .filter_map(|p| snapshot.get(&p).map(|s| (p, s.clone(), false)))
        .collect();
    gone_states.sort_by(|a, b| a.0.cmp(&b.0));
    let mut by_ino: HashMap<u64, usize> = HashMap::new();
    // Only a known hash pairs by content: two files never read are not the same file.
    let mut by_hash: HashMap<ContentHash, Vec<usize>> = HashMap::new();
    for (i, (_, s, _)) in gone_states.iter().enumerate() {
        if s.ino != 0 {
            by_ino.insert(s.ino, i);
        }
        if let Some(h) = s.hash {
            by_hash.entry(h).or_default().push(i);
        }
    }
    new_files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pairs: Vec<(usize, usize)> = Vec::new(); // (new index, gone index)
    let mut taken = vec![false; gone_states.len()];
    for (ni, (path, state)) in new_files.iter().enumerate() {
        // Same inode is a move, when the content or the file name also agrees: a
        // freshly freed inode number is reused by the kernel for unrelated files.
        let by_inode = by_ino.get(&state.ino).copied().filter(|&gi| {
            let (old, s, _) = &gone_states[gi];
            !taken[gi] && (s.hash == state.hash || file_name(old) == file_name(path))
        });
        let by_content = || {
            state
                .hash
                .and_then(|h| by_hash.get(&h))
                .and_then(|c| c.iter().copied().find(|&gi| !taken[gi]))
        };
        if let Some(gi) = by_inode.or_else(by_content) {
            taken[gi] = true;
            pairs.push((ni, gi));
        }
    }
    let mut paired_new = vec![false; new_files.len()];
    // Exactly as many as will be pushed: a first scan pushes one per file, and growing by
    // doubling would hold the old and the new buffer at once (36 MB at 100,000 files).
    out.changes
        .reserve_exact(new_files.len() + gone_states.len() + modified.len() - pairs.len());
    for &(ni, gi) in &pairs {
        paired_new[ni] = true;
        gone_states[gi].2 = true;
        let (path, state) = &new_files[ni];
        let (old, prev, _) = &gone_states[gi];
        out.changes.push(Change {
            kind: Kind::Renamed,
            path: path.clone(),
            old_path: Some(old.clone()),
            state: Some(state.clone()),
            prev: Some(prev.clone()),
        });
    }
    for (old, prev, paired) in gone_states {
        if !paired {
            out.changes.push(Change {
                kind: Kind::Deleted,
                path: old,
                old_path: None,
                state: None,
                prev: Some(prev),
            });
        }
    }
    modified.sort_by(|a, b| a.path.cmp(&b.path));
    out.changes.extend(modified);
    for (ni, (path, state)) in new_files.into_iter().enumerate() {
        if !paired_new[ni] {
            out.changes.push(Change {
                kind: Kind::Created,
                path,
                old_path: None,
                state: Some(state),
                prev: None,
            });
        }
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(hash: &str, ino: u64) -> FileState {
        let mut digest = [0u8; 32];
        digest[..hash.len()].copy_from_slice(hash.as_bytes());
        FileState {
            size: 1,
            mtime_ns: 1,
            ino,
            hash: Some(ContentHash::from(digest)),
        }
    }

    fn snap(items: &[(&str, FileState)]) -> BTreeMap<String, FileState> {
        items
            .iter()
            .map(|(p, s)| (p.to_string(), s.clone()))
            .collect()
    }

    fn kinds(d: &Diff) -> Vec<(Kind, &str, Option<&str>)> {
        d.changes
            .iter()
            .map(|c| (c.kind, c.path.as_str(), c.old_path.as_deref()))
            .collect()
    }

    #[test]
    fn create_modify_delete() {
        let s = snap(&[("a.md", st("1", 1)), ("b.md", st("2", 2))]);
        let d = diff(
            &s,
            vec![("a.md".into(), st("9", 1)), ("c.md".into(), st("3", 3))],
            vec!["b.md".into()],
        );
        assert_eq!(
            kinds(&d),
            vec![
                (Kind::Deleted, "b.md", None),
                (Kind::Modified, "a.md", None),
                (Kind::Created, "c.md", None)
            ]
        );
        assert_eq!(
            d.changes[0].prev.as_ref().map(|p| p.hash),
            Some(st("2", 0).hash)
        );
    }

    #[test]
    fn rename_by_inode_even_when_edited_and_by_hash_across_devices() {
        let s = snap(&[("a.md", st("1", 1)), ("x/b.md", st("2", 2))]);
        let d = diff(
            &s,
            vec![
                ("y/a.md".into(), st("1b", 1)),
                ("z/b2.md".into(), st("2", 50)),
            ],
            vec!["a.md".into(), "x/b.md".into()],
        );
        assert_eq!(
            kinds(&d),
            vec![
                (Kind::Renamed, "y/a.md", Some("a.md")),
                (Kind::Renamed, "z/b2.md", Some("x/b.md"))
            ]
        );
    }

    #[test]
    fn files_never_read_are_not_paired_by_content() {
        let unread = |ino| FileState {
            hash: None,
            ..st("x", ino)
        };
        not_paired(unread(0), unread(0));
    }

    /// `old.md` gone and `new.md` there, with these states: a deletion and a creation.
    fn not_paired(old: FileState, new: FileState) {
        let s = snap(&[("old.md", old)]);
        let d = diff(&s, vec![("new.md".into(), new)], vec!["old.md".into()]);
        assert_eq!(
            kinds(&d),
            vec![
                (Kind::Deleted, "old.md", None),
                (Kind::Created, "new.md", None)
            ]
        );
    }

    #[test]
    fn reused_inode_with_other_name_and_content_is_not_a_rename() {
        not_paired(st("1", 7), st("2", 7));
    }

    #[test]
    fn touch_is_silent() {
        let s = snap(&[("a.md", st("1", 1))]);
        let d = diff(&s, vec![("a.md".into(), st("1", 2))], vec![]);
        assert!(d.changes.is_empty());
        assert_eq!(d.silent.len(), 1);
    }
}
