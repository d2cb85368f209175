//! The one lister: every file of the vault its ignore rules let through, for the journal's
//! reindex, `publish --snapshot`, `doctor` and the cache. Folders that cannot be listed are
//! reported (a warning naming each, and a count), never silently lost.

use std::path::Path;
use std::sync::Arc;

use crate::ignore::IgnoreRules;
use crate::scan::{self, Found};

/// A folder that could not be listed, or not completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlistable {
    /// Vault-relative folder (`""` for the root).
    pub dir: String,
    /// Why, naming the path.
    pub reason: String,
}

/// What a listing found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Vault-relative files with `/`, sorted.
    pub files: Vec<String>,
    /// How many folders were walked (the root included), what the watcher would watch.
    pub folders: u64,
    /// Folders whose files are unknown; each was logged as a warning.
    pub unlistable: Vec<Unlistable>,
    /// Entries skipped on purpose (symlinks, names that are not UTF-8, sockets), with why.
    pub skipped: Vec<String>,
}

/// Lists the vault under `root` with `rules`, without reading any file. Symlinks are not
/// followed. Each unlistable folder is logged (`tracing::warn!`) and kept in the listing.
pub fn list_files(root: &Path, rules: &Arc<IgnoreRules>) -> Listing {
    let mut listing = Listing::default();
    scan::walk_listing(root, rules, |found| match found {
        Found::File(rel, _) => listing.files.push(rel),
        Found::Dir(_) => listing.folders += 1,
        Found::Skipped(why) => listing.skipped.push(why),
        Found::Unlistable(dir, reason) => {
            tracing::warn!(folder = %dir, %reason, "cannot list a vault folder: its files are left out");
            listing.unlistable.push(Unlistable { dir, reason });
        }
    });
    listing.files.sort();
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(root: &Path) -> Arc<IgnoreRules> {
        Arc::new(IgnoreRules::new(root, None, &[], true).0)
    }

    #[test]
    fn lists_what_the_rules_let_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(root.join(".git")).expect("mkdir");
        std::fs::write(root.join("a/b/n.md"), "x").expect("write");
        std::fs::write(root.join("top.md"), "x").expect("write");
        std::fs::write(root.join(".git/HEAD"), "x").expect("write");
        std::fs::write(root.join("a/n.md~"), "x").expect("write");
        let listing = list_files(root, &rules(root));
        assert_eq!(listing.files, vec!["a/b/n.md", "top.md"]);
        assert_eq!(listing.folders, 3, "root, a, a/b");
        assert!(listing.unlistable.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_folder_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("locked")).expect("mkdir");
        std::fs::write(root.join("locked/n.md"), "x").expect("write");
        std::fs::write(root.join("open.md"), "x").expect("write");
        let locked = root.join("locked");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        if std::fs::read_dir(&locked).is_ok() {
            // Running as root: permissions do not stop the walk, nothing to check.
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755))
                .expect("chmod back");
            return;
        }
        let listing = list_files(root, &rules(root));
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755))
            .expect("chmod back");
        assert_eq!(listing.files, vec!["open.md"]);
        assert_eq!(listing.unlistable.len(), 1, "{:?}", listing.unlistable);
        assert_eq!(listing.unlistable[0].dir, "locked");
        assert!(listing.unlistable[0].reason.contains("locked"));
    }
}
