//! Which paths never become events: built-in rules, the vault's `.gitignore`, configured globs.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Built-in rules in gitignore syntax: git's own folder, Obsidian's trash and
/// workspace state, and the temp and lock files editors and sync tools write.
const BUILTIN: &[&str] = &[
    ".git/",
    "/.trash/",
    "/.obsidian/workspace*.json",
    "/.obsidian/workspace",
    "*.swp",
    "*.swx",
    "*.swo",
    "*~",
    ".#*",
    "4913",
    ".~lock.*#",
    ".DS_Store",
    "*.tmp",
    "*.crswap",
    ".goutputstream-*",
    "\\#*#",
    "*.kate-swp",
    "~$*",
    ".syncthing.*",
];

/// The compiled ignore rules of one vault.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    builtin: Gitignore,
    vault_gitignore: Option<Gitignore>,
}

/// A problem met while reading ignore files; the rules still work without the bad line.
#[derive(Debug, Clone)]
pub struct IgnoreWarning(pub String);

impl IgnoreRules {
    /// Builds the rules for `root`. `state_dir` is the state folder relative to the vault
    /// when it lives inside it; `globs` are the configured extra patterns.
    pub fn new(
        root: &Path,
        state_dir: Option<&str>,
        globs: &[String],
        use_gitignore: bool,
    ) -> (IgnoreRules, Vec<IgnoreWarning>) {
        let mut warnings = Vec::new();
        let mut builder = GitignoreBuilder::new(root);
        for rule in BUILTIN {
            if let Err(e) = builder.add_line(None, rule) {
                warnings.push(IgnoreWarning(format!("built-in ignore rule {rule}: {e}")));
            }
        }
        if let Some(dir) = state_dir {
            let rule = format!("/{}/", dir.trim_matches('/'));
            if let Err(e) = builder.add_line(None, &rule) {
                warnings.push(IgnoreWarning(format!("state folder rule {rule}: {e}")));
            }
        }
        for glob in globs {
            if let Err(e) = builder.add_line(None, glob) {
                warnings.push(IgnoreWarning(format!("config watch.ignore `{glob}`: {e}")));
            }
        }
        let builtin = builder.build().unwrap_or_else(|e| {
            warnings.push(IgnoreWarning(format!("ignore rules: {e}")));
            Gitignore::empty()
        });
        let vault_gitignore = use_gitignore.then(|| {
            let mut b = GitignoreBuilder::new(root);
            for file in [root.join(".gitignore"), root.join(".git/info/exclude")] {
                if file.is_file()
                    && let Some(e) = b.add(&file)
                {
                    warnings.push(IgnoreWarning(format!("{}: {e}", file.display())));
                }
            }
            b.build().unwrap_or_else(|e| {
                warnings.push(IgnoreWarning(format!(
                    "{}: {e}",
                    root.join(".gitignore").display()
                )));
                Gitignore::empty()
            })
        });
        (
            IgnoreRules {
                builtin,
                vault_gitignore,
            },
            warnings,
        )
    }

    /// The rules of a vault as its configuration says: the one place the watcher, the
    /// cache's reindex, `publish --snapshot` and `doctor` get them from.
    pub fn for_vault(
        paths: &crate::paths::VaultPaths,
        cfg: &crate::config::WatchConfig,
    ) -> (IgnoreRules, Vec<IgnoreWarning>) {
        IgnoreRules::new(
            &paths.root,
            paths.state_dir_in_vault().as_deref(),
            &cfg.ignore,
            cfg.gitignore,
        )
    }

    /// True when the vault-relative path (with `/`) is ignored, itself or through a parent.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return false;
        }
        let path = Path::new(rel);
        if self
            .builtin
            .matched_path_or_any_parents(path, is_dir)
            .is_ignore()
        {
            return true;
        }
        match &self.vault_gitignore {
            Some(g) => g.matched_path_or_any_parents(path, is_dir).is_ignore(),
            None => false,
        }
    }

    /// True for the files whose change alters the rules themselves.
    pub fn is_rule_file(rel: &str) -> bool {
        rel == ".gitignore"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(gitignore: &str, globs: &[&str]) -> (tempfile::TempDir, IgnoreRules) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".gitignore"), gitignore).expect("write");
        let globs: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
        let (r, w) = IgnoreRules::new(dir.path(), Some(".vk-state"), &globs, true);
        assert!(w.is_empty(), "{w:?}");
        (dir, r)
    }

    #[test]
    fn builtin_rules() {
        let (_d, r) = rules("", &[]);
        for p in [
            ".git/index",
            ".git/objects/ab/cdef",
            ".trash/old.md",
            ".obsidian/workspace.json",
            ".obsidian/workspace-mobile.json",
            "notes/.note.md.swp",
            "notes/note.md~",
            "4913",
            "sub/4913",
            ".#note.md",
            ".~lock.doc.odt#",
            ".DS_Store",
            ".vk-state/journal.db",
            "a/.note.md.tmp",
            "#note.md#",
        ] {
            assert!(r.is_ignored(p, false), "{p} should be ignored");
        }
        for p in [
            "note.md",
            ".obsidian/app.json",
            "sub/.trash/keep.md",
            "4913.md",
            "a b/c#d%e.md",
            ".gitignore",
        ] {
            assert!(!r.is_ignored(p, false), "{p} should not be ignored");
        }
    }

    #[test]
    fn gitignore_and_globs() {
        let (_d, r) = rules("private/\n*.log\n", &["drafts/**"]);
        assert!(r.is_ignored("private/x.md", false));
        assert!(r.is_ignored("private", true));
        assert!(r.is_ignored("a/b.log", false));
        assert!(r.is_ignored("drafts/x.md", false));
        assert!(!r.is_ignored("public/x.md", false));
    }
}
