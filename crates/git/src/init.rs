//! `vaultkeeper init --git`: a repository for the vault with a sensible `.gitignore`, never overwriting one.

use std::io::Write;
use std::path::Path;

use git2::Repository;

use super::config::GitError;

/// Lines every vault's `.gitignore` should have: Obsidian's per-device state, the trash,
/// editor temp and lock files.
pub const GITIGNORE_LINES: &[&str] = &[
    ".obsidian/workspace*.json",
    ".trash/",
    ".DS_Store",
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "4913",
    ".~lock.*#",
];

/// What [`init_repo`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InitOutcome {
    /// A new repository was created (false: the vault already was one).
    pub created: bool,
    /// Lines appended to `.gitignore` (all of them for a new file).
    pub gitignore_added: Vec<String>,
}

/// Creates a repository in `vault` (unless it already is in one) and makes sure its
/// `.gitignore` holds the standard lines and `state_dir_in_vault` (vault-relative), appending
/// only what is missing.
pub fn init_repo(vault: &Path, state_dir_in_vault: Option<&str>) -> Result<InitOutcome, GitError> {
    // Inside an existing work tree (the vault is a folder of a larger repository) no
    // nested repository is made; the `.gitignore` in the vault still gets the lines.
    let created = match Repository::discover(vault) {
        Ok(repo) if repo.workdir().is_some() => false,
        _ => {
            Repository::init(vault).map_err(GitError::git(format!(
                "creating a repository in {}",
                vault.display()
            )))?;
            true
        }
    };
    let mut wanted: Vec<String> = Vec::new();
    if let Some(state) = state_dir_in_vault {
        let state = state.trim_matches('/');
        if !state.is_empty() {
            wanted.push(format!("/{state}/"));
        }
    }
    wanted.extend(GITIGNORE_LINES.iter().map(|s| s.to_string()));

    let path = vault.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(GitError::Io { path, source }),
    };
    let have: std::collections::HashSet<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<String> = wanted
        .into_iter()
        .filter(|l| !have.contains(l.as_str()))
        .collect();
    if !missing.is_empty() {
        let mut text = String::new();
        if !existing.is_empty() && !existing.ends_with('\n') {
            text.push('\n');
        }
        if !existing.is_empty() {
            text.push('\n');
        }
        text.push_str("# added by vaultkeeper\n");
        for l in &missing {
            text.push_str(l);
            text.push('\n');
        }
        let io = |source| GitError::Io {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    Ok(InitOutcome {
        created,
        gitignore_added: missing,
    })
}
