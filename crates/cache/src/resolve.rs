//! Link resolution as Obsidian does it: which vault file a link target names.
//!
//! Rules, in the order they apply (checked against what was measured on Obsidian 1.13):
//! 1. Names compare case-insensitively after Unicode NFC ([`fold`]); `.md` is optional
//!    (`[[Note]]` and `[[Note.md]]` both find `Note.md`). Any file can be a target, so
//!    `![[x.png]]` finds `Attachments/x.png`. Aliases never resolve links.
//! 2. An empty target (`[[#Heading]]`, `[x](#Heading)`) is the linking note itself.
//! 3. A target starting with `./` or `../` is relative to the linking note's folder, and only
//!    that exact path matches (a path above the vault root resolves to nothing).
//! 4. A target starting with `/` is a vault path; only that exact path matches.
//! 5. A target containing `/` matches the exact vault path first; otherwise any file whose
//!    path ends with `/<target>` (a partial path: `[[b/Note]]` finds `x/b/Note.md`).
//! 6. A bare name matches a file at that exact vault path (the vault root) first; then a
//!    file in the linking note's own folder; then the shortest path.
//! 7. Remaining ties (same length) go to the path that sorts first, so the answer is stable.
//!
//! Candidates are looked up by a *name key* (the folded file name, `.md` stripped, see
//! [`name_key`] and [`target_key`]): a link can only ever resolve to a file with the same key,
//! which is also how the cache finds the links to re-resolve when a file appears, goes or moves.

use unicode_normalization::UnicodeNormalization;

/// NFC, then lower case: the form in which names and paths compare.
pub fn fold(s: &str) -> String {
    // ASCII is already NFC, and its lower case is ASCII's: most paths, tags and keys are.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.nfc().collect::<String>().to_lowercase()
}

fn strip_md(folded: &str) -> &str {
    match folded.strip_suffix(".md") {
        Some(s) if !s.is_empty() => s,
        _ => folded,
    }
}

/// The lookup key of a vault file: its folded file name, `.md` stripped.
pub fn name_key(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    strip_md(&fold(name)).to_string()
}

/// The lookup key of a link target: its folded last component, `.md` stripped.
/// Empty for a link to the note itself.
pub fn target_key(target: &str) -> String {
    let t = target.trim();
    let name = t.rsplit('/').next().unwrap_or(t);
    strip_md(&fold(name.trim())).to_string()
}

fn folder(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Joins `rel` (starting with `./` or `../`) to `dir`; `None` when it climbs above the root.
fn join_relative(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for comp in rel.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// True when the folded path `cand` is `want` or `want.md`.
fn same_path(cand: &str, want: &str) -> bool {
    cand == want || cand.strip_suffix(".md") == Some(want)
}

fn best(mut cands: Vec<&String>) -> Option<&String> {
    cands.sort_by(|a, b| {
        a.chars()
            .count()
            .cmp(&b.chars().count())
            .then_with(|| a.cmp(b))
    });
    cands.into_iter().next()
}

/// Resolves `target` written in the note at `src`.
///
/// `lookup(key)` returns every vault path whose [`name_key`] is `key`. Returns the vault path
/// the link points at, or `None` when it is unresolved.
pub fn resolve(
    src: &str,
    target: &str,
    lookup: &mut dyn FnMut(&str) -> Vec<String>,
) -> Option<String> {
    let t = target.trim();
    if t.is_empty() {
        return Some(src.to_string());
    }
    let key = target_key(t);
    if key.is_empty() {
        return None;
    }
    let cands = lookup(&key);
    if cands.is_empty() {
        return None;
    }
    let folded: Vec<(String, &String)> = cands.iter().map(|c| (fold(c), c)).collect();
    let exact = |want: &str| -> Option<String> {
        // Prefer `want.md` over a file literally named `want`, then the first in order.
        let mut hits: Vec<&(String, &String)> =
            folded.iter().filter(|(f, _)| same_path(f, want)).collect();
        hits.sort_by_key(|(f, c)| (f != &format!("{want}.md"), (*c).clone()));
        hits.first().map(|(_, c)| (*c).clone())
    };

    if t.starts_with("./") || t.starts_with("../") {
        let joined = join_relative(folder(src), t)?;
        return exact(&fold(&joined));
    }
    if let Some(abs) = t.strip_prefix('/') {
        return exact(&fold(abs.trim_start_matches('/')));
    }
    let want = fold(t);
    if let Some(hit) = exact(&want) {
        return Some(hit);
    }
    if t.contains('/') {
        let suffix = format!("/{want}");
        let hits: Vec<&String> = folded
            .iter()
            .filter(|(f, _)| {
                f.ends_with(&suffix) || f.strip_suffix(".md").is_some_and(|s| s.ends_with(&suffix))
            })
            .map(|(_, c)| *c)
            .collect();
        return best(hits).cloned();
    }
    // A bare name: the file name must match (key equality already strips `.md`).
    let named: Vec<(&String, &String)> = folded
        .iter()
        .filter(|(f, _)| {
            let name = f.rsplit('/').next().unwrap_or(f);
            same_path(name, &want)
        })
        .map(|(f, c)| (f, *c))
        .collect();
    let src_dir = fold(folder(src));
    let local: Vec<&String> = named
        .iter()
        .filter(|(f, _)| folder(f) == src_dir)
        .map(|(_, c)| *c)
        .collect();
    if let Some(hit) = best(local) {
        return Some(hit.clone());
    }
    best(named.into_iter().map(|(_, c)| c).collect()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vault(paths: &[&str]) -> HashMap<String, Vec<String>> {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for p in paths {
            m.entry(name_key(p)).or_default().push(p.to_string());
        }
        m
    }

    fn r(v: &HashMap<String, Vec<String>>, src: &str, target: &str) -> Option<String> {
        resolve(src, target, &mut |k| v.get(k).cloned().unwrap_or_default())
    }

    #[test]
    fn keys() {
        assert_eq!(name_key("a/Note.md"), "note");
        assert_eq!(name_key("a/X.PNG"), "x.png");
        assert_eq!(target_key("../b/Note.MD"), "note");
        assert_eq!(target_key("x.png"), "x.png");
        assert_eq!(target_key(""), "");
    }

    #[test]
    fn case_insensitive_and_md_optional() {
        let v = vault(&["Folder/My Note.md"]);
        assert_eq!(
            r(&v, "x.md", "my note").as_deref(),
            Some("Folder/My Note.md")
        );
        assert_eq!(
            r(&v, "x.md", "My Note.md").as_deref(),
            Some("Folder/My Note.md")
        );
        assert_eq!(
            r(&v, "x.md", "MY NOTE.MD").as_deref(),
            Some("Folder/My Note.md")
        );
        assert_eq!(r(&v, "x.md", "Other"), None);
    }

    #[test]
    fn exact_vault_path_wins() {
        let v = vault(&["Note.md", "a/Note.md", "b/c/Note.md"]);
        // From inside `a/`, a bare name that is also a root path still goes to the root file.
        assert_eq!(r(&v, "a/x.md", "Note").as_deref(), Some("Note.md"));
        assert_eq!(r(&v, "z/x.md", "b/c/Note").as_deref(), Some("b/c/Note.md"));
    }

    #[test]
    fn same_folder_then_shortest() {
        let v = vault(&["deep/er/Note.md", "a/Note.md", "bb/Note.md"]);
        assert_eq!(r(&v, "bb/x.md", "Note").as_deref(), Some("bb/Note.md"));
        assert_eq!(
            r(&v, "deep/er/x.md", "Note").as_deref(),
            Some("deep/er/Note.md")
        );
        assert_eq!(r(&v, "zz/x.md", "Note").as_deref(), Some("a/Note.md"));
        // Equal length: the path that sorts first.
        let v = vault(&["b/N.md", "a/N.md"]);
        assert_eq!(r(&v, "x.md", "N").as_deref(), Some("a/N.md"));
    }

    #[test]
    fn partial_path_is_a_suffix() {
        let v = vault(&["x/b/Note.md", "y/c/Note.md", "long/x/b/Note.md"]);
        assert_eq!(r(&v, "q.md", "b/Note").as_deref(), Some("x/b/Note.md"));
        assert_eq!(r(&v, "q.md", "c/Note.md").as_deref(), Some("y/c/Note.md"));
        assert_eq!(r(&v, "q.md", "d/Note"), None);
        // A suffix must start at a folder boundary.
        assert_eq!(r(&v, "q.md", "/b/Note"), None);
        let v = vault(&["xb/Note.md"]);
        assert_eq!(r(&v, "q.md", "b/Note"), None);
    }

    #[test]
    fn relative_paths() {
        let v = vault(&["a/Note.md", "a/b/Note.md", "Note.md"]);
        assert_eq!(r(&v, "a/b/x.md", "../Note").as_deref(), Some("a/Note.md"));
        assert_eq!(
            r(&v, "a/b/x.md", "./Note.md").as_deref(),
            Some("a/b/Note.md")
        );
        assert_eq!(r(&v, "a/b/x.md", "../../Note").as_deref(), Some("Note.md"));
        assert_eq!(r(&v, "a/x.md", "../../Note"), None);
        assert_eq!(r(&v, "x.md", "./zz/Note"), None);
    }

    #[test]
    fn nfc_names() {
        // "é" precomposed in the file, decomposed in the link.
        let v = vault(&["Caf\u{e9}.md"]);
        assert_eq!(
            r(&v, "x.md", "Cafe\u{301}").as_deref(),
            Some("Caf\u{e9}.md")
        );
        let v = vault(&["Заметки/Привет мир.md"]);
        assert_eq!(
            r(&v, "x.md", "привет МИР").as_deref(),
            Some("Заметки/Привет мир.md")
        );
    }

    #[test]
    fn self_link_and_attachments() {
        let v = vault(&["Attachments/x.png", "n.md"]);
        assert_eq!(r(&v, "n.md", "").as_deref(), Some("n.md"));
        assert_eq!(r(&v, "n.md", "x.png").as_deref(), Some("Attachments/x.png"));
        assert_eq!(r(&v, "n.md", "x"), None);
    }

    #[test]
    fn md_preferred_over_extensionless_file() {
        let v = vault(&["Note", "Note.md"]);
        assert_eq!(r(&v, "x.md", "Note").as_deref(), Some("Note.md"));
    }
}
