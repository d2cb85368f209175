//! One daemon per vault: an OS lock on the vault folder itself, which cannot be deleted
//! from under a running daemon, plus a file lock in the state folder that names its holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another vaultkeeper daemon (pid {pid}) is already running for this vault (lock {path})"
    )]
    Held {
        /// The holder's pid, as it wrote it (`?` if unreadable).
        pid: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or written.
    #[error("lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Held while the daemon runs; the OS releases both locks when the process ends, even on
/// `kill -9`, so a stale file never blocks a restart.
///
/// The state-folder lock alone is not enough: deleting the state folder unlinks its file,
/// and a second daemon would create and lock a new one. The vault folder's own inode is
/// locked too (`flock` on the directory), keyed on what the daemon watches and present for
/// as long as there is a vault to watch. [`DaemonLock::check`] tells the daemon when its
/// state-folder lock file is gone.
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    path: PathBuf,
    _vault: Option<File>,
}

impl DaemonLock {
    /// Takes the lock in the state folder only, and writes this process's pid into it.
    pub fn acquire(path: &Path) -> Result<DaemonLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: read_pid(path).map_or_else(|| "?".to_string(), |p| p.to_string()),
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(DaemonLock {
            file,
            path: path.to_path_buf(),
            _vault: None,
        })
    }

    /// Locks the vault folder `root`, then `path` in the state folder. Call it before
    /// creating the state folder, so a refused daemon leaves nothing behind.
    pub fn acquire_for_vault(
        root: &Path,
        path: &Path,
        ensure_state_dir: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<DaemonLock> {
        let vault = lock_folder(root, path)?;
        ensure_state_dir()?;
        let mut lock = DaemonLock::acquire(path)?;
        lock._vault = vault;
        Ok(lock)
    }

    /// `Err` naming what happened once the lock file is no longer the one this daemon
    /// holds: the state folder (or the file) was deleted or replaced under it.
    pub fn check(&self) -> Result<(), String> {
        let held = self
            .file
            .metadata()
            .map_err(|e| format!("cannot stat the held lock: {e}"))?;
        match std::fs::metadata(&self.path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => Ok(()),
            Ok(_) => Err(format!("{} was replaced", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{} was deleted", self.path.display()))
            }
            // Unreadable for a moment is not proof of deletion.
            Err(_) => Ok(()),
        }
    }
}

/// Locks the folder itself. `None` where the filesystem cannot lock a folder (some network
/// filesystems): the state-folder lock then works alone, as before.
fn lock_folder(root: &Path, state_lock: &Path) -> Result<Option<File>, LockError> {
    let io = |source| LockError::Io {
        path: root.to_path_buf(),
        source,
    };
    let dir = File::open(root).map_err(io)?;
    match dir.try_lock() {
        Ok(()) => Ok(Some(dir)),
        Err(TryLockError::WouldBlock) => {
            let pid = dir
                .metadata()
                .ok()
                .and_then(|m| flock_holder(m.dev(), m.ino()))
                .or_else(|| read_pid(state_lock));
            Err(LockError::Held {
                pid: pid.map_or_else(|| "?".to_string(), |p| p.to_string()),
                path: root.to_path_buf(),
            })
        }
        Err(TryLockError::Error(e)) => {
            tracing::warn!(
                "cannot lock the vault folder {} ({e}); relying on the lock in the state folder alone",
                root.display()
            );
            Ok(None)
        }
    }
}

/// The pid holding a `flock` on the file `dev`/`ino`, from `/proc/locks` (Linux only).
fn flock_holder(dev: u64, ino: u64) -> Option<u32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let want = (libc::major(dev), libc::minor(dev), ino);
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters carry a "->".
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let pid = fields.get(4)?.parse().ok()?;
        let mut id = fields.get(5)?.split(':');
        let major = u32::from_str_radix(id.next()?, 16).ok()?;
        let minor = u32::from_str_radix(id.next()?, 16).ok()?;
        let inode: u64 = id.next()?.parse().ok()?;
        ((major, minor, inode) == want).then_some(pid)
    })
}

/// The pid written in the lock file.
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// The pid of the daemon holding the lock, or `None` when no daemon runs.
pub fn holder(path: &Path) -> Option<u32> {
    let file = OpenOptions::new().read(true).write(true).open(path).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => read_pid(path),
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("daemon.lock");
        let held = DaemonLock::acquire(&p).expect("first");
        let err = DaemonLock::acquire(&p).expect_err("second must fail");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        assert_eq!(holder(&p), Some(std::process::id()));
        drop(held);
        assert_eq!(holder(&p), None);
        DaemonLock::acquire(&p).expect("free again");
    }

    #[test]
    fn the_vault_lock_outlives_its_state_folder() {
        let vault = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let dir = state.path().join("s");
        let p = dir.join("daemon.lock");
        let mkdir = || std::fs::create_dir_all(&dir).map_err(anyhow::Error::from);
        let held = DaemonLock::acquire_for_vault(vault.path(), &p, mkdir).expect("first");
        assert_eq!(held.check(), Ok(()));
        std::fs::remove_dir_all(&dir).expect("rm");
        assert!(held.check().is_err_and(|e| e.contains("deleted")));
        let err = DaemonLock::acquire_for_vault(vault.path(), &p, mkdir)
            .expect_err("the vault is still locked");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(!dir.exists(), "a refused daemon creates no state folder");
        drop(held);
        DaemonLock::acquire_for_vault(vault.path(), &p, mkdir).expect("free again");
    }
}
