//! The one way to find a vault and its state folder (journal, cache, lock).

use std::path::{Path, PathBuf};

use crate::error::PathsError;

type Result<T> = std::result::Result<T, PathsError>;

/// Name of the per-vault config file, looked up at the vault's root.
pub const VAULT_CONFIG_NAME: &str = ".vaultkeeper.toml";

/// A vault and where its state lives.
#[derive(Debug, Clone)]
pub struct VaultPaths {
    /// The vault's root, canonical.
    pub root: PathBuf,
    /// The vault's name in events.
    pub name: String,
    /// The state folder: journal, cache, lock.
    pub state_dir: PathBuf,
}

impl VaultPaths {
    /// Paths for `root`, with an explicit state folder or the default one.
    pub fn new(root: &Path, name: Option<&str>, state_dir: Option<&Path>) -> Result<VaultPaths> {
        let root = root
            .canonicalize()
            .map_err(|source| PathsError::Inaccessible {
                path: root.to_path_buf(),
                source,
            })?;
        if !root.is_dir() {
            return Err(PathsError::NotAFolder { path: root });
        }
        let name = name
            .map(str::to_string)
            .or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "vault".to_string());
        let state_dir = match state_dir {
            Some(dir) if dir.is_absolute() => dir.to_path_buf(),
            Some(dir) => root.join(dir),
            None => default_state_dir(&root)?,
        };
        Ok(VaultPaths {
            root,
            name,
            state_dir,
        })
    }

    /// The journal database.
    pub fn journal(&self) -> PathBuf {
        self.state_dir.join("journal.db")
    }

    /// The shadow cache database.
    pub fn cache(&self) -> PathBuf {
        self.state_dir.join("cache.db")
    }

    /// The daemon's lock file (holds the pid).
    pub fn lock(&self) -> PathBuf {
        self.state_dir.join("daemon.lock")
    }

    /// The daemon's API socket: `$XDG_RUNTIME_DIR/vaultkeeper/<state key>.sock`, else
    /// `api.sock` in the state folder (no runtime folder: a root shell, a container).
    pub fn socket(&self) -> PathBuf {
        match dirs::runtime_dir() {
            Some(dir) => dir
                .join("vaultkeeper")
                .join(format!("{}.sock", state_key(&self.root))),
            None => self.state_dir.join("api.sock"),
        }
    }

    /// The state folder relative to the vault, when it lives inside it.
    pub fn state_dir_in_vault(&self) -> Option<String> {
        let dir = self
            .state_dir
            .canonicalize()
            .unwrap_or(self.state_dir.clone());
        dir.strip_prefix(&self.root)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .filter(|p| !p.is_empty())
    }

    /// Creates the state folder.
    pub fn ensure_state_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.state_dir).map_err(|source| PathsError::CreateStateDir {
            path: self.state_dir.clone(),
            source,
        })
    }
}

/// `$XDG_STATE_HOME/vaultkeeper/vaults/<name>-<hash of the canonical path>`.
pub fn default_state_dir(root: &Path) -> Result<PathBuf> {
    let base = dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .ok_or(PathsError::NoStateHome)?;
    Ok(base
        .join("vaultkeeper")
        .join("vaults")
        .join(state_key(root)))
}

/// A folder name that is stable for a vault path and readable by a person.
pub fn state_key(root: &Path) -> String {
    let hash = blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex();
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{name}-{}", &hash[..12])
}

/// Finds the vault the way git finds its repository: the nearest folder from `start`
/// upwards that has a vaultkeeper state folder, a `.vaultkeeper.toml` or an `.obsidian` folder.
pub fn discover(start: &Path) -> Result<PathBuf> {
    let start = start.canonicalize().map_err(|source| PathsError::Resolve {
        path: start.to_path_buf(),
        source,
    })?;
    for dir in start.ancestors() {
        let known = default_state_dir(dir).map(|s| s.is_dir()).unwrap_or(false);
        if known || dir.join(VAULT_CONFIG_NAME).is_file() || dir.join(".obsidian").is_dir() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(PathsError::NoVault { start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_key_is_stable_and_distinct() {
        let a = state_key(Path::new("/home/u/notes"));
        assert_eq!(a, state_key(Path::new("/home/u/notes")));
        assert_ne!(a, state_key(Path::new("/home/v/notes")));
        assert!(a.starts_with("notes-"));
    }

    #[test]
    fn discovers_from_a_subfolder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".obsidian")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        let found = discover(&dir.path().join("a/b")).expect("found");
        assert_eq!(found, dir.path().canonicalize().expect("canon"));
    }
}
