//! The `[git]` configuration section and the errors the git consumer reports at start.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default commit message: the first line says how many, the body lists the files.
pub const DEFAULT_MESSAGE: &str = "vault: {count} change(s) on {host}\n\n{files}";

/// Settings of the git auto-commit consumer (`[git]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitConfig {
    /// `None`: on when the vault is inside a git repository, else off.
    pub enabled: Option<bool>,
    /// Commit after this long without new events.
    #[serde(with = "humantime_serde")]
    pub quiet: Duration,
    /// Commit at the latest this long after the first pending event.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Commit message template: `{count}`, `{files}`, `{date}`, `{host}`, `{vault}`.
    pub message: String,
    /// How many paths `{files}` lists before "... and K more".
    pub max_files_in_message: usize,
    /// Author and committer name; else the repository's `user.name`.
    pub author_name: Option<String>,
    /// Author and committer email; else the repository's `user.email`.
    pub author_email: Option<String>,
    /// Push after each commit (never forced).
    pub push: bool,
    /// Remote to push to.
    pub remote: String,
    /// Remote branch to push to; default: the current branch's name.
    pub branch: Option<String>,
    /// Warn when a file to commit is larger than this many bytes.
    pub large_file_warn: u64,
    /// Leave files above `large_file_warn` out of commits.
    pub skip_large: bool,
    /// Signing program, overriding `gpg.program` / `gpg.ssh.program` / `gpg.x509.program`.
    pub sign_program: Option<String>,
    /// Signing key, overriding `user.signingkey`.
    pub sign_key: Option<String>,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            enabled: None,
            quiet: Duration::from_secs(10),
            max_delay: Duration::from_secs(300),
            message: DEFAULT_MESSAGE.to_string(),
            max_files_in_message: 20,
            author_name: None,
            author_email: None,
            push: false,
            remote: "origin".to_string(),
            branch: None,
            large_file_warn: 10 * 1024 * 1024,
            skip_large: false,
            sign_program: None,
            sign_key: None,
        }
    }
}

/// Why the git consumer could not start (or `init --git` failed).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git.enabled = true` but there is no repository around the vault.
    #[error(
        "git.enabled = true but {0} is not inside a git repository (run `vaultkeeper init --git` or `git init`)"
    )]
    NotARepository(PathBuf),
    /// Nobody to write commits as.
    #[error(
        "no commit identity for {0}: set git.author_name and git.author_email in the vaultkeeper config, or user.name and user.email in git config (git config user.name \"You\"; git config user.email you@example.org)"
    )]
    NoIdentity(PathBuf),
    /// A bare repository has no work tree to commit from.
    #[error("{0} is a bare git repository; the vault needs a work tree")]
    Bare(PathBuf),
    /// The vault lies outside the repository's work tree (or its path cannot be resolved).
    #[error("vault {vault} is not inside the work tree of {repo}")]
    OutsideWorkTree {
        /// The vault folder.
        vault: PathBuf,
        /// The repository's work tree.
        repo: PathBuf,
    },
    /// A libgit2 call failed.
    #[error("git: {context}: {source}")]
    Git {
        /// What was being done, naming the path.
        context: String,
        /// The libgit2 error.
        source: git2::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl GitError {
    pub(crate) fn git(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let context = context.into();
        move |source| GitError::Git { context, source }
    }
}
