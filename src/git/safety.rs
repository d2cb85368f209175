//! Whether it is safe to commit now: repository state, a foreign `index.lock`, detached HEAD, conflicts.

use std::path::Path;

use git2::{Repository, RepositoryState};

/// Why committing has to wait. Every case is temporary: the user finishes what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A merge, rebase, cherry-pick, revert, bisect or `git am` is in progress.
    InProgress(&'static str),
    /// Another git process holds the index lock.
    IndexLocked(String),
    /// HEAD points at a commit, not a branch.
    DetachedHead,
    /// The index has unmerged entries (e.g. after a conflicting `git stash pop`).
    Conflicts,
}

impl Blocked {
    /// A short key that stays the same while the cause does (to log a cause once).
    pub fn key(&self) -> &'static str {
        match self {
            Blocked::InProgress(what) => what,
            Blocked::IndexLocked(_) => "index.lock",
            Blocked::DetachedHead => "detached HEAD",
            Blocked::Conflicts => "conflicts",
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::InProgress(what) => write!(
                f,
                "repository is in the middle of a {what}; waiting for it to finish before committing"
            ),
            Blocked::IndexLocked(path) => write!(
                f,
                "{path} exists: another git process is using the index; waiting (the lock is never removed by vaultkeeper)"
            ),
            Blocked::DetachedHead => write!(
                f,
                "HEAD is detached (not on a branch); not committing until a branch is checked out"
            ),
            Blocked::Conflicts => write!(
                f,
                "the index has unresolved conflicts; waiting until they are resolved"
            ),
        }
    }
}

/// Markers git leaves in the git dir while an operation is under way. `repo.state()` knows
/// them too; checking the files directly keeps us safe should libgit2 miss one.
const MARKERS: &[(&str, &str)] = &[
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase or git am"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("BISECT_LOG", "bisect"),
];

/// Checks everything that must hold before staging; `Ok(())` when a commit may proceed.
pub fn check(repo: &Repository) -> Result<(), Blocked> {
    let git_dir = repo.path();
    let state = match repo.state() {
        RepositoryState::Clean => None,
        RepositoryState::Merge => Some("merge"),
        RepositoryState::Revert | RepositoryState::RevertSequence => Some("revert"),
        RepositoryState::CherryPick | RepositoryState::CherryPickSequence => Some("cherry-pick"),
        RepositoryState::Bisect => Some("bisect"),
        RepositoryState::Rebase
        | RepositoryState::RebaseInteractive
        | RepositoryState::RebaseMerge => Some("rebase"),
        RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => {
            Some("rebase or git am")
        }
    };
    if let Some(what) = state {
        return Err(Blocked::InProgress(what));
    }
    for (marker, what) in MARKERS {
        if git_dir.join(marker).exists() {
            return Err(Blocked::InProgress(what));
        }
    }
    index_lock(git_dir)?;
    if repo.head_detached().unwrap_or(false) {
        return Err(Blocked::DetachedHead);
    }
    Ok(())
}

/// After this long, a held `index.lock` is reported as possibly stale.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// A foreign `index.lock` means another git is writing the index right now.
pub fn index_lock(git_dir: &Path) -> Result<(), Blocked> {
    let lock = git_dir.join("index.lock");
    match std::fs::symlink_metadata(&lock) {
        Ok(meta) => {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            let mut what = lock.display().to_string();
            // A git killed mid-write leaves its lock behind; only a person can tell.
            if age >= STALE_AFTER {
                what.push_str(&format!(
                    " ({} min old: if no git process is running, it is stale and can be removed by hand)",
                    age.as_secs() / 60
                ));
            }
            Err(Blocked::IndexLocked(what))
        }
        Err(_) => Ok(()),
    }
}
