//! Looking paths up in HEAD's tree for a commit, each folder's tree read once.
//!
//! libgit2 keeps no tree larger than 4 KiB in its object cache, so `Tree::get_path` read,
//! inflated and hashed a folder of 20,000 notes (700 KB) again for every path it was asked
//! for: 3 ms a path, over a minute for the first commit after a start on such a vault.

use std::collections::HashMap;
use std::path::Path;

use git2::{ObjectType, Oid, Repository, Tree};

/// HEAD's tree and the folders of it read so far (`None`: not a folder in HEAD).
pub(crate) struct HeadTree<'a, 'r> {
    repo: &'r Repository,
    root: &'a Tree<'r>,
    folders: HashMap<String, Option<Tree<'r>>>,
}

impl<'a, 'r> HeadTree<'a, 'r> {
    /// Lookups in `root`, a tree of `repo`.
    pub(crate) fn new(repo: &'r Repository, root: &'a Tree<'r>) -> HeadTree<'a, 'r> {
        HeadTree {
            repo,
            root,
            folders: HashMap::new(),
        }
    }

    /// The id and mode of the entry at repository path `rpath` (`/`-separated), if HEAD has one.
    pub(crate) fn entry(&mut self, rpath: &str) -> Option<(Oid, i32)> {
        // As `get_path`: a trailing `/` names the folder itself.
        let rpath = rpath.strip_suffix('/').unwrap_or(rpath);
        let (dir, name) = rpath.rsplit_once('/').unwrap_or(("", rpath));
        if name.is_empty() {
            return None;
        }
        let tree = if dir.is_empty() {
            Some(self.root)
        } else {
            self.folder(dir)
        };
        tree?.get_name(name).map(|e| (e.id(), e.filemode()))
    }

    /// The tree of folder `dir` in HEAD, read the first time it is asked for.
    fn folder(&mut self, dir: &str) -> Option<&Tree<'r>> {
        if !self.folders.contains_key(dir) {
            let tree = self
                .root
                .get_path(Path::new(dir))
                .ok()
                .filter(|e| e.kind() == Some(ObjectType::Tree))
                .and_then(|e| self.repo.find_tree(e.id()).ok());
            self.folders.insert(dir.to_string(), tree);
        }
        self.folders.get(dir)?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{FileMode, Signature};

    /// A repository whose HEAD has `a.md`, `d/b.md`, `d/e/c.md` and `f` (a file where a
    /// path below asks for a folder).
    fn repo_with_head() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let blob = |s: &str| repo.blob(s.as_bytes()).expect("blob");
        let tree = |entries: &[(&str, Oid, FileMode)]| {
            let mut b = repo.treebuilder(None).expect("builder");
            for (name, id, mode) in entries {
                b.insert(name, *id, i32::from(*mode)).expect("insert");
            }
            b.write().expect("tree")
        };
        let e = tree(&[("c.md", blob("c"), FileMode::Blob)]);
        let d = tree(&[
            ("b.md", blob("b"), FileMode::Blob),
            ("e", e, FileMode::Tree),
        ]);
        let root = tree(&[
            ("a.md", blob("a"), FileMode::Blob),
            ("d", d, FileMode::Tree),
            ("f", blob("f"), FileMode::BlobExecutable),
        ]);
        let sig = Signature::now("t", "t@example.org").expect("sig");
        let root_tree = repo.find_tree(root).expect("root");
        repo.commit(Some("HEAD"), &sig, &sig, "init", &root_tree, &[])
            .expect("commit");
        drop(root_tree);
        (dir, repo)
    }

    #[test]
    fn it_finds_what_get_path_finds() {
        let (_dir, repo) = repo_with_head();
        let root = repo
            .head()
            .and_then(|h| h.peel_to_tree())
            .expect("head tree");
        let mut head = HeadTree::new(&repo, &root);
        for path in [
            "a.md",
            "d",
            "d/b.md",
            "d/e",
            "d/e/c.md",
            "f",
            "missing.md",
            "d/missing.md",
            "f/under-a-file.md",
            "nope/x.md",
            "d/e/c.md/deeper",
            "d/",
            "d/e/",
            "",
        ] {
            let expected = root
                .get_path(Path::new(path))
                .ok()
                .map(|e| (e.id(), e.filemode()));
            // Twice: the second lookup comes from the folders already read.
            for _ in 0..2 {
                assert_eq!(head.entry(path), expected, "{path:?}");
            }
        }
        assert!(head.entry("d/e/c.md").is_some());
        assert_eq!(head.entry("f").map(|e| e.1), Some(0o100755));
    }
}
