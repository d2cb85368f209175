//! vaultkeeper-git: the git consumer. Turns journal events into commits after a quiet
//! period, safely, and reports its status.
//!
//! A tour, in the order a change travels:
//!
//! - this file: [`start`] decides whether git runs; [`GitConsumer`] collects the paths events
//!   name and decides *when* to commit (quiet period, max delay, flush, retry), running every
//!   git2 call on the blocking pool; its [`GitReport`] (a core type) is what `status` shows,
//! - [`safety`]: whether the repository is busy (rebase, merge, `index.lock`, detached HEAD),
//! - [`commit`]: [`Committer`] makes one commit of exactly the pending paths: read HEAD,
//!   stage each path, write tree and commit object, write the index, move the branch,
//! - `index_file`: the index read and rewritten directly (binary search, one splice), when
//!   its format is a plain one and nothing can filter the files; libgit2's index otherwise,
//! - [`message`]: the commit message from `git.message`,
//! - [`sign`]: signing as `commit.gpgsign` / `gpg.format` ask, or refusing to commit,
//! - [`push`]: pushing after commits, one attempt at a time on its own thread,
//! - [`mirror`]: `consume git`, events mirrored into a folder and committed with the above,
//! - [`init`]: `vaultkeeper init --git`, [`config`]: `[git]` settings and [`GitError`].
//!
//! Errors are typed per concern ([`GitError`] at start, [`CommitError`], [`sign::SignError`],
//! [`push::PushError`]), each keeping its libgit2 or I/O source.

pub mod commit;
pub mod config;
mod head_tree;
mod index_file;
pub mod init;
mod lock_owner;
pub mod message;
pub mod mirror;
pub mod push;
pub mod safety;
pub mod sign;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_core::retry::Backoff;
use vaultkeeper_core::status::{ConsumerKind, ConsumerReport};

pub use commit::{CommitError, Committer, Outcome, Pending};
pub use config::{DEFAULT_MESSAGE, GitConfig, GitError};
pub use init::{InitOutcome, init_repo};
pub use safety::Blocked;
pub use vaultkeeper_core::status::{GitReport, PushReport};

/// The git consumer's name: its cursor key and its entry in `status`.
pub const NAME: &str = ConsumerKind::Git.as_str();

/// A cheap, cloneable view of a running consumer's status (the consumer itself moves into the runner).
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Mutex<GitReport>>);

impl StatusHandle {
    /// The current status.
    pub fn get(&self) -> GitReport {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut GitReport)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// What [`start`] decided.
#[derive(Debug)]
pub enum GitStart {
    /// Git is on: hand the consumer to the runner.
    On(Box<GitConsumer>),
    /// Git is off, with the reason to show (see [`GitReport::off`]).
    Off(String),
}

/// Decides whether git runs for `vault` (`git.enabled`, else: is it a repository) and opens it.
/// Errors (no identity, enabled without a repository) are start-up errors to show the user.
pub fn start(
    vault: &Path,
    cfg: &GitConfig,
    vault_name: &str,
    host: &str,
) -> Result<GitStart, GitError> {
    if let Some(reason) = off_reason(vault, cfg)? {
        return Ok(GitStart::Off(reason));
    }
    Ok(GitStart::On(Box::new(GitConsumer::open(
        vault, cfg, vault_name, host,
    )?)))
}

/// Whether git is off for `vault`, and why (`None`: it is on). The one decision, shared by
/// the consumer and by writers that commit their own changes.
pub fn off_reason(vault: &Path, cfg: &GitConfig) -> Result<Option<String>, GitError> {
    match cfg.enabled {
        Some(false) => Ok(Some(
            "disabled in the configuration (git.enabled = false)".into(),
        )),
        None => match commit::discover(vault)? {
            None => Ok(Some(
                "the vault is not in a git repository (run `vaultkeeper init --git`, or set git.enabled)".into(),
            )),
            // On by default only when the vault is the repository's root: a vault that is a
            // folder inside some other project's repository must not commit into it unasked.
            Some(repo) => {
                let root = repo.workdir().and_then(|w| w.canonicalize().ok());
                if root.as_deref() != vault.canonicalize().ok().as_deref() {
                    return Ok(Some(format!(
                        "the vault is a folder inside the git repository at {}; set git.enabled = true to commit into it",
                        root.map(|r| r.display().to_string())
                            .unwrap_or_else(|| "?".into())
                    )));
                }
                Ok(None)
            }
        },
        Some(true) => Ok(None),
    }
}

/// The git consumer (name `git`): collects the paths events name, commits them after a
/// quiet period or the max delay, and on flush.
#[derive(Debug)]
pub struct GitConsumer {
    vault: PathBuf,
    cfg: GitConfig,
    vault_name: String,
    host: String,
    /// `None` while a commit runs on the blocking pool or after that task was lost.
    committer: Option<Committer>,
    git_dir: PathBuf,
    pending: Pending,
    max_seq: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    /// Backoff for real failures; a busy repository is polled at [`GitConsumer::blocked_poll`].
    retry: Backoff,
    retry_at: Option<Instant>,
    /// The last attempt found the repository busy (rebase, merge, lock): not an error.
    blocked: bool,
    /// The cause last logged at warn level, to log a lasting cause once.
    logged: Option<String>,
    pusher: push::Pusher,
    push_branch: Option<String>,
    status: StatusHandle,
}

impl GitConsumer {
    /// Opens the repository around `vault` (which may be a sub-folder of its work tree).
    /// Fails when there is none, or nobody to commit as.
    pub fn open(
        vault: &Path,
        cfg: &GitConfig,
        vault_name: &str,
        host: &str,
    ) -> Result<GitConsumer, GitError> {
        let committer = Committer::open(vault, cfg, vault_name, host)?;
        let (last_commit, last_commit_at) = match committer.last_commit() {
            Some((id, secs)) => (Some(id), Utc.timestamp_opt(secs, 0).single()),
            None => (None, None),
        };
        let status = GitReport {
            enabled: true,
            off_reason: None,
            repository: Some(committer.workdir().display().to_string()),
            branch: committer.branch(),
            last_commit,
            last_commit_at,
            push: cfg.push.then(|| PushReport {
                remote: cfg.remote.clone(),
                ..PushReport::default()
            }),
            ..GitReport::default()
        };
        let mut consumer = GitConsumer {
            vault: vault.to_path_buf(),
            cfg: cfg.clone(),
            vault_name: vault_name.to_string(),
            host: host.to_string(),
            git_dir: committer.git_dir().to_path_buf(),
            committer: Some(committer),
            pending: Pending::default(),
            max_seq: 0,
            first_at: None,
            last_at: None,
            retry: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            retry_at: None,
            blocked: false,
            logged: None,
            pusher: push::Pusher::default(),
            push_branch: None,
            status: StatusHandle(Arc::new(Mutex::new(status))),
        };
        if consumer.cfg.push {
            consumer.hand_off_unpushed();
        }
        Ok(consumer)
    }

    /// The current status (also available through [`GitConsumer::status_handle`]).
    pub fn status(&self) -> GitReport {
        self.status.get()
    }

    /// A handle that keeps showing the status after the consumer moved into the runner.
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// How many paths wait for the next commit.
    pub fn pending(&self) -> usize {
        self.pending.paths.len()
    }

    /// Wants a push at start when the branch is ahead of what the last push left on the
    /// remote: a push that failed, or was cut short, in the last run is handed to this one.
    fn hand_off_unpushed(&mut self) {
        let Some(branch) = self.committer.as_ref().and_then(Committer::branch) else {
            return;
        };
        let remote_branch = self.cfg.branch.as_deref().unwrap_or(&branch);
        if push::unpushed(&self.git_dir, &self.cfg.remote, &branch, remote_branch) {
            tracing::info!(
                "git: {branch} has commits not on {} yet (left by the last run); pushing them",
                self.cfg.remote
            );
            self.push_branch = Some(branch);
            self.pusher.committed();
            self.sync_push_status();
        }
    }

    /// Waits up to `timeout` for outstanding pushes (on shutdown); true when all is pushed.
    pub fn finish_push(&mut self, timeout: Duration) -> bool {
        if !self.cfg.push {
            return true;
        }
        let target = self.push_target_fn();
        let done = self.pusher.wait(timeout, target);
        self.sync_push_status();
        done
    }

    /// [`GitConsumer::finish_push`] on the blocking pool when a tokio runtime is there, so
    /// the wait never holds an executor thread.
    async fn finish_push_off_executor(&mut self, timeout: Duration) -> bool {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return self.finish_push(timeout);
        };
        if !self.cfg.push {
            return true;
        }
        let mut pusher = std::mem::take(&mut self.pusher);
        let target = self.push_target_fn();
        let waited = rt
            .spawn_blocking(move || {
                let done = pusher.wait(timeout, target);
                (pusher, done)
            })
            .await;
        let done = match waited {
            Ok((pusher, done)) => {
                self.pusher = pusher;
                done
            }
            // The pusher went with the task; the next start pushes what is left.
            Err(_) => false,
        };
        self.sync_push_status();
        done
    }

    fn push_target_fn(&self) -> impl Fn() -> Option<push::Target> + use<> {
        let git_dir = self.git_dir.clone();
        let remote = self.cfg.remote.clone();
        let branch = self.push_branch.clone();
        let remote_branch = self.cfg.branch.clone();
        move || {
            let local = branch.as_deref()?;
            Some(push::target(
                &git_dir,
                &remote,
                local,
                remote_branch.as_deref(),
            ))
        }
    }

    fn poll_push(&mut self) {
        if self.cfg.push {
            let target = self.push_target_fn();
            self.pusher.poll(target);
            self.sync_push_status();
        }
    }

    fn sync_push_status(&self) {
        let behind = self.pusher.deadline().is_some();
        let (last_ok, last_error) = (self.pusher.last_ok, self.pusher.last_error.clone());
        self.status.update(|s| {
            if let Some(p) = &mut s.push {
                p.behind = behind;
                p.last_ok = last_ok;
                p.last_error = last_error;
            }
        });
    }

    fn note(&mut self, event: &Event) {
        let mut add = |p: &str| {
            self.pending.paths.insert(p.to_string());
        };
        add(&event.file_path);
        if event.event == Kind::Renamed
            && let Some(old) = &event.old_path
        {
            add(old);
            self.pending
                .renames
                .insert(event.file_path.clone(), old.clone());
        }
        self.max_seq = self.max_seq.max(event.seq);
    }

    /// When the pending paths are due: quiet period after the last event, capped by the max delay.
    fn due(&self) -> Option<Instant> {
        let (first, last) = (self.first_at?, self.last_at?);
        Some((last + self.cfg.quiet).min(first + self.cfg.max_delay))
    }

    /// Commits the pending paths now, off the async threads when a tokio runtime is there.
    async fn commit_now(&mut self) -> Result<Durable, ConsumerError> {
        // Only `failed` says the repository is busy; any other way out is not a wait.
        self.blocked = false;
        self.poll_push();
        if self.pending.is_empty() {
            return Ok(Durable::Unchanged);
        }
        let started = std::time::Instant::now();
        let committer = self.committer.take();
        let pending = self.pending.clone();
        let (vault, cfg) = (self.vault.clone(), self.cfg.clone());
        let (vault_name, host) = (self.vault_name.clone(), self.host.clone());
        // Every git2 call (opening the repository again included) runs in here.
        let work = move || {
            let mut committer = match committer {
                Some(c) => c,
                None => match Committer::open(&vault, &cfg, &vault_name, &host) {
                    Ok(c) => c,
                    Err(e) => return Err(CommitError::Open(e)),
                },
            };
            let result = committer.commit(&pending);
            let branch = committer.branch();
            Ok((committer, branch, result))
        };
        let done = match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn_blocking(work).await.map_err(|e| {
                ConsumerError::transient(format!("git: the commit task did not finish: {e}"))
            })?,
            Err(_) => work(),
        };
        let (committer, branch, result) = done.map_err(|e| self.failed(e))?;
        self.committer = Some(committer);
        match result {
            Ok(outcome) => {
                let upto = self.max_seq;
                let count = self.pending.paths.len();
                self.pending = Pending::default();
                (self.first_at, self.last_at, self.retry_at, self.logged) =
                    (None, None, None, None);
                self.blocked = false;
                self.retry.reset();
                let mut committed = None;
                match &outcome {
                    Outcome::Committed {
                        id,
                        changes,
                        branch,
                        summary,
                    } => {
                        tracing::info!(
                            commit = %id,
                            "git: committed {changes} change(s) on {branch} as {:.10} in {:.1} ms",
                            id.to_string(),
                            started.elapsed().as_secs_f64() * 1000.0
                        );
                        committed = Some((id.to_string(), Utc::now(), summary.clone()));
                        if self.cfg.push {
                            self.push_branch = Some(branch.clone());
                            self.pusher.committed();
                        }
                    }
                    Outcome::Unchanged => {
                        tracing::debug!(
                            "git: {count} path(s) already match HEAD; nothing to commit"
                        )
                    }
                }
                self.status.update(|s| {
                    s.pending = 0;
                    s.blocked = None;
                    s.last_error = None;
                    s.branch = branch;
                    if let Some((id, at, summary)) = committed {
                        s.last_commit = Some(id);
                        s.last_commit_at = Some(at);
                        s.last_summary = Some(summary);
                    }
                });
                self.poll_push();
                Ok(if upto > 0 {
                    Durable::Upto(upto)
                } else {
                    Durable::Unchanged
                })
            }
            Err(e) => {
                self.status.update(|s| s.branch = branch);
                Err(self.failed(e))
            }
        }
    }

    /// How often a busy repository is looked at again: within the quiet period, so that
    /// the pending changes are committed that soon after the user's rebase or merge ends.
    /// A look is a few `stat`s of the git dir.
    fn blocked_poll(&self) -> Duration {
        self.cfg
            .quiet
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Logs a failure (once per lasting cause at warn level), records it, schedules a retry.
    fn failed(&mut self, e: CommitError) -> ConsumerError {
        let text = e.to_string();
        let key = match &e {
            CommitError::Blocked(b) => b.key().to_string(),
            other => other.to_string(),
        };
        if self.logged.as_deref() != Some(key.as_str()) {
            tracing::warn!(
                pending = self.pending.paths.len(),
                "git: not committing yet: {text}"
            );
            self.logged = Some(key);
        } else {
            tracing::debug!("git: still waiting: {text}");
        }
        // Waiting for the user is not failing: a backoff grown over a long rebase would
        // delay the commit long after it ends, so a busy repository is polled evenly.
        self.blocked = matches!(e, CommitError::Blocked(_));
        let delay = if self.blocked {
            self.blocked_poll()
        } else {
            self.retry.next_delay()
        };
        self.retry_at = Some(Instant::now() + delay);
        let pending = self.pending.paths.len();
        self.status.update(|s| {
            s.pending = pending;
            match &e {
                CommitError::Blocked(_) => s.blocked = Some(text.clone()),
                _ => {
                    s.blocked = None;
                    s.last_error = Some(text.clone());
                }
            }
        });
        ConsumerError::transient(format!("git: {text}")).with_source(e)
    }
}

impl Consumer for GitConsumer {
    fn name(&self) -> &str {
        NAME
    }

    fn status(&self) -> Option<ConsumerReport> {
        Some(ConsumerReport::Git(self.status.get()))
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        if batch.is_empty() {
            return Ok(Durable::Unchanged);
        }
        let now = Instant::now();
        for event in batch {
            self.note(event);
        }
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        let pending = self.pending.paths.len();
        self.status.update(|s| s.pending = pending);
        // Under a steady stream the runner may never be idle: keep the max delay here too.
        if self
            .first_at
            .is_some_and(|first| now >= first + self.cfg.max_delay)
        {
            // The events are taken either way: when the repository is busy the paths stay
            // pending and the deadline retries, so the runner need not replay this batch.
            return Ok(self.commit_now().await.unwrap_or(Durable::Unchanged));
        }
        self.poll_push();
        Ok(Durable::Unchanged)
    }

    fn deadline(&self) -> Option<Instant> {
        let commit = self
            .due()
            .map(|due| self.retry_at.map_or(due, |r| r.max(due)));
        let push = if self.cfg.push {
            self.pusher.deadline()
        } else {
            None
        };
        match (commit, push) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
        if self.due().is_some_and(|due| Instant::now() >= due) {
            return match self.commit_now().await {
                // Already reported once and shown in the status as `blocked`; an error
                // here would make the runner warn on every look and back off on its own.
                Err(_) if self.blocked => Ok(Durable::Unchanged),
                other => other,
            };
        }
        self.poll_push();
        Ok(Durable::Unchanged)
    }

    async fn flush(&mut self) -> Result<Durable, ConsumerError> {
        self.commit_now().await
    }

    async fn stop(&mut self) {
        if !self.cfg.push || self.pusher.deadline().is_none() {
            return;
        }
        tracing::info!("git: finishing the push before stopping");
        if self.finish_push_off_executor(push::SHUTDOWN_WAIT).await {
            tracing::info!("git: everything is pushed");
        } else {
            tracing::warn!(
                "git: commits are not pushed yet; the next start pushes them (they are safe in the local repository)"
            );
        }
    }
}
