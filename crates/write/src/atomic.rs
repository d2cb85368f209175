//! Atomic files: the new content goes to a temporary file in the same folder, is fsynced, and
//! is renamed over the target (then the folder is fsynced), so a reader or a crash sees the
//! old file or the new one, never a half-written one. The temporary name ends in `.tmp`,
//! which the watcher ignores.

use std::io::Write;
use std::path::Path;

use crate::WriteError;

/// The content hash the cache, the journal and the tools use: blake3, hex.
pub fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Writes `bytes` to `abs` (vault path `rel`, for errors) atomically. With `create_new`,
/// refuses when the file exists (checked by the rename itself, so no race).
pub fn write(abs: &Path, rel: &str, bytes: &[u8], create_new: bool) -> Result<(), WriteError> {
    let dir = abs
        .parent()
        .ok_or_else(|| WriteError::InvalidPath(rel.to_string()))?;
    std::fs::create_dir_all(dir).map_err(WriteError::io(rel))?;
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| WriteError::InvalidPath(rel.to_string()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(WriteError::io(rel))?;
    // Keep the old file's permissions (the temp file is created 0600).
    if let Ok(meta) = std::fs::metadata(abs) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(WriteError::io(rel))?;
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(WriteError::io(rel))?;
        }
    }
    tmp.write_all(bytes).map_err(WriteError::io(rel))?;
    tmp.as_file().sync_all().map_err(WriteError::io(rel))?;
    if create_new {
        tmp.persist_noclobber(abs).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                WriteError::Exists(rel.to_string())
            } else {
                WriteError::io(rel)(e.error)
            }
        })?;
    } else {
        tmp.persist(abs).map_err(|e| WriteError::io(rel)(e.error))?;
    }
    sync_dir(dir, rel)
}

/// fsyncs folder `dir`, so a rename into it survives a crash.
pub fn sync_dir(dir: &Path, rel: &str) -> Result<(), WriteError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WriteError::io(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a/n.md");
        write(&f, "a/n.md", b"one", true).expect("create");
        assert!(matches!(
            write(&f, "a/n.md", b"two", true),
            Err(WriteError::Exists(_))
        ));
        write(&f, "a/n.md", b"two", false).expect("replace");
        assert_eq!(std::fs::read(&f).expect("read"), b"two");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temp file left: {left:?}");
    }
}
