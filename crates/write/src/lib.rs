//! vaultkeeper-write: safe writes to the vault, shared by the CLI (`vaultkeeper mv`) and the
//! MCP write tools.
//!
//! Every write goes the same way ([`Writer`]):
//! 1. the path is checked ([`safe`]): relative, no `..`, no symlink on the way, not `.git/`;
//! 2. the content the caller expects (the hash it read) is compared with the disk: a stale
//!    hash is refused with the current one, so a concurrent human edit is never overwritten;
//! 3. the new content is bounded in size and built by a pure edit ([`edit`], [`frontmatter`]);
//! 4. git is checked (writes are refused while it cannot commit), and a human's pending edit
//!    of the same file is committed first on its own ([`commit`]);
//! 5. the file is written atomically ([`atomic`]); a move rewrites the links that would break
//!    ([`relink`], from the cache's link rows);
//! 6. the write becomes its own commit at once, naming the tool, the client and the paths.
//!
//! Not a consumer: it depends on the cache (read-only, for links) and on git's commit path,
//! and nothing of the daemon depends on it.

pub mod atomic;
pub mod commit;
pub mod edit;
mod error;
pub mod frontmatter;
pub mod relink;
pub mod safe;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use vaultkeeper_cache::CacheReader;
use vaultkeeper_git::{Committer, GitConfig, Pending};

pub use error::WriteError;
pub use relink::LinkEdit;

/// Default bound on a written file's size (1 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

/// Who asks for a write: named in its commit.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The front end: `mcp` or `cli`.
    pub via: String,
    /// The tool or command (`append_to_note`, `mv`).
    pub tool: String,
    /// The MCP client (`name version` from `initialize`), when there is one.
    pub client: Option<String>,
}

/// What a write did (the JSON the tools and `mv --json` print).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Written {
    /// The main path after the write (the new path of a move, the trash path of a delete).
    pub path: String,
    /// The file's hash after the write (for the next write); `null` for a folder or a delete.
    pub hash: Option<String>,
    /// The commit made; `null` when git is off or nothing changed.
    pub commit: Option<String>,
    /// Files moved, old path to new.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<(String, String)>,
    /// Links rewritten (a move).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkEdit>,
    /// Links no form could keep pointing at the moved file (`note:line: target`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links_lost: Vec<String>,
    /// Nothing was written: the plan of a dry run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Git as writes see it.
#[derive(Debug, Clone)]
enum GitSide {
    On {
        cfg: Box<GitConfig>,
        vault_name: String,
        host: String,
    },
    Off(String),
}

/// Safe writes to one vault.
#[derive(Debug, Clone)]
pub struct Writer {
    root: PathBuf,
    cache_db: PathBuf,
    git: GitSide,
    /// Refuse writes when git is off (the MCP tools: every assistant write must be revertible).
    require_git: bool,
    max_bytes: u64,
}

impl Writer {
    /// A writer for the vault at `root` with its cache at `cache_db`, committing as `[git]` says.
    pub fn new(
        root: &Path,
        cache_db: &Path,
        git: &GitConfig,
        vault_name: &str,
        host: &str,
    ) -> Result<Writer, WriteError> {
        let root = root
            .canonicalize()
            .map_err(WriteError::io(&root.display().to_string()))?;
        let git = match vaultkeeper_git::off_reason(&root, git)? {
            Some(why) => GitSide::Off(why),
            None => GitSide::On {
                cfg: Box::new(git.clone()),
                vault_name: vault_name.to_string(),
                host: host.to_string(),
            },
        };
        Ok(Writer {
            root,
            cache_db: cache_db.to_path_buf(),
            git,
            require_git: false,
            max_bytes: DEFAULT_MAX_BYTES,
        })
    }

    /// Refuse every write while git is off for the vault.
    pub fn require_git(mut self, yes: bool) -> Writer {
        self.require_git = yes;
        self
    }

    /// The largest file a write may leave.
    pub fn max_bytes(mut self, max: u64) -> Writer {
        self.max_bytes = max;
        self
    }

    /// The vault root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the committer and checks git can commit now; `None` when git is off (and allowed to be).
    fn git(&self) -> Result<Option<Committer>, WriteError> {
        match &self.git {
            GitSide::Off(why) if self.require_git => Err(WriteError::NoGit(why.clone())),
            GitSide::Off(_) => Ok(None),
            GitSide::On {
                cfg,
                vault_name,
                host,
            } => {
                let c = Committer::open(&self.root, cfg, vault_name, host)?;
                commit::wait_ready(&c)?;
                Ok(Some(c))
            }
        }
    }

    fn bounded(&self, rel: &str, text: &str) -> Result<(), WriteError> {
        let size = text.len() as u64;
        if size > self.max_bytes {
            return Err(WriteError::TooLarge {
                path: rel.to_string(),
                size,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Reads the text of an existing file and checks it against `expected` (its hash).
    fn read_expected(
        &self,
        abs: &Path,
        rel: &str,
        expected: Option<&str>,
    ) -> Result<(String, String), WriteError> {
        let bytes = match std::fs::read(abs) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WriteError::NotFound(rel.to_string()));
            }
            Err(e) => return Err(WriteError::io(rel)(e)),
        };
        let current = atomic::hash(&bytes);
        if let Some(want) = expected
            && !want.trim().eq_ignore_ascii_case(&current)
        {
            return Err(WriteError::Stale {
                path: rel.to_string(),
                expected: want.to_string(),
                current,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| WriteError::NotText(rel.to_string()))?;
        Ok((text, current))
    }

    /// Creates note `rel` with `content`; refused when it exists.
    pub fn create(&self, rel: &str, content: &str, actor: &Actor) -> Result<Written, WriteError> {
        let rel = safe::check(rel)?;
        let abs = safe::resolve(&self.root, &rel)?;
        self.bounded(&rel, content)?;
        if std::fs::symlink_metadata(&abs).is_ok() {
            return Err(WriteError::Exists(rel));
        }
        let mut git = self.git()?;
        atomic::write(&abs, &rel, content.as_bytes(), true)?;
        let commit = self.commit(
            &mut git,
            std::slice::from_ref(&rel),
            &BTreeMap::new(),
            actor,
            &rel,
            &[format!("A {rel}")],
        )?;
        Ok(Written {
            hash: Some(atomic::hash(content.as_bytes())),
            path: rel,
            commit,
            ..Written::default()
        })
    }

    /// Edits note `rel`, whose hash must be `expected`, with `f` (old text to new text).
    pub fn edit(
        &self,
        rel: &str,
        expected: &str,
        actor: &Actor,
        f: impl FnOnce(&str) -> Result<String, WriteError>,
    ) -> Result<Written, WriteError> {
        let rel = safe::check(rel)?;
        let abs = safe::resolve(&self.root, &rel)?;
        let (text, current) = self.read_expected(&abs, &rel, Some(expected))?;
        let new = f(&text)?;
        self.bounded(&rel, &new)?;
        let mut git = self.git()?;
        if let Some(c) = git.as_mut() {
            commit::commit_before(c, &BTreeSet::from([rel.clone()]))?;
        }
        // Once more right before the rename: the window for a concurrent edit stays tiny.
        self.read_expected(&abs, &rel, Some(&current))?;
        atomic::write(&abs, &rel, new.as_bytes(), false)?;
        let commit = self.commit(
            &mut git,
            std::slice::from_ref(&rel),
            &BTreeMap::new(),
            actor,
            &rel,
            &[format!("M {rel}")],
        )?;
        Ok(Written {
            hash: Some(atomic::hash(new.as_bytes())),
            path: rel,
            commit,
            ..Written::default()
        })
    }

    /// Moves note `rel` (hash `expected`) to the vault's `.trash/`, as Obsidian does.
    pub fn delete(&self, rel: &str, expected: &str, actor: &Actor) -> Result<Written, WriteError> {
        let rel = safe::check(rel)?;
        let abs = safe::resolve(&self.root, &rel)?;
        let (_, current) = self.read_expected(&abs, &rel, Some(expected))?;
        let trash = self.root.join(".trash");
        if std::fs::symlink_metadata(&trash).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(WriteError::Symlink(rel, ".trash".into()));
        }
        let mut dest_rel = format!(".trash/{rel}");
        let mut n = 1;
        while std::fs::symlink_metadata(self.root.join(&dest_rel)).is_ok() {
            let (stem, ext) = match rel.rsplit_once('.') {
                Some((s, e)) if !s.is_empty() && !e.contains('/') => (s, format!(".{e}")),
                _ => (rel.as_str(), String::new()),
            };
            dest_rel = format!(".trash/{stem} {n}{ext}");
            n += 1;
        }
        let dest = self.root.join(&dest_rel);
        let mut git = self.git()?;
        if let Some(c) = git.as_mut() {
            commit::commit_before(c, &BTreeSet::from([rel.clone()]))?;
        }
        self.read_expected(&abs, &rel, Some(&current))?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(WriteError::io(&dest_rel))?;
        }
        std::fs::rename(&abs, &dest).map_err(WriteError::io(&rel))?;
        if let Some(dir) = abs.parent() {
            atomic::sync_dir(dir, &rel)?;
        }
        let commit = self.commit(
            &mut git,
            std::slice::from_ref(&rel),
            &BTreeMap::new(),
            actor,
            &rel,
            &[format!("D {rel}")],
        )?;
        Ok(Written {
            path: dest_rel,
            commit,
            ..Written::default()
        })
    }

    /// Moves a note or a folder from `from` to `to`, rewriting every link the move would
    /// break (see [`relink`]); with `dry_run`, only says what it would do. `expected`, when
    /// given, is the moved note's hash.
    pub fn mv(
        &self,
        from: &str,
        to: &str,
        expected: Option<&str>,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<Written, WriteError> {
        let from = safe::check(from)?;
        let to = safe::check(to)?;
        let abs_from = safe::resolve(&self.root, &from)?;
        let abs_to = safe::resolve(&self.root, &to)?;
        let meta =
            std::fs::symlink_metadata(&abs_from).map_err(|_| WriteError::NotFound(from.clone()))?;
        if std::fs::symlink_metadata(&abs_to).is_ok() {
            return Err(WriteError::Exists(to));
        }
        if meta.is_dir() && (to == from || to.starts_with(&format!("{from}/"))) {
            return Err(WriteError::Edit(format!(
                "cannot move folder {from} into itself ({to})"
            )));
        }
        if let Some(want) = expected
            && meta.is_file()
        {
            self.read_expected(&abs_from, &from, Some(want))?;
        }
        let cache = CacheReader::open(&self.cache_db)?;
        let files = cache.files()?;
        let moves: BTreeMap<String, String> = if meta.is_dir() {
            let prefix = format!("{from}/");
            files
                .iter()
                .filter_map(|f| {
                    f.path
                        .strip_prefix(&prefix)
                        .map(|rest| (f.path.clone(), format!("{to}/{rest}")))
                })
                .collect()
        } else {
            if !files.iter().any(|f| f.path == from) {
                return Err(WriteError::CacheBehind(from));
            }
            BTreeMap::from([(from.clone(), to.clone())])
        };
        let links = cache.all_links()?;
        drop(cache);
        let (edits, lost) = relink::plan(&files, &links, &moves);
        // Line numbers come from the cache: every note to rewrite must be what it parsed.
        let hashes: BTreeMap<&str, Option<&str>> = files
            .iter()
            .map(|f| (f.path.as_str(), f.hash.as_deref()))
            .collect();
        let mut by_file: BTreeMap<&str, Vec<&LinkEdit>> = BTreeMap::new();
        for e in &edits {
            by_file.entry(e.file.as_str()).or_default().push(e);
        }
        let mut texts = BTreeMap::new();
        for file in by_file.keys() {
            let abs = safe::resolve(&self.root, file)?;
            let cached = hashes.get(file).copied().flatten().unwrap_or("");
            let (text, _) = self
                .read_expected(&abs, file, Some(cached))
                .map_err(|e| match e {
                    WriteError::Stale { path, .. } => WriteError::CacheBehind(path),
                    other => other,
                })?;
            texts.insert(file.to_string(), text);
        }
        let old_targets: BTreeMap<(&str, u32, &str), &str> = links
            .iter()
            .map(|l| ((l.path.as_str(), l.line, l.raw.as_str()), l.target.as_str()))
            .collect();
        let mut new_texts = BTreeMap::new();
        let mut written_edits = Vec::new();
        let mut missed_all = Vec::new();
        for (file, file_edits) in &by_file {
            let with_targets: Vec<(&LinkEdit, &str)> = file_edits
                .iter()
                .map(|e| {
                    let t = old_targets
                        .get(&(e.file.as_str(), e.line, e.old.as_str()))
                        .copied()
                        .unwrap_or(e.old.as_str());
                    (*e, t)
                })
                .collect();
            let (new, missed) = relink::apply(&texts[*file], &with_targets);
            self.bounded(file, &new)?;
            written_edits.extend(
                file_edits
                    .iter()
                    .filter(|e| !missed.contains(**e))
                    .map(|e| (*e).clone()),
            );
            missed_all.extend(
                missed
                    .into_iter()
                    .map(|e| format!("{}:{}: {}", e.file, e.line, e.old)),
            );
            let after = moves
                .get(*file)
                .cloned()
                .unwrap_or_else(|| file.to_string());
            new_texts.insert(after, new);
        }
        let mut written = Written {
            path: to.clone(),
            hash: None,
            commit: None,
            moved: moves.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            links: written_edits,
            links_lost: lost.into_iter().chain(missed_all).collect(),
            dry_run,
        };
        if written.moved.is_empty() {
            written.moved.push((from.clone(), to.clone()));
        }
        if dry_run {
            return Ok(written);
        }
        let mut git = self.git()?;
        let mut touched: BTreeSet<String> = moves.keys().cloned().collect();
        touched.insert(from.clone());
        touched.extend(by_file.keys().map(|f| f.to_string()));
        if let Some(c) = git.as_mut() {
            commit::commit_before(c, &touched)?;
        }
        if let Some(dir) = abs_to.parent() {
            std::fs::create_dir_all(dir).map_err(WriteError::io(&to))?;
        }
        std::fs::rename(&abs_from, &abs_to).map_err(WriteError::io(&from))?;
        for dir in [abs_from.parent(), abs_to.parent()].into_iter().flatten() {
            atomic::sync_dir(dir, &to)?;
        }
        for (file, text) in &new_texts {
            let abs = safe::resolve(&self.root, file)?;
            atomic::write(&abs, file, text.as_bytes(), false)?;
        }
        if meta.is_file() {
            written.hash = std::fs::read(&abs_to).ok().map(|b| atomic::hash(&b));
        }
        let mut paths: Vec<String> = touched.into_iter().collect();
        paths.extend(moves.values().cloned());
        paths.push(to.clone());
        paths.extend(new_texts.keys().cloned());
        let renames: BTreeMap<String, String> =
            moves.iter().map(|(a, b)| (b.clone(), a.clone())).collect();
        let summary = format!("{from} -> {to}");
        let mut lines: Vec<String> = moves.iter().map(|(a, b)| format!("R {a} -> {b}")).collect();
        if moves.is_empty() {
            lines.push(format!("R {from} -> {to}"));
        }
        lines.extend(
            new_texts
                .keys()
                .filter(|f| !renames.contains_key(*f))
                .map(|f| format!("M {f}")),
        );
        written.commit = self.commit(&mut git, &paths, &renames, actor, &summary, &lines)?;
        if !written.links.is_empty() {
            tracing::info!(
                from = %from, to = %to,
                "moved {from} to {to}; {} link(s) rewritten in {} note(s)",
                written.links.len(),
                new_texts.len()
            );
        }
        Ok(written)
    }

    /// Commits `paths` when git is on, with a message naming the actor, the change and the paths.
    fn commit(
        &self,
        git: &mut Option<Committer>,
        paths: &[String],
        renames: &BTreeMap<String, String>,
        actor: &Actor,
        summary: &str,
        lines: &[String],
    ) -> Result<Option<String>, WriteError> {
        let Some(c) = git.as_mut() else {
            return Ok(None);
        };
        let pending = Pending {
            paths: paths.iter().cloned().collect(),
            renames: renames.clone(),
        };
        commit::commit_write(c, &pending, &message(actor, summary, lines))
    }
}

/// A write's commit message: the first line names the front end, the tool and the change; the
/// body the client and every path (`A`/`M`/`D`/`R` lines).
fn message(actor: &Actor, summary: &str, lines: &[String]) -> String {
    let mut m = format!(
        "{} {}: {summary}\n\nTool: {}\n",
        actor.via, actor.tool, actor.tool
    );
    if let Some(client) = &actor.client {
        m.push_str(&format!("Client: {client}\n"));
    }
    m.push_str("Paths:\n");
    for l in lines {
        m.push_str(l);
        m.push('\n');
    }
    m
}
