//! Whether it is safe to commit now: repository state, a foreign `index.lock`, detached HEAD, conflicts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Repository, RepositoryState};

/// Why committing has to wait. Every case is temporary: the user finishes what they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A merge, rebase, cherry-pick, revert, bisect or `git am` is in progress.
    InProgress(&'static str),
    /// Another git process holds the index lock (or a git that died left it behind).
    IndexLocked {
        /// The lock file.
        lock: PathBuf,
        /// How long it has existed (from its mtime), as seen when checked.
        age: Duration,
    },
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
            // A lock that turns stale while we wait is worth saying once more.
            Blocked::IndexLocked { age, .. } if *age >= STALE_AFTER => "stale index.lock",
            Blocked::IndexLocked { .. } => "index.lock",
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
            Blocked::IndexLocked { lock, age } if *age >= STALE_AFTER => write!(
                f,
                "{} exists, held for {}: probably stale (a git that was killed leaves it behind); if no git process is running, remove it by hand (vaultkeeper removes only a lock a vaultkeeper that died left behind); waiting",
                lock.display(),
                format_age(*age)
            ),
            Blocked::IndexLocked { lock, age } => write!(
                f,
                "{} exists, held for {}: another git process is using the index; waiting (vaultkeeper removes only a lock a vaultkeeper that died left behind)",
                lock.display(),
                format_age(*age)
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

/// After this long, a held `index.lock` is reported as probably stale. git holds it for
/// the length of one command; a git killed mid-write leaves it behind, and only a person
/// can tell the two apart.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// A foreign `index.lock` means another git is writing the index right now; one left by
/// a vaultkeeper that died is removed (see `lock_owner`).
pub fn index_lock(git_dir: &Path) -> Result<(), Blocked> {
    let lock = git_dir.join("index.lock");
    if crate::lock_owner::take_back_orphan(&lock) {
        return Ok(());
    }
    match std::fs::symlink_metadata(&lock) {
        Ok(meta) => {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            Err(Blocked::IndexLocked { lock, age })
        }
        Err(_) => Ok(()),
    }
}

/// `45 s`, `12 min`, `3 h 5 min`: a lock's age for people.
pub fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_age_and_staleness_are_said_once_per_kind() {
        assert_eq!(format_age(Duration::from_secs(3)), "3 s");
        assert_eq!(format_age(Duration::from_secs(20 * 60 + 5)), "20 min");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 300)), "3 h 5 min");
        let held = |secs| Blocked::IndexLocked {
            lock: PathBuf::from("/r/.git/index.lock"),
            age: Duration::from_secs(secs),
        };
        assert_eq!(held(1).key(), held(500).key());
        assert_ne!(held(1).key(), held(601).key());
        assert!(held(5).to_string().contains("held for 5 s"));
        assert!(held(1200).to_string().contains("probably stale"));
    }
}
