//! Staging exactly the named paths and committing them on the current branch (git2), cost following the change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, Mempack, Oid, Repository, Signature};

use super::config::{GitConfig, GitError};
use super::head_tree::HeadTree;
use super::index_file::{self, IndexFile, NewEntry};
use super::message::{self, Change, MessageVars};
use super::safety::{self, Blocked};
use super::sign::{self, SignError, Signing};

/// Paths waiting for the next commit (vault-relative, `/`). What to do with each is
/// decided at commit time from the work tree, so repeated or stale events are harmless.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Every path an event named (both sides of a rename).
    pub paths: BTreeSet<String>,
    /// Rename events, new path to old path, to list them as renames in the message.
    pub renames: BTreeMap<String, String>,
}

impl Pending {
    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// What a commit attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A commit was made.
    Committed {
        /// The new commit.
        id: Oid,
        /// How many changes it holds.
        changes: usize,
        /// The branch it is on (`main`).
        branch: String,
        /// Its message's summary, as `git log --oneline` shows it.
        summary: String,
    },
    /// The named paths already match HEAD: no empty commit.
    Unchanged,
}

/// Why a commit attempt did not happen. All are retried later: the paths stay pending.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The repository is busy (rebase, merge, lock, detached HEAD): waiting, not failing.
    #[error("{0}")]
    Blocked(Blocked),
    /// A lock file is held by another git process.
    #[error("{context}: a lock file is held by another git process ({})", source.message())]
    Locked {
        /// What was being done, naming the file where there is one.
        context: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// Any other libgit2 failure.
    #[error("{context}: {}", source.message())]
    Git {
        /// What was being done, naming the file where there is one.
        context: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// The repository could not be opened again (after a lost commit task).
    #[error(transparent)]
    Open(#[from] GitError),
    /// The commit cannot be signed as the configuration asks.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// libgit2 built a commit buffer that is not UTF-8 (it cannot be signed).
    #[error("commit buffer is not UTF-8")]
    BufferNotUtf8,
    /// The in-memory pack could not be written to disk.
    #[error("writing the pack: {source}")]
    Pack {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The index file could not be read or written (the direct path, see `index_file`).
    #[error("{what} the index: {source}")]
    Index {
        /// "reading" or "writing".
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The branch moved between reading HEAD and updating it (the user committed).
    #[error(
        "updating {branch_ref}: {} (the branch changed meanwhile; retrying on top of it)",
        source.message()
    )]
    BranchMoved {
        /// The branch's reference (`refs/heads/main`).
        branch_ref: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
}

/// Maps a libgit2 error to a [`CommitError`] naming what was being done.
fn other(context: &str) -> impl FnOnce(git2::Error) -> CommitError + '_ {
    move |source| {
        let context = context.to_string();
        if source.code() == ErrorCode::Locked {
            CommitError::Locked { context, source }
        } else {
            CommitError::Git { context, source }
        }
    }
}

/// The repository side of the git consumer: one open repository and who commits.
pub struct Committer {
    repo: Repository,
    workdir: PathBuf,
    /// The vault's place inside the work tree: `""` or `"sub/dir/"`.
    prefix: String,
    cfg: GitConfig,
    name: String,
    email: String,
    host: String,
    vault_name: String,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("workdir", &self.workdir)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Finds the repository whose work tree holds `vault`; `Ok(None)` when there is none.
pub fn discover(vault: &Path) -> Result<Option<Repository>, GitError> {
    match Repository::discover(vault) {
        Ok(repo) => Ok(Some(repo)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(GitError::Git {
            context: format!("opening the repository around {}", vault.display()),
            source: e,
        }),
    }
}

impl Committer {
    /// Opens the repository around `vault` and settles who commits (fails early if nobody).
    pub fn open(
        vault: &Path,
        cfg: &GitConfig,
        vault_name: &str,
        host: &str,
    ) -> Result<Committer, GitError> {
        // Objects read back are not hashed again, as git itself does not: libgit2 otherwise
        // runs the collision-detecting SHA-1 over HEAD's trees at every commit (a folder of
        // 20,000 notes is a 700 KB tree). A damaged object still fails to inflate or parse,
        // and `git fsck` checks hashes.
        git2::opts::strict_hash_verification(false);
        let repo = discover(vault)?.ok_or_else(|| GitError::NotARepository(vault.into()))?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::Bare(repo.path().into()))?
            .to_path_buf();
        let canon = |p: &Path| {
            p.canonicalize().map_err(|source| GitError::Io {
                path: p.into(),
                source,
            })
        };
        let (workdir, vault_c) = (canon(&workdir)?, canon(vault)?);
        let rel = vault_c
            .strip_prefix(&workdir)
            .map_err(|_| GitError::OutsideWorkTree {
                vault: vault.into(),
                repo: workdir.clone(),
            })?;
        let mut prefix = String::new();
        for part in rel.components() {
            let part = part.as_os_str().to_str().ok_or_else(|| GitError::Io {
                path: vault.into(),
                source: std::io::Error::other("the vault path is not valid UTF-8"),
            })?;
            prefix.push_str(part);
            prefix.push('/');
        }
        let from_repo = repo.signature().ok();
        let pick = |own: &Option<String>, repo: Option<&str>| {
            own.clone()
                .filter(|s| !s.trim().is_empty())
                .or_else(|| repo.map(str::to_string))
        };
        let name = pick(&cfg.author_name, from_repo.as_ref().and_then(|s| s.name()));
        let email = pick(
            &cfg.author_email,
            from_repo.as_ref().and_then(|s| s.email()),
        );
        let (Some(name), Some(email)) = (name, email) else {
            return Err(GitError::NoIdentity(workdir));
        };
        Signature::now(&name, &email).map_err(GitError::git(format!(
            "commit identity {name:?} <{email}> (git.author_name / git.author_email or user.name / user.email)"
        )))?;
        Ok(Committer {
            repo,
            workdir,
            prefix,
            cfg: cfg.clone(),
            name,
            email,
            host: host.to_string(),
            vault_name: vault_name.to_string(),
        })
    }

    /// The repository's work tree root.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The git directory (`.git`).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The branch HEAD names (`main`), born or not; `None` when detached.
    pub fn branch(&self) -> Option<String> {
        let head = self.repo.find_reference("HEAD").ok()?;
        let target = head.symbolic_target()?;
        Some(
            target
                .strip_prefix("refs/heads/")
                .unwrap_or(target)
                .to_string(),
        )
    }

    /// The commit HEAD points to, with its time.
    pub fn last_commit(&self) -> Option<(String, i64)> {
        let commit = self.repo.head().ok()?.peel_to_commit().ok()?;
        Some((commit.id().to_string(), commit.time().seconds()))
    }

    /// The pending paths, valid ones only, plus the files inside any that is a folder
    /// (a renamed or new folder arrives as one event): cost follows the folder, not the vault.
    fn expand_folders(&self, repo: &Repository, paths: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for vpath in paths {
            if let Err(why) = valid_path(vpath) {
                tracing::warn!(path = %vpath, "git: not staging {vpath:?}: {why}");
                continue;
            }
            let full = self.workdir.join(format!("{}{}", self.prefix, vpath));
            if std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                self.walk(repo, &full, vpath, &mut out);
            }
            out.insert(vpath.clone());
        }
        out
    }

    fn walk(&self, repo: &Repository, dir: &Path, vdir: &str, out: &mut BTreeSet<String>) {
        let rdir = format!("{}{}/", self.prefix, vdir);
        if repo.is_path_ignored(&rdir).unwrap_or(false) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(path = %vdir, "git: cannot list {vdir}: {e}; its files are not staged");
                return;
            }
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %vdir, "git: a file name in {vdir} is not UTF-8; not staged");
                continue;
            };
            if name.eq_ignore_ascii_case(".git") {
                continue;
            }
            let vpath = format!("{vdir}/{name}");
            match entry.file_type() {
                Ok(t) if t.is_dir() => self.walk(repo, &entry.path(), &vpath, out),
                Ok(_) => {
                    out.insert(vpath);
                }
                Err(_) => {}
            }
        }
    }

    /// Stages the pending paths from the work tree and commits what differs from HEAD.
    pub fn commit(&mut self, pending: &Pending) -> Result<Outcome, CommitError> {
        self.commit_as(pending, None)
    }

    /// Whether a commit may proceed now (no rebase or merge, no foreign `index.lock`, HEAD
    /// on a branch): lets a writer refuse before it touches a file it could not commit.
    pub fn ready(&self) -> Result<(), Blocked> {
        safety::check(&self.repo)
    }

    /// [`Committer::commit`] with `message` instead of `git.message` (a write's own commit,
    /// naming its tool and client); `None` is the configured template.
    pub fn commit_as(
        &mut self,
        pending: &Pending,
        message: Option<&str>,
    ) -> Result<Outcome, CommitError> {
        safety::check(&self.repo).map_err(CommitError::Blocked)?;
        if pending.paths.len() < BULK_PATHS {
            return self.commit_in(&self.repo, None, pending, message);
        }
        // A burst: objects go to memory and then to disk as one pack, instead of one
        // loose file each (10,000 file creations are slow on ext4, and leave a mess).
        // A second handle, so that the memory backend never outlives this commit.
        let bulk = Repository::open(self.repo.path()).map_err(other("opening the repository"))?;
        let odb = bulk.odb().map_err(other("opening the object database"))?;
        let mempack = odb
            .add_new_mempack_backend(1000)
            .map_err(other("preparing the in-memory pack"))?;
        let result = self.commit_in(&bulk, Some(&mempack), pending, message);
        let _ = mempack.reset();
        result
    }

    /// One commit attempt on `repo` (the open repository, or a second handle whose new
    /// objects go to `mempack`): stage, write the tree and commit, write the index, move
    /// the branch, in that order, so that a failure at any step leaves a state the next
    /// attempt repairs.
    fn commit_in(
        &self,
        repo: &Repository,
        mempack: Option<&Mempack<'_>>,
        pending: &Pending,
        message: Option<&str>,
    ) -> Result<Outcome, CommitError> {
        let head = self.read_head(repo)?;
        let paths = self.expand_folders(repo, &pending.paths);
        let mut plain = PlainStaging::new(repo);
        let mut index = self.open_index(repo, &mut plain, &paths)?;
        let staging = self.stage(repo, &mut index, &head.tree, &paths, plain)?;
        let index_dirty = staging.index_dirty;
        let commit = if staging.changed.is_empty() {
            None
        } else {
            self.make_commit(repo, &head, staging, pending, message)?
        };
        if let Some(mempack) = mempack
            && (index_dirty || commit.is_some())
        {
            write_pack(repo, mempack)?;
        }
        if index_dirty {
            // Before the branch moves: should that fail, the index already holds what the
            // next attempt commits, and `git status` never shows our commit as a staged revert.
            index.write(repo)?;
        } else {
            // An unchanged direct index lets go of its lock here.
            drop(index);
        }
        let Some(made) = commit else {
            return Ok(Outcome::Unchanged);
        };
        move_branch(repo, &head, &made)?;
        let branch = head
            .branch_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&head.branch_ref)
            .to_string();
        // libgit2's own summary of the commit just written (still in memory in a burst).
        let summary = repo
            .find_commit(made.id)
            .ok()
            .and_then(|c| c.summary().map(str::to_string))
            .unwrap_or_default();
        Ok(Outcome::Committed {
            id: made.id,
            changes: made.changes,
            branch,
            summary,
        })
    }

    /// The index to stage into: the file itself, read and rewritten directly (see
    /// [`index_file`]), when nothing can filter the files to stage and its format is a
    /// plain one; libgit2's index otherwise.
    fn open_index(
        &self,
        repo: &Repository,
        plain: &mut PlainStaging,
        paths: &BTreeSet<String>,
    ) -> Result<Index, CommitError> {
        let direct = plain.possible
            && paths
                .iter()
                .all(|p| plain.allows(&self.workdir, &format!("{}{p}", self.prefix)));
        if direct {
            match IndexFile::open(repo.path()) {
                Ok(index_file::Open::Ready(file)) => {
                    return Ok(Index::Direct {
                        file,
                        racy_from: racy_from(),
                    });
                }
                Ok(index_file::Open::Locked) => return Err(locked(repo)),
                Ok(index_file::Open::Conflicts) => {
                    return Err(CommitError::Blocked(Blocked::Conflicts));
                }
                Ok(index_file::Open::Unsupported(why)) => {
                    tracing::debug!("git: staging through libgit2's index: {why}");
                }
                Err(source) => {
                    return Err(CommitError::Index {
                        what: "reading",
                        source,
                    });
                }
            }
        }
        open_git2_index(repo).map(Index::Git2)
    }

    /// The branch HEAD names, its commit (none on an unborn branch) and the tree to
    /// commit on top of (the empty tree then).
    fn read_head<'r>(&self, repo: &'r Repository) -> Result<Head<'r>, CommitError> {
        let branch_ref = repo
            .find_reference("HEAD")
            .map_err(other("reading HEAD"))?
            .symbolic_target()
            .map(str::to_string)
            .ok_or(CommitError::Blocked(Blocked::DetachedHead))?;
        let commit = match repo.head() {
            Ok(r) => Some(
                r.peel_to_commit()
                    .map_err(other("reading the HEAD commit"))?,
            ),
            Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => None,
            Err(e) => return Err(other("reading HEAD")(e)),
        };
        let tree = match &commit {
            Some(c) => c.tree().map_err(other("reading the HEAD tree"))?,
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(other("writing the empty tree"))?;
                repo.find_tree(empty)
                    .map_err(other("reading the empty tree"))?
            }
        };
        Ok(Head {
            branch_ref,
            commit,
            tree,
        })
    }

    /// Brings every pending path (folders expanded) into the index from the work tree and
    /// collects the tree updates against HEAD.
    fn stage<'r>(
        &self,
        repo: &'r Repository,
        index: &mut Index,
        base_tree: &git2::Tree<'r>,
        paths: &BTreeSet<String>,
        plain: PlainStaging,
    ) -> Result<Staging, CommitError> {
        let mut staging = Staging {
            updates: TreeUpdateBuilder::new(),
            changed: Vec::new(),
            index_dirty: false,
            removed_dirs: Vec::new(),
            plain,
        };
        let mut head = HeadTree::new(repo, base_tree);
        for vpath in paths {
            // Folders removed whole: later paths under them are already gone from tree and index.
            if staging.removed_dirs.iter().any(|d| {
                vpath
                    .strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            }) {
                continue;
            }
            self.stage_path(repo, index, &mut head, &mut staging, vpath)?;
        }
        Ok(staging)
    }

    /// Stages one path: added or updated when it is on disk, removed when it is gone.
    fn stage_path(
        &self,
        repo: &Repository,
        index: &mut Index,
        head: &mut HeadTree<'_, '_>,
        staging: &mut Staging,
        vpath: &str,
    ) -> Result<(), CommitError> {
        let rpath = format!("{}{}", self.prefix, vpath);
        let rel = Path::new(&rpath);
        let head_entry = head.entry(&rpath);
        let before = index.get(&rpath);
        let present = match self.on_disk(vpath, rel, head_entry) {
            OnDisk::Present(meta) => Some(meta),
            OnDisk::Gone => None,
            OnDisk::Skip => return Ok(()),
        };
        let staged = match present {
            Some(meta) => {
                if before.is_none()
                    && head_entry.is_none()
                    && repo.is_path_ignored(rel).unwrap_or(false)
                {
                    return Ok(());
                }
                match self.add(repo, index, &mut staging.plain, vpath, &rpath, &meta) {
                    Added::Yes => true,
                    Added::Gone => false,
                    Added::Skipped => return Ok(()),
                }
            }
            None => false,
        };
        if staged {
            let Some((entry_id, entry_mode)) = index.get(&rpath) else {
                return Ok(());
            };
            if before != Some((entry_id, entry_mode)) {
                staging.index_dirty = true;
            }
            let Some(mode) = file_mode(entry_mode) else {
                return Ok(());
            };
            if head_entry == Some((entry_id, i32::from(mode))) {
                return Ok(());
            }
            staging.updates.upsert(rpath.as_str(), entry_id, mode);
            staging.changed.push(Staged {
                path: vpath.to_string(),
                old: head_entry.map(|e| e.0),
                new: Some(entry_id),
            });
            return Ok(());
        }
        if before.is_some() {
            index.remove(&rpath)?;
            staging.index_dirty = true;
        }
        if let Some((id, mode)) = head_entry {
            if mode == i32::from(FileMode::Tree) {
                index.remove_dir(&rpath)?;
                staging.index_dirty = true;
                staging.removed_dirs.push(vpath.to_string());
            }
            staging.updates.remove(rpath.as_str());
            staging.changed.push(Staged {
                path: vpath.to_string(),
                old: Some(id),
                new: None,
            });
        }
        Ok(())
    }

    /// What the work tree holds at `rel`, as staging sees it.
    fn on_disk(&self, vpath: &str, rel: &Path, head_entry: Option<(Oid, i32)>) -> OnDisk {
        match std::fs::symlink_metadata(self.workdir.join(rel)) {
            Ok(m) if m.is_file() || m.file_type().is_symlink() => OnDisk::Present(m),
            Ok(m) if m.is_dir() => {
                // A folder event: its files come with their own events; only a folder
                // that replaced a tracked file needs the file removed.
                if matches!(head_entry, Some((_, mode)) if mode != i32::from(FileMode::Tree)) {
                    OnDisk::Gone
                } else {
                    OnDisk::Skip
                }
            }
            Ok(_) => {
                tracing::warn!(path = %vpath, "git: {vpath} is not a regular file or symlink; not staged");
                OnDisk::Skip
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OnDisk::Gone,
            Err(e) => {
                tracing::warn!(path = %vpath, "git: cannot read {vpath}: {e}; not staged");
                OnDisk::Skip
            }
        }
    }

    /// Adds a file that is on disk to the index, minding `git.large_file_warn`; the fast
    /// path when nothing can filter it (see [`PlainStaging`]).
    fn add(
        &self,
        repo: &Repository,
        index: &mut Index,
        plain: &mut PlainStaging,
        vpath: &str,
        rpath: &str,
        meta: &std::fs::Metadata,
    ) -> Added {
        let limit = self.cfg.large_file_warn;
        if meta.is_file() && meta.len() > limit {
            if self.cfg.skip_large {
                tracing::warn!(path = %vpath, size = meta.len(), "git: {vpath} is {} bytes, above git.large_file_warn = {limit}; skipped (git.skip_large = true)", meta.len());
                return Added::Skipped;
            }
            tracing::warn!(path = %vpath, size = meta.len(), "git: {vpath} is {} bytes, above git.large_file_warn = {limit}; committing it anyway", meta.len());
        }
        let large = meta.len() > limit;
        let added = match index {
            Index::Git2(i) if large || !plain.allows(&self.workdir, rpath) => {
                i.add_path(Path::new(rpath))
            }
            // Direct: nothing can filter these files (checked when it was opened).
            index => {
                plain_entry(repo, &self.workdir, rpath, meta, large).and_then(|e| index.add(e))
            }
        };
        match added {
            Ok(()) => Added::Yes,
            Err(e) if e.code() == ErrorCode::NotFound => Added::Gone,
            Err(e) => {
                tracing::warn!(path = %vpath, "git: cannot stage {vpath}: {}; left out of this commit", e.message());
                Added::Skipped
            }
        }
    }

    /// Writes the tree and the (signed, when asked) commit object; the branch is not moved
    /// here. `None` when the new tree is HEAD's.
    fn make_commit(
        &self,
        repo: &Repository,
        head: &Head<'_>,
        mut staging: Staging,
        pending: &Pending,
        message: Option<&str>,
    ) -> Result<Option<Made>, CommitError> {
        let tree_id = staging
            .updates
            .create_updated(repo, &head.tree)
            .map_err(other("writing the tree"))?;
        if tree_id == head.tree.id() {
            return Ok(None);
        }
        let tree = repo
            .find_tree(tree_id)
            .map_err(other("reading the new tree"))?;
        let changes = describe(staging.changed, &pending.renames);
        let message = match message {
            Some(m) => m.to_string(),
            None => self.message(&changes),
        };
        let parents: Vec<&git2::Commit<'_>> = head.commit.iter().collect();
        let id = self.write_commit(repo, &message, &tree, &parents)?;
        Ok(Some(Made {
            id,
            message,
            changes: changes.len(),
        }))
    }

    /// The commit message from `git.message` for these changes.
    fn message(&self, changes: &[Change]) -> String {
        message::render(
            &self.cfg.message,
            &MessageVars {
                changes,
                max_files: self.cfg.max_files_in_message,
                date: chrono::Local::now()
                    .format("%Y-%m-%d %H:%M:%S %z")
                    .to_string(),
                host: &self.host,
                vault: &self.vault_name,
            },
        )
    }

    /// Writes the commit object, signed when the repository's config asks for it.
    fn write_commit(
        &self,
        repo: &Repository,
        message: &str,
        tree: &git2::Tree<'_>,
        parents: &[&git2::Commit<'_>],
    ) -> Result<Oid, CommitError> {
        let sig = Signature::now(&self.name, &self.email)
            .map_err(other("making the commit signature"))?;
        let ident = format!("{} <{}>", self.name, self.email);
        match sign::signing(repo, &self.cfg, &ident)? {
            Signing::Unsigned => repo
                .commit(None, &sig, &sig, message, tree, parents)
                .map_err(other("writing the commit")),
            signing => {
                let buf = repo
                    .commit_create_buffer(&sig, &sig, message, tree, parents)
                    .map_err(other("preparing the commit"))?;
                let content = buf.as_str().ok_or(CommitError::BufferNotUtf8)?;
                let signature = sign::sign(&signing, content)?;
                repo.commit_signed(content, &signature, None)
                    .map_err(other("writing the signed commit"))
            }
        }
    }
}

/// HEAD as a commit attempt found it.
struct Head<'r> {
    /// The branch HEAD names (`refs/heads/main`).
    branch_ref: String,
    /// Its commit; `None` on an unborn branch.
    commit: Option<git2::Commit<'r>>,
    /// The tree the new commit is built on.
    tree: git2::Tree<'r>,
}

/// What staging collected.
struct Staging {
    updates: TreeUpdateBuilder,
    changed: Vec<Staged>,
    index_dirty: bool,
    /// Tracked folders removed whole (see [`Committer::stage`]).
    removed_dirs: Vec<String>,
    plain: PlainStaging,
}

/// A commit object written, not yet on the branch.
struct Made {
    id: Oid,
    message: String,
    changes: usize,
}

/// What the work tree holds at a pending path.
enum OnDisk {
    /// A file or symlink to stage.
    Present(std::fs::Metadata),
    /// Nothing (or a folder where HEAD has a file): remove it.
    Gone,
    /// Leave the path alone (a folder, a special file, unreadable).
    Skip,
}

/// How adding a present file went.
enum Added {
    Yes,
    /// It went away meanwhile: handled as removed.
    Gone,
    /// Left out of this commit (too large, or it could not be staged); already logged.
    Skipped,
}

/// Opens libgit2's index, re-read from disk when git changed it; refuses while it has conflicts.
fn open_git2_index(repo: &Repository) -> Result<git2::Index, CommitError> {
    let mut index = repo.index().map_err(other("opening the index"))?;
    // Unforced: libgit2 re-reads when the file's mtime, size or inode changed, and git
    // always replaces the index by renaming index.lock (a new inode), so a rewrite by
    // the user's git is never missed; an unchanged index is not parsed again (100k entries: ~100 ms).
    index.read(false).map_err(other("reading the index"))?;
    if index.has_conflicts() {
        return Err(CommitError::Blocked(Blocked::Conflicts));
    }
    Ok(index)
}

/// Writes the index; a lock taken meanwhile is reported as the repository being busy.
fn write_index(repo: &Repository, index: &mut git2::Index) -> Result<(), CommitError> {
    let Err(e) = index.write() else {
        return Ok(());
    };
    if e.code() == ErrorCode::Locked {
        return Err(locked(repo));
    }
    Err(other("writing the index")(e))
}

/// `index.lock` taken by another git between our check and our use of the index: reported
/// like the check reports it.
fn locked(repo: &Repository) -> CommitError {
    let held = safety::index_lock(repo.path())
        .err()
        .unwrap_or(Blocked::IndexLocked {
            lock: repo.path().join("index.lock"),
            age: std::time::Duration::ZERO,
        });
    CommitError::Blocked(held)
}

/// The index a commit stages into: libgit2's, or the file itself (see [`index_file`]).
enum Index {
    Git2(git2::Index),
    Direct {
        file: IndexFile,
        /// Entries whose mtime (seconds) is at least this are racily clean; see [`Index::add`].
        racy_from: i64,
    },
}

impl Index {
    /// The object id and mode staged at `rpath`.
    fn get(&self, rpath: &str) -> Option<(Oid, u32)> {
        match self {
            Index::Git2(i) => i.get_path(Path::new(rpath), 0).map(|e| (e.id, e.mode)),
            Index::Direct { file, .. } => file.get(rpath),
        }
    }

    /// Stages `entry`. On the direct path, a file changed within the last seconds gets size
    /// 0 in its stat data (as git "smudges" racily clean entries), so that git compares its
    /// content instead of trusting a stat that a write in the same clock tick may not change.
    fn add(&mut self, entry: git2::IndexEntry) -> Result<(), git2::Error> {
        match self {
            Index::Git2(i) => i.add(&entry),
            Index::Direct { file, racy_from } => {
                let racy = i64::from(entry.mtime.seconds()) >= *racy_from;
                let path = String::from_utf8(entry.path)
                    .map_err(|_| git2::Error::from_str("a path to stage is not UTF-8"))?;
                let stat = index_file::Stat {
                    ctime: (entry.ctime.seconds() as u32, entry.ctime.nanoseconds()),
                    mtime: (entry.mtime.seconds() as u32, entry.mtime.nanoseconds()),
                    dev: entry.dev,
                    ino: entry.ino,
                    uid: entry.uid,
                    gid: entry.gid,
                    size: if racy { 0 } else { entry.file_size },
                };
                file.upsert(
                    &path,
                    NewEntry {
                        stat,
                        id: entry.id,
                        mode: entry.mode,
                    },
                );
                Ok(())
            }
        }
    }

    fn remove(&mut self, rpath: &str) -> Result<(), CommitError> {
        match self {
            Index::Git2(i) => i.remove_path(Path::new(rpath)).map_err(other(rpath)),
            Index::Direct { file, .. } => {
                file.remove(rpath);
                Ok(())
            }
        }
    }

    fn remove_dir(&mut self, rpath: &str) -> Result<(), CommitError> {
        match self {
            Index::Git2(i) => i.remove_dir(Path::new(rpath), 0).map_err(other(rpath)),
            Index::Direct { file, .. } => {
                file.remove_dir(rpath);
                Ok(())
            }
        }
    }

    /// Writes the index (the direct one: renames its lock over the index).
    fn write(self, repo: &Repository) -> Result<(), CommitError> {
        match self {
            Index::Git2(mut i) => write_index(repo, &mut i),
            Index::Direct { file, .. } => file.commit().map_err(|source| CommitError::Index {
                what: "writing",
                source,
            }),
        }
    }
}

/// Seconds since the epoch from which an entry counts as racily clean: two seconds back
/// covers coarse file-system clocks and file systems that keep whole (or even) seconds.
fn racy_from() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 - 2)
}

/// Moves the branch to the new commit, only from the commit HEAD had when the attempt
/// started: a branch the user moved meanwhile is never overwritten.
fn move_branch(repo: &Repository, head: &Head<'_>, made: &Made) -> Result<(), CommitError> {
    let summary = made.message.lines().next().unwrap_or("");
    let result = match &head.commit {
        Some(parent) => repo.reference_matching(
            &head.branch_ref,
            made.id,
            true,
            parent.id(),
            &format!("commit: {summary}"),
        ),
        None => repo.reference(
            &head.branch_ref,
            made.id,
            false,
            &format!("commit (initial): {summary}"),
        ),
    };
    // The branch moved under us (the user committed): the next attempt starts from their
    // commit; the object we wrote is unreferenced and harmless.
    result
        .map(|_| ())
        .map_err(|source| CommitError::BranchMoved {
            branch_ref: head.branch_ref.clone(),
            source,
        })
}

/// Whether a file's blob can be made straight from its bytes. libgit2's `add_path` looks up
/// filters for every file (probing `.gitattributes` at each folder level); when nothing can
/// filter (no attributes files anywhere, no CRLF conversion, modes and symlinks as on disk)
/// the result is the same bytes, so we skip that lookup: a burst stages about twice as fast.
struct PlainStaging {
    possible: bool,
    /// Folder (repo-relative, `""` for the root) -> it has a `.gitattributes`.
    dirs: std::collections::HashMap<String, bool>,
}

impl PlainStaging {
    fn new(repo: &Repository) -> PlainStaging {
        PlainStaging {
            possible: plain_possible(repo),
            dirs: Default::default(),
        }
    }

    fn allows(&mut self, workdir: &Path, rpath: &str) -> bool {
        if !self.possible {
            return false;
        }
        let mut dir = String::new();
        let mut parts: Vec<&str> = rpath.split('/').collect();
        parts.pop();
        for i in 0..=parts.len() {
            if i > 0 {
                dir = parts[..i].join("/");
            }
            let has = *self
                .dirs
                .entry(dir.clone())
                .or_insert_with(|| workdir.join(&dir).join(".gitattributes").exists());
            if has {
                return false;
            }
        }
        true
    }
}

fn plain_possible(repo: &Repository) -> bool {
    let Ok(cfg) = repo.config().and_then(|mut c| c.snapshot()) else {
        return false;
    };
    let set = |key: &str| cfg.get_string(key).ok();
    let falsy = |v: Option<String>| {
        v.is_none_or(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "false" | "no" | "off" | "0"
            )
        })
    };
    let truthy_or_unset = |v: Option<String>| {
        v.is_none_or(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"))
    };
    if !falsy(set("core.autocrlf"))
        || set("core.eol").is_some()
        || set("core.attributesFile").is_some()
        || !truthy_or_unset(set("core.filemode"))
        || !truthy_or_unset(set("core.symlinks"))
    {
        return false;
    }
    let mut files = vec![
        repo.path().join("info/attributes"),
        PathBuf::from("/etc/gitattributes"),
    ];
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME") {
        files.push(PathBuf::from(xdg).join("git/attributes"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".config/git/attributes"));
    }
    !files.iter().any(|f| f.exists())
}

/// The index entry of one file, its blob made from its bytes (see [`PlainStaging`]) or,
/// when `streamed` (a large file), from the file without holding it in memory.
fn plain_entry(
    repo: &Repository,
    workdir: &Path,
    rpath: &str,
    meta: &std::fs::Metadata,
    streamed: bool,
) -> Result<git2::IndexEntry, git2::Error> {
    use std::os::unix::fs::MetadataExt;
    let full = workdir.join(rpath);
    let os = |e: std::io::Error| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorCode::NotFound
        } else {
            ErrorCode::GenericError
        };
        git2::Error::new(code, git2::ErrorClass::Os, format!("{rpath}: {e}"))
    };
    let (id, mode) = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&full).map_err(os)?;
        (
            repo.blob(&target.into_os_string().into_encoded_bytes())?,
            0o120000,
        )
    } else {
        let id = if streamed {
            repo.blob_path(&full)?
        } else {
            repo.blob(&std::fs::read(&full).map_err(os)?)?
        };
        let mode = if meta.mode() & 0o100 != 0 {
            0o100755
        } else {
            0o100644
        };
        (id, mode)
    };
    // Truncations as git does them: the index stores 32-bit fields.
    Ok(git2::IndexEntry {
        ctime: git2::IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
        mtime: git2::IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        mode,
        uid: meta.uid(),
        gid: meta.gid(),
        file_size: meta.len() as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: rpath.as_bytes().to_vec(),
    })
}

/// Paths from which a commit writes one pack instead of loose objects.
const BULK_PATHS: usize = 256;

/// Moves the objects held in memory into one pack file on disk, before anything
/// (index, branch) refers to them.
fn write_pack(repo: &Repository, mempack: &Mempack<'_>) -> Result<(), CommitError> {
    use std::io::Write;
    let mut buf = git2::Buf::new();
    mempack
        .dump(repo, &mut buf)
        .map_err(other("packing the new objects"))?;
    // 12-byte header: "PACK", version, object count. Nothing new (a redelivered burst): no pack.
    if buf.len() < 12 || buf[8..12] == [0, 0, 0, 0] {
        return Ok(());
    }
    let odb = repo.odb().map_err(other("opening the object database"))?;
    let mut writer = odb.packwriter().map_err(other("writing the pack"))?;
    writer
        .write_all(&buf)
        .map_err(|source| CommitError::Pack { source })?;
    writer.commit().map_err(other("writing the pack"))?;
    mempack
        .reset()
        .map_err(other("clearing the in-memory pack"))?;
    Ok(())
}

struct Staged {
    path: String,
    old: Option<Oid>,
    new: Option<Oid>,
}

/// Turns staged paths into message lines, pairing renames the events announced.
fn describe(staged: Vec<Staged>, renames: &BTreeMap<String, String>) -> Vec<Change> {
    let deleted: BTreeMap<&str, Option<Oid>> = staged
        .iter()
        .filter(|s| s.new.is_none())
        .map(|s| (s.path.as_str(), s.old))
        .collect();
    let mut paired: BTreeSet<String> = BTreeSet::new();
    for s in &staged {
        if let (None, Some(_), Some(from)) = (s.old, s.new, renames.get(&s.path))
            && deleted.contains_key(from.as_str())
        {
            paired.insert(from.clone());
        }
    }
    let mut out = Vec::with_capacity(staged.len());
    for s in staged {
        match (s.old, s.new) {
            (None, Some(_)) => match renames.get(&s.path) {
                Some(from) if paired.contains(from) => out.push(Change::Renamed {
                    from: from.clone(),
                    to: s.path,
                }),
                _ => out.push(Change::Added(s.path)),
            },
            (Some(_), Some(_)) => out.push(Change::Modified(s.path)),
            _ if paired.contains(&s.path) => {}
            _ => out.push(Change::Deleted(s.path)),
        }
    }
    out
}

fn file_mode(mode: u32) -> Option<FileMode> {
    match mode {
        0o100755 => Some(FileMode::BlobExecutable),
        0o120000 => Some(FileMode::Link),
        // Submodules are the user's business.
        0o160000 => None,
        _ => Some(FileMode::Blob),
    }
}

/// Rejects paths that must never reach the index (`..`, `.git`, absolute).
fn valid_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.starts_with('/') || path.contains('\0') {
        return Err("not a relative path");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err("has an empty, . or .. component");
        }
        if part.eq_ignore_ascii_case(".git") {
            return Err("is inside .git");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_or_inside_git_are_rejected() {
        assert!(valid_path("a/b.md").is_ok());
        assert!(valid_path("../x").is_err());
        assert!(valid_path("/etc/passwd").is_err());
        assert!(valid_path("a//b").is_err());
        assert!(valid_path(".git/config").is_err());
        assert!(valid_path("x/.GIT/hooks").is_err());
    }

    #[test]
    fn renames_are_paired_only_when_both_sides_are_staged() {
        let id = Oid::zero();
        let staged = vec![
            Staged {
                path: "new.md".into(),
                old: None,
                new: Some(id),
            },
            Staged {
                path: "old.md".into(),
                old: Some(id),
                new: None,
            },
            Staged {
                path: "x.md".into(),
                old: None,
                new: Some(id),
            },
        ];
        let mut renames = BTreeMap::new();
        renames.insert("new.md".to_string(), "old.md".to_string());
        renames.insert("x.md".to_string(), "gone.md".to_string());
        assert_eq!(
            describe(staged, &renames),
            vec![
                Change::Renamed {
                    from: "old.md".into(),
                    to: "new.md".into()
                },
                Change::Added("x.md".into()),
            ]
        );
    }
}
