//! One commit per write, through the git consumer's own commit path ([`Committer`]): only
//! the paths the write touched are staged, so a human's pending edits elsewhere stay out of
//! it. A human's uncommitted edit *of a touched file* is committed first, on its own, with the
//! usual auto-commit message: the write's commit then holds exactly the write, and
//! `git revert` of it gives back the human's text.
//!
//! The daemon's git consumer sees the write as file events later; by then the paths match
//! HEAD, and it makes no second commit. Should both commit at once, the branch update is
//! compare-and-swap and a held `index.lock` is waited out: the loser retries on top.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vaultkeeper_core::retry::Backoff;
use vaultkeeper_git::{CommitError, Committer, Outcome, Pending};

use crate::WriteError;

/// How long a commit waits for another git (the daemon's consumer, the user's git) to finish.
const WAIT: Duration = Duration::from_secs(10);

/// Runs `attempt` until it is not held up by another git's lock or branch update, within [`WAIT`].
fn retrying(
    mut attempt: impl FnMut() -> Result<Outcome, CommitError>,
) -> Result<Outcome, CommitError> {
    let deadline = Instant::now() + WAIT;
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
    loop {
        match attempt() {
            Err(
                e @ (CommitError::Locked { .. }
                | CommitError::BranchMoved { .. }
                | CommitError::Blocked(vaultkeeper_git::Blocked::IndexLocked { .. })),
            ) if Instant::now() < deadline => {
                tracing::debug!("write commit waits for another git: {e}");
                std::thread::sleep(backoff.next_delay());
            }
            other => return other,
        }
    }
}

/// Waits (within [`WAIT`]) while another git holds `index.lock`; any other reason git cannot
/// commit (a rebase, a merge, a detached HEAD) refuses the write at once, before it is made.
pub fn wait_ready(committer: &Committer) -> Result<(), WriteError> {
    let deadline = Instant::now() + WAIT;
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
    loop {
        match committer.ready() {
            Ok(()) => return Ok(()),
            Err(vaultkeeper_git::Blocked::IndexLocked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(backoff.next_delay());
            }
            Err(b) => return Err(WriteError::GitBusy(b.to_string())),
        }
    }
}

/// Commits the human's pending state of `paths` (what the work tree has before the write),
/// when it differs from HEAD, with the configured auto-commit message.
pub fn commit_before(
    committer: &mut Committer,
    paths: &BTreeSet<String>,
) -> Result<(), WriteError> {
    let pending = Pending {
        paths: paths.clone(),
        ..Pending::default()
    };
    retrying(|| committer.commit_as(&pending, None))
        .map(|_| ())
        .map_err(|e| WriteError::GitBusy(format!("committing the pending edits first: {e}")))
}

/// Commits the write: exactly `pending`, with `message`. Returns the commit id (`None`: the
/// write changed nothing git sees).
pub fn commit_write(
    committer: &mut Committer,
    pending: &Pending,
    message: &str,
) -> Result<Option<String>, WriteError> {
    match retrying(|| committer.commit_as(pending, Some(message))) {
        Ok(Outcome::Committed { id, .. }) => Ok(Some(id.to_string())),
        Ok(Outcome::Unchanged) => Ok(None),
        Err(e) => Err(WriteError::NotCommitted {
            paths: pending.paths.iter().cloned().collect::<Vec<_>>().join(", "),
            reason: e.to_string(),
        }),
    }
}
