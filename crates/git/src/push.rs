//! Pushing after commits, off the consumer's path: a background attempt, retried with backoff, never forced.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use git2::{PushOptions, RemoteCallbacks, Repository};

use vaultkeeper_core::retry::Backoff;

/// How long one push through the `git` CLI may take before it is stopped.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest a shutdown waits for a push (the daemon's own shutdown timeout may cut it
/// shorter; the next start then pushes again).
pub const SHUTDOWN_WAIT: Duration = CLI_TIMEOUT;

/// Whether `local` differs from what the last push left in the remote-tracking ref of
/// `remote_branch` on `remote` (or that ref is missing): a push is then owed. False when
/// there is no such branch or remote, which the first push reports on its own.
pub fn unpushed(git_dir: &Path, remote: &str, local: &str, remote_branch: &str) -> bool {
    let Ok(repo) = Repository::open(git_dir) else {
        return false;
    };
    if repo.find_remote(remote).is_err() {
        return false;
    }
    let Ok(ours) = repo.refname_to_id(&format!("refs/heads/{local}")) else {
        return false;
    };
    repo.refname_to_id(&format!("refs/remotes/{remote}/{remote_branch}"))
        .ok()
        != Some(ours)
}

/// Where to push: `refs/heads/<local>` to `refs/heads/<remote_branch>` on `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The git directory to push from.
    pub git_dir: PathBuf,
    /// Remote name (`origin`).
    pub remote: String,
    /// Local branch name.
    pub local: String,
    /// Remote branch name.
    pub remote_branch: String,
}

/// Why a push did not happen; the commits stay local and the push is retried.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The repository could not be opened for the push.
    #[error("push: opening {}: {}", git_dir.display(), source.message())]
    Open {
        /// The git directory.
        git_dir: PathBuf,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// `git.remote` names no remote.
    #[error("push: remote {remote:?} (git.remote): {}", source.message())]
    Remote {
        /// The remote's name.
        remote: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// libgit2's push failed.
    #[error("push to {remote} ({url}): {}", source.message())]
    Push {
        /// The remote's name.
        remote: String,
        /// Its URL.
        url: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// The remote refused the update (not a fast-forward, a hook).
    #[error("push to {remote} ({url}) rejected: {why} (never forced; pull and merge to resolve)")]
    Rejected {
        /// The remote's name.
        remote: String,
        /// Its URL.
        url: String,
        /// The remote's reason, per reference.
        why: String,
    },
    /// `git` could not be run for a network remote.
    #[error(
        "push to {remote}: this build pushes only to local remotes by itself and `git` could not be run: {source}"
    )]
    Spawn {
        /// The remote's name.
        remote: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `git push` ran over its time limit and was stopped.
    #[error("push to {remote}: `git push` took longer than {secs}s; stopped")]
    Timeout {
        /// The remote's name.
        remote: String,
        /// The limit in seconds.
        secs: u64,
    },
    /// Waiting for `git push` failed.
    #[error("push to {remote}: {source}")]
    Wait {
        /// The remote's name.
        remote: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `git push` ran and failed.
    #[error("`git push {remote} {refspec}` failed ({status}): {stderr}")]
    Cli {
        /// The remote's name.
        remote: String,
        /// The refspec pushed.
        refspec: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// No thread could be started for the push.
    #[error("push: cannot start a thread: {source}")]
    Thread {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The push thread panicked.
    #[error("push thread panicked")]
    Panicked,
}

/// Pushes once, blocking. Local and `file://` remotes go through libgit2 (built here
/// without network transports); any other URL goes through the `git` CLI so that the
/// user's credential helpers, ssh agent and config apply.
pub fn push_once(target: &Target) -> Result<(), PushError> {
    let repo = Repository::open(&target.git_dir).map_err(|source| PushError::Open {
        git_dir: target.git_dir.clone(),
        source,
    })?;
    let mut remote = repo
        .find_remote(&target.remote)
        .map_err(|source| PushError::Remote {
            remote: target.remote.clone(),
            source,
        })?;
    let url = remote
        .pushurl()
        .or_else(|| remote.url())
        .unwrap_or("")
        .to_string();
    // No leading '+': a push that is not a fast-forward is rejected, never forced.
    let refspec = format!(
        "refs/heads/{}:refs/heads/{}",
        target.local, target.remote_branch
    );
    if !is_local_url(&url) {
        return push_cli(target, &refspec);
    }
    let rejected: RefCell<Option<String>> = RefCell::new(None);
    {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.push_update_reference(|name, status| {
            if let Some(status) = status {
                *rejected.borrow_mut() = Some(format!("{name}: {status}"));
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks);
        remote
            .push(&[refspec.as_str()], Some(&mut opts))
            .map_err(|source| PushError::Push {
                remote: target.remote.clone(),
                url: url.clone(),
                source,
            })?;
    }
    match rejected.into_inner() {
        Some(why) => Err(PushError::Rejected {
            remote: target.remote.clone(),
            url,
            why,
        }),
        None => Ok(()),
    }
}

/// A path or `file://` URL, which libgit2 can push to without network transports.
fn is_local_url(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return scheme.eq_ignore_ascii_case("file");
    }
    // scp-like `host:path` is ssh; a ':' after a '/' is part of a path.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        _ => true,
    }
}

fn push_cli(target: &Target, refspec: &str) -> Result<(), PushError> {
    let remote = || target.remote.clone();
    let mut child = vaultkeeper_core::child::command("git")
        .arg("--git-dir")
        .arg(&target.git_dir)
        .args(["push", "--quiet", &target.remote, refspec])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PushError::Spawn {
            remote: remote(),
            source,
        })?;
    let deadline = Instant::now() + CLI_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PushError::Timeout {
                    remote: remote(),
                    secs: CLI_TIMEOUT.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(source) => {
                return Err(PushError::Wait {
                    remote: remote(),
                    source,
                });
            }
        }
    }
    let out = child.wait_with_output().map_err(|source| PushError::Wait {
        remote: remote(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PushError::Cli {
            remote: remote(),
            refspec: refspec.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Push bookkeeping for the consumer: at most one attempt in flight, backoff between failures.
#[derive(Debug)]
pub struct Pusher {
    backoff: Backoff,
    in_flight: Option<(u64, JoinHandle<Result<(), PushError>>)>,
    /// Bumped by every commit; a push is wanted while `pushed < committed`.
    committed: u64,
    pushed: u64,
    retry_at: Option<Instant>,
    /// The last push error, cleared by a success.
    pub last_error: Option<String>,
    /// When the last push succeeded.
    pub last_ok: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for Pusher {
    fn default() -> Self {
        Pusher {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            in_flight: None,
            committed: 0,
            pushed: 0,
            retry_at: None,
            last_error: None,
            last_ok: None,
        }
    }
}

impl Pusher {
    /// Records a commit that wants pushing.
    pub fn committed(&mut self) {
        self.committed += 1;
        self.retry_at = None;
    }

    /// Collects a finished attempt; starts one when wanted and due. Never blocks.
    pub fn poll(&mut self, target: impl FnOnce() -> Option<Target>) {
        if let Some((_, handle)) = &self.in_flight
            && handle.is_finished()
            && let Some((generation, handle)) = self.in_flight.take()
        {
            let result = handle.join().unwrap_or(Err(PushError::Panicked));
            match result {
                Ok(()) => {
                    self.pushed = self.pushed.max(generation);
                    self.backoff.reset();
                    self.retry_at = None;
                    self.last_error = None;
                    self.last_ok = Some(chrono::Utc::now());
                    tracing::info!("git: pushed");
                }
                Err(e) => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(
                        "git: {e}; retrying in {:.1}s (commits go on)",
                        delay.as_secs_f64()
                    );
                    self.retry_at = Some(Instant::now() + delay);
                    self.last_error = Some(e.to_string());
                }
            }
        }
        let due = self.retry_at.is_none_or(|t| Instant::now() >= t);
        if self.in_flight.is_none() && self.pushed < self.committed && due {
            let Some(target) = target() else {
                return;
            };
            let generation = self.committed;
            let handle = std::thread::Builder::new()
                .name("vaultkeeper-git-push".into())
                .spawn(move || push_once(&target));
            match handle {
                Ok(h) => self.in_flight = Some((generation, h)),
                Err(source) => {
                    self.retry_at = Some(Instant::now() + self.backoff.next_delay());
                    self.last_error = Some(PushError::Thread { source }.to_string());
                }
            }
        }
    }

    /// When [`Pusher::poll`] should run next, if a push is wanted or under way.
    pub fn deadline(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return Some(Instant::now() + Duration::from_millis(250));
        }
        if self.pushed < self.committed {
            return Some(self.retry_at.unwrap_or_else(Instant::now));
        }
        None
    }

    /// Waits up to `timeout` for an attempt under way (for shutdown); true when nothing is left to push.
    pub fn wait(&mut self, timeout: Duration, target: impl Fn() -> Option<Target>) -> bool {
        let deadline = Instant::now() + timeout;
        self.retry_at = None;
        loop {
            self.poll(&target);
            if self.in_flight.is_none()
                && (self.pushed >= self.committed || self.retry_at.is_some())
            {
                return self.pushed >= self.committed;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// For tests and status: the target for `git_dir` from the config and the current branch.
pub fn target(git_dir: &Path, remote: &str, local: &str, remote_branch: Option<&str>) -> Target {
    Target {
        git_dir: git_dir.to_path_buf(),
        remote: remote.to_string(),
        local: local.to_string(),
        remote_branch: remote_branch.unwrap_or(local).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_are_told_from_network_ones() {
        assert!(is_local_url("/srv/git/notes.git"));
        assert!(is_local_url("../backup"));
        assert!(is_local_url("file:///srv/git/notes.git"));
        assert!(is_local_url("/weird/pa:th"));
        assert!(!is_local_url("git@github.com:me/notes.git"));
        assert!(!is_local_url("https://github.com/me/notes.git"));
        assert!(!is_local_url("ssh://host/notes.git"));
    }
}
