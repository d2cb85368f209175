//! Keeping every write inside the vault: a vault path is relative, has no `..`, does not go
//! into `.git/` or `.trash/`, and no folder on the way (nor the file) is a symlink, so a link
//! planted in the vault cannot lead a write outside it.

use std::path::{Component, Path, PathBuf};

use crate::WriteError;

/// Folders no write goes into (the trash only through [`crate::Writer::delete`]).
const RESERVED: &[&str] = &[".git", ".trash"];

/// Checks vault path `rel` and returns it normalised (`\` refused, no `./`, no trailing `/`).
pub fn check(rel: &str) -> Result<String, WriteError> {
    if rel.trim().is_empty() {
        return Err(WriteError::EmptyPath);
    }
    if rel.contains('\0') || rel.contains('\\') || rel.ends_with('/') {
        return Err(WriteError::InvalidPath(rel.to_string()));
    }
    let p = Path::new(rel);
    if rel.starts_with('/') || p.is_absolute() {
        return Err(WriteError::OutsideVault(rel.to_string()));
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => {
                let s = s
                    .to_str()
                    .ok_or_else(|| WriteError::InvalidPath(rel.to_string()))?;
                parts.push(s);
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(WriteError::OutsideVault(rel.to_string()));
            }
        }
    }
    if parts.is_empty() {
        return Err(WriteError::EmptyPath);
    }
    if let Some(dir) = RESERVED.iter().find(|r| parts[0].eq_ignore_ascii_case(r)) {
        return Err(WriteError::Reserved(rel.to_string(), dir));
    }
    Ok(parts.join("/"))
}

/// The absolute path of checked vault path `rel` under `root` (canonical), refusing any
/// symlink on the way, the last component included. Missing components are fine (a file or
/// folder to create).
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, WriteError> {
    let rel = check(rel)?;
    let mut at = root.to_path_buf();
    for part in rel.split('/') {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let shown = at.strip_prefix(root).unwrap_or(&at).display().to_string();
                return Err(WriteError::Symlink(rel.clone(), shown));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(WriteError::io(&rel)(e)),
        }
    }
    Ok(root.join(&rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes_and_reserved() {
        for bad in [
            "../x.md",
            "a/../../x",
            "/etc/passwd",
            "a/..",
            "",
            "..\\x",
            ".git/config",
            ".trash/x",
            "a/",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check("./a/b.md").expect("ok"), "a/b.md");
        assert_eq!(check("a..b.md").expect("ok"), "a..b.md");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_on_the_way_are_refused() {
        let vault = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let root = vault.path().canonicalize().expect("canon");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).expect("symlink");
        let err = resolve(&root, "out/x.md").expect_err("through a symlink");
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(
            resolve(&root, "new/x.md").expect("plain"),
            root.join("new/x.md")
        );
    }
}
