//! Staging exactly the named paths and committing them on the current branch (git2), cost following the change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, Mempack, Oid, Repository, Signature};

use super::config::{GitConfig, GitError};
use super::message::{self, Change, MessageVars};
use super::safety::{self, Blocked};
use super::sign::{self, Signing};

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
    },
    /// The named paths already match HEAD: no empty commit.
    Unchanged,
}

/// Why a commit attempt did not happen. Both are retried later: the paths stay pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The repository is busy (rebase, merge, lock, detached HEAD).
    Blocked(Blocked),
    /// Anything else, with a message naming the file or setting.
    Other(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Blocked(b) => b.fmt(f),
            CommitError::Other(s) => f.write_str(s),
        }
    }
}

fn other(context: &str) -> impl FnOnce(git2::Error) -> CommitError + '_ {
    move |e| {
        if e.code() == ErrorCode::Locked {
            CommitError::Other(format!(
                "{context}: a lock file is held by another git process ({})",
                e.message()
            ))
        } else {
            CommitError::Other(format!("{context}: {}", e.message()))
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
        safety::check(&self.repo).map_err(CommitError::Blocked)?;
        if pending.paths.len() < BULK_PATHS {
            return self.commit_in(&self.repo, None, pending);
        }
        // A burst: objects go to memory and then to disk as one pack, instead of one
        // loose file each (10,000 file creations are slow on ext4, and leave a mess).
        // A second handle, so that the memory backend never outlives this commit.
        let bulk = Repository::open(self.repo.path()).map_err(other("opening the repository"))?;
        let odb = bulk.odb().map_err(other("opening the object database"))?;
        let mempack = odb
            .add_new_mempack_backend(1000)
            .map_err(other("preparing the in-memory pack"))?;
        let result = self.commit_in(&bulk, Some(&mempack), pending);
        let _ = mempack.reset();
        result
    }

    /// Writes the tree and the (signed, when asked) commit object; the branch is not moved here.
    fn make_commit(
        &self,
        repo: &Repository,
        base_tree: &git2::Tree<'_>,
        mut updates: TreeUpdateBuilder,
        changed: Vec<Staged>,
        head_commit: Option<&git2::Commit<'_>>,
        pending: &Pending,
    ) -> Result<Option<(Oid, String, usize)>, CommitError> {
        let tree_id = updates
            .create_updated(repo, base_tree)
            .map_err(other("writing the tree"))?;
        if tree_id == base_tree.id() {
            return Ok(None);
        }
        let tree = repo
            .find_tree(tree_id)
            .map_err(other("reading the new tree"))?;

        let changes = describe(changed, &pending.renames);
        let msg = message::render(
            &self.cfg.message,
            &MessageVars {
                changes: &changes,
                max_files: self.cfg.max_files_in_message,
                date: chrono::Local::now()
                    .format("%Y-%m-%d %H:%M:%S %z")
                    .to_string(),
                host: &self.host,
                vault: &self.vault_name,
            },
        );
        let sig = Signature::now(&self.name, &self.email)
            .map_err(other("making the commit signature"))?;
        let parents: Vec<&git2::Commit<'_>> = head_commit.into_iter().collect();
        let ident = format!("{} <{}>", self.name, self.email);
        let signing = sign::signing(repo, &self.cfg, &ident).map_err(CommitError::Other)?;
        let id = match &signing {
            Signing::Unsigned => repo
                .commit(None, &sig, &sig, &msg, &tree, &parents)
                .map_err(other("writing the commit"))?,
            signing => {
                let buf = repo
                    .commit_create_buffer(&sig, &sig, &msg, &tree, &parents)
                    .map_err(other("preparing the commit"))?;
                let content = buf
                    .as_str()
                    .ok_or_else(|| CommitError::Other("commit buffer is not UTF-8".into()))?;
                let signature = sign::sign(signing, content).map_err(CommitError::Other)?;
                repo.commit_signed(content, &signature, None)
                    .map_err(other("writing the signed commit"))?
            }
        };
        Ok(Some((id, msg, changes.len())))
    }

    fn commit_in(
        &self,
        repo: &Repository,
        mempack: Option<&Mempack<'_>>,
        pending: &Pending,
    ) -> Result<Outcome, CommitError> {
        let branch_ref = repo
            .find_reference("HEAD")
            .map_err(other("reading HEAD"))?
            .symbolic_target()
            .map(str::to_string)
            .ok_or(CommitError::Blocked(Blocked::DetachedHead))?;
        let head_commit = match repo.head() {
            Ok(r) => Some(
                r.peel_to_commit()
                    .map_err(other("reading the HEAD commit"))?,
            ),
            Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => None,
            Err(e) => return Err(other("reading HEAD")(e)),
        };
        let base_tree = match &head_commit {
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

        let mut index = repo.index().map_err(other("opening the index"))?;
        // Unforced: libgit2 re-reads when the file's mtime, size or inode changed, and git
        // always replaces the index by renaming index.lock (a new inode), so a rewrite by
        // the user's git is never missed; an unchanged index is not parsed again (100k entries: ~100 ms).
        index.read(false).map_err(other("reading the index"))?;
        if index.has_conflicts() {
            return Err(CommitError::Blocked(Blocked::Conflicts));
        }

        let mut updates = TreeUpdateBuilder::new();
        let mut changed: Vec<Staged> = Vec::new();
        let mut index_dirty = false;
        let paths = self.expand_folders(repo, &pending.paths);
        let mut plain = PlainStaging::new(repo);
        // Folders removed whole: later paths under them are already gone from tree and index.
        let mut removed_dirs: Vec<String> = Vec::new();
        for vpath in &paths {
            if removed_dirs.iter().any(|d| {
                vpath
                    .strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            }) {
                continue;
            }
            let rpath = format!("{}{}", self.prefix, vpath);
            let rel = Path::new(&rpath);
            let head_entry = base_tree.get_path(rel).ok().map(|e| (e.id(), e.filemode()));
            let before = index.get_path(rel, 0).map(|e| (e.id, e.mode));
            let present = match std::fs::symlink_metadata(self.workdir.join(rel)) {
                Ok(m) if m.is_file() || m.file_type().is_symlink() => Some(m),
                Ok(m) if m.is_dir() => {
                    // A folder event: its files come with their own events; only a folder
                    // that replaced a tracked file needs the file removed.
                    if matches!(head_entry, Some((_, mode)) if mode != i32::from(FileMode::Tree)) {
                        None
                    } else {
                        continue;
                    }
                }
                Ok(_) => {
                    tracing::warn!(path = %vpath, "git: {vpath} is not a regular file or symlink; not staged");
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    tracing::warn!(path = %vpath, "git: cannot read {vpath}: {e}; not staged");
                    continue;
                }
            };
            let mut staged = false;
            if let Some(meta) = present {
                if before.is_none()
                    && head_entry.is_none()
                    && repo.is_path_ignored(rel).unwrap_or(false)
                {
                    continue;
                }
                if meta.is_file() && meta.len() > self.cfg.large_file_warn {
                    if self.cfg.skip_large {
                        tracing::warn!(path = %vpath, size = meta.len(), "git: {vpath} is {} bytes, above git.large_file_warn = {}; skipped (git.skip_large = true)", meta.len(), self.cfg.large_file_warn);
                        continue;
                    }
                    tracing::warn!(path = %vpath, size = meta.len(), "git: {vpath} is {} bytes, above git.large_file_warn = {}; committing it anyway", meta.len(), self.cfg.large_file_warn);
                }
                let fast =
                    meta.len() <= self.cfg.large_file_warn && plain.allows(&self.workdir, &rpath);
                let added = if fast {
                    add_plain(repo, &mut index, &self.workdir, &rpath, &meta)
                } else {
                    index.add_path(rel)
                };
                match added {
                    Ok(()) => staged = true,
                    Err(e) if e.code() == ErrorCode::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %vpath, "git: cannot stage {vpath}: {}; left out of this commit", e.message());
                        continue;
                    }
                }
            }
            if staged {
                let Some(entry) = index.get_path(rel, 0) else {
                    continue;
                };
                if before != Some((entry.id, entry.mode)) {
                    index_dirty = true;
                }
                let Some(mode) = file_mode(entry.mode) else {
                    continue;
                };
                if head_entry == Some((entry.id, i32::from(mode))) {
                    continue;
                }
                updates.upsert(rpath.as_str(), entry.id, mode);
                changed.push(Staged {
                    path: vpath.clone(),
                    old: head_entry.map(|e| e.0),
                    new: Some(entry.id),
                });
            } else {
                if before.is_some() {
                    index.remove_path(rel).map_err(other(&rpath))?;
                    index_dirty = true;
                }
                if let Some((id, mode)) = head_entry {
                    if mode == i32::from(FileMode::Tree) {
                        index.remove_dir(rel, 0).map_err(other(&rpath))?;
                        index_dirty = true;
                        removed_dirs.push(vpath.clone());
                    }
                    updates.remove(rpath.as_str());
                    changed.push(Staged {
                        path: vpath.clone(),
                        old: Some(id),
                        new: None,
                    });
                }
            }
        }

        let commit = if changed.is_empty() {
            None
        } else {
            self.make_commit(
                repo,
                &base_tree,
                updates,
                changed,
                head_commit.as_ref(),
                pending,
            )?
        };
        if let Some(mempack) = mempack
            && (index_dirty || commit.is_some())
        {
            write_pack(repo, mempack)?;
        }
        if index_dirty {
            // Before the branch moves: should that fail, the index already holds what the
            // next attempt commits, and `git status` never shows our commit as a staged revert.
            if let Err(e) = index.write() {
                if e.code() == ErrorCode::Locked {
                    // Taken between our check and the write: report it like the check does.
                    let held =
                        safety::index_lock(repo.path())
                            .err()
                            .unwrap_or(Blocked::IndexLocked {
                                lock: repo.path().join("index.lock"),
                                age: std::time::Duration::ZERO,
                            });
                    return Err(CommitError::Blocked(held));
                }
                return Err(other("writing the index")(e));
            }
        }
        let Some((id, msg, count)) = commit else {
            return Ok(Outcome::Unchanged);
        };
        let summary = msg.lines().next().unwrap_or("");
        let result = match &head_commit {
            Some(parent) => repo.reference_matching(
                &branch_ref,
                id,
                true,
                parent.id(),
                &format!("commit: {summary}"),
            ),
            None => repo.reference(
                &branch_ref,
                id,
                false,
                &format!("commit (initial): {summary}"),
            ),
        };
        if let Err(e) = result {
            // The branch moved under us (the user committed): the next attempt starts
            // from their commit; the object we wrote is unreferenced and harmless.
            return Err(CommitError::Other(format!(
                "updating {branch_ref}: {} (the branch changed meanwhile; retrying on top of it)",
                e.message()
            )));
        }
        let branch = branch_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&branch_ref)
            .to_string();
        Ok(Outcome::Committed {
            id,
            changes: count,
            branch,
        })
    }
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

/// Stages one file from its bytes (see [`PlainStaging`]), with the stat data git keeps.
fn add_plain(
    repo: &Repository,
    index: &mut git2::Index,
    workdir: &Path,
    rpath: &str,
    meta: &std::fs::Metadata,
) -> Result<(), git2::Error> {
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
    let (data, mode) = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&full).map_err(os)?;
        (target.into_os_string().into_encoded_bytes(), 0o120000)
    } else {
        let data = std::fs::read(&full).map_err(os)?;
        let mode = if meta.mode() & 0o100 != 0 {
            0o100755
        } else {
            0o100644
        };
        (data, mode)
    };
    let id = repo.blob(&data)?;
    // Truncations as git does them: the index stores 32-bit fields.
    let entry = git2::IndexEntry {
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
    };
    index.add(&entry)
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
        .map_err(|e| CommitError::Other(format!("writing the pack: {e}")))?;
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
