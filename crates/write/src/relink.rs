//! Keeping links whole when files move: which links a move breaks (or makes resolve to
//! another file), what each should say instead in the form it was written, and the rewrite
//! of the lines that hold them.
//!
//! The plan uses the cache's link rows (the target as written and where it resolved) and
//! Obsidian's resolver: a link is rewritten only when, after the move, it would no longer
//! resolve to the (moved) file it resolved to before. The new target keeps the form: a bare
//! name stays a bare name when that resolves, a path a path, `./`/`../` stays relative, `/x`
//! stays a vault path, `.md` stays there or away, `#Heading`/`#^block` and the `|alias` are
//! kept, and markdown links stay percent-encoded (or in `<…>`). When the form cannot name
//! the file unambiguously any more, the link gets the file's full vault path.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;

use vaultkeeper_cache::graph::{FileRef, LinkRef};
use vaultkeeper_cache::resolve::{name_key, resolve, target_key};

/// What markdown link destinations encode (as Obsidian writes them: spaces and a few more).
const MD_DEST: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'(')
    .add(b')')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b']')
    .add(b'^')
    .add(b'|')
    .add(b'#');

/// One link to rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkEdit {
    /// The note holding the link, where it is now (before the move).
    pub file: String,
    /// The note holding the link after the move.
    pub file_after: String,
    /// 1-based line.
    pub line: u32,
    /// The destination as written (`Old Name#Part`).
    pub old: String,
    /// The new file part, decoded (`Folder/New Name`); the `#…` suffix is kept as written.
    #[serde(skip)]
    pub new_file: String,
    /// The new destination as it will be written in a wikilink (markdown may encode it).
    pub new: String,
    /// The moved file it points to, after the move.
    pub target: String,
}

fn folder(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `to` (a vault path) relative to folder `from`, `./` or `../` first.
fn relative(from: &str, to: &str) -> String {
    let a: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = to.split('/').collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let ups = a.len() - common;
    let rest = b[common..].join("/");
    if ups == 0 {
        format!("./{rest}")
    } else {
        format!("{}{rest}", "../".repeat(ups))
    }
}

/// The candidate new file parts for `link` pointing at `target` (its path after the move),
/// written from `src` (the linking note after the move): its own form first, the full path last.
fn candidates(link: &LinkRef, src: &str, target: &str) -> Vec<String> {
    let t = link.target.trim();
    let keep_md = t.to_lowercase().ends_with(".md");
    let named = match target.strip_suffix(".md") {
        Some(stem) if !keep_md && !stem.is_empty() => stem,
        _ => target,
    };
    let name = named.rsplit('/').next().unwrap_or(named);
    let mut out = Vec::new();
    if t.starts_with("./") || t.starts_with("../") {
        out.push(relative(folder(src), named));
    } else if t.starts_with('/') {
        out.push(format!("/{named}"));
    } else if t.contains('/') {
        out.push(named.to_string());
    } else {
        out.push(name.to_string());
    }
    out.push(named.to_string());
    out.push(target.to_string());
    out.dedup();
    out
}

/// The `#Heading` / `#^block` part of a destination as written (empty when none).
fn suffix(raw: &str) -> &str {
    raw.find('#').map_or("", |i| &raw[i..])
}

/// The links a move of `moves` (old vault path to new, files only) must rewrite, and the
/// links it cannot keep (no form resolves to the moved file), as `note:line: target`.
pub fn plan(
    files: &[FileRef],
    links: &[LinkRef],
    moves: &BTreeMap<String, String>,
) -> (Vec<LinkEdit>, Vec<String>) {
    let after = |p: &str| moves.get(p).cloned().unwrap_or_else(|| p.to_string());
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for f in files {
        let p = after(&f.path);
        by_key.entry(name_key(&p)).or_default().push(p);
    }
    let new_keys: BTreeSet<String> = moves.values().map(|p| name_key(p)).collect();
    let mut lookup = |k: &str| by_key.get(k).cloned().unwrap_or_default();
    let mut edits = Vec::new();
    let mut lost = Vec::new();
    let mut seen = BTreeSet::new();
    for l in links {
        let Some(was) = &l.target_path else { continue };
        if l.target.trim().is_empty() {
            continue;
        }
        let touched = moves.contains_key(&l.path)
            || moves.contains_key(was)
            || new_keys.contains(&target_key(&l.target));
        if !touched {
            continue;
        }
        let (src, target) = (after(&l.path), after(was));
        if resolve(&src, &l.target, &mut lookup).as_deref() == Some(target.as_str()) {
            continue;
        }
        if !seen.insert((l.path.clone(), l.line, l.raw.clone())) {
            continue;
        }
        let found = candidates(l, &src, &target)
            .into_iter()
            .find(|c| resolve(&src, c, &mut lookup).as_deref() == Some(target.as_str()));
        match found {
            Some(new_file) => edits.push(LinkEdit {
                file: l.path.clone(),
                file_after: src,
                line: l.line,
                old: l.raw.clone(),
                new: format!("{new_file}{}", suffix(&l.raw)),
                new_file,
                target,
            }),
            None => lost.push(format!("{}:{}: {}", l.path, l.line, l.raw)),
        }
    }
    (edits, lost)
}

/// Rewrites one line's links: every `[[old` (then `]]`, `|`), `](old` (then `)`, space) and
/// `](<old>` becomes the new destination; markdown ones percent-encoded when the old one was
/// (or when the new one has a space). Returns how many links changed.
pub fn rewrite_line(line: &mut String, edit: &LinkEdit, old_target: &str) -> usize {
    let sfx = suffix(&edit.old);
    let old_file = &edit.old[..edit.old.len() - sfx.len()];
    let encoded = old_file != old_target.trim();
    let md_new = if encoded || edit.new_file.contains(' ') {
        format!("{}{sfx}", utf8_percent_encode(&edit.new_file, MD_DEST))
    } else {
        edit.new.clone()
    };
    let mut n = 0;
    // (the link as it starts, what may follow it, its replacement)
    let forms: [(String, &[&str], String); 3] = [
        (
            format!("[[{}", edit.old),
            &["]]", "|", "\\|"][..],
            format!("[[{}", edit.new),
        ),
        (
            format!("](<{}>", edit.old),
            &[""][..],
            format!("](<{}>", edit.new),
        ),
        (
            format!("]({}", edit.old),
            &[")", " "][..],
            format!("]({md_new}"),
        ),
    ];
    for (pat, ends, new) in &forms {
        let mut out = String::with_capacity(line.len());
        let mut rest = line.as_str();
        while let Some(at) = rest.find(pat.as_str()) {
            let after = &rest[at + pat.len()..];
            out.push_str(&rest[..at]);
            if ends.iter().any(|e| after.starts_with(e)) {
                out.push_str(new);
                n += 1;
            } else {
                out.push_str(pat);
            }
            rest = after;
        }
        out.push_str(rest);
        *line = out;
    }
    n
}

/// `text` with `edits` (all of one note) applied, line by line; `targets` gives each edit's
/// old decoded target. Returns the new text and the edits whose link was not found.
pub fn apply(text: &str, edits: &[(&LinkEdit, &str)]) -> (String, Vec<LinkEdit>) {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut missed = Vec::new();
    for (edit, old_target) in edits {
        let idx = edit.line as usize;
        let done = match lines.get_mut(idx.wrapping_sub(1)) {
            Some(line) => rewrite_line(line, edit, old_target) > 0,
            None => false,
        };
        if !done {
            missed.push((*edit).clone());
        }
    }
    (lines.concat(), missed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> FileRef {
        FileRef {
            path: p.into(),
            hash: None,
        }
    }

    fn link(path: &str, raw: &str, target: &str, to: &str, kind: &str) -> LinkRef {
        LinkRef {
            path: path.into(),
            line: 1,
            kind: kind.into(),
            raw: raw.into(),
            target: target.into(),
            target_path: Some(to.into()),
        }
    }

    #[test]
    fn each_form_is_kept() {
        let files = [
            file("A/Old.md"),
            file("B/Linker.md"),
            file("A/Sibling.md"),
            file("Other.md"),
        ];
        let moves = BTreeMap::from([("A/Old.md".to_string(), "C/New Name.md".to_string())]);
        let links = [
            link("B/Linker.md", "Old", "Old", "A/Old.md", "wikilink"),
            link(
                "B/Linker.md",
                "A/Old.md#Part",
                "A/Old.md",
                "A/Old.md",
                "wikilink",
            ),
            link(
                "B/Linker.md",
                "../A/Old.md",
                "../A/Old.md",
                "A/Old.md",
                "markdown",
            ),
            link("B/Linker.md", "/A/Old", "/A/Old", "A/Old.md", "embed"),
            link("B/Linker.md", "Other", "Other", "Other.md", "wikilink"),
            // In the moved note: a relative link that breaks, a bare name that still resolves.
            link(
                "A/Old.md",
                "./Sibling.md",
                "./Sibling.md",
                "A/Sibling.md",
                "markdown",
            ),
            link("A/Old.md", "Sibling", "Sibling", "A/Sibling.md", "wikilink"),
        ];
        let (edits, lost) = plan(&files, &links, &moves);
        assert!(lost.is_empty(), "{lost:?}");
        let got: Vec<(&str, &str)> = edits
            .iter()
            .map(|e| (e.old.as_str(), e.new.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Old", "New Name"),
                ("A/Old.md#Part", "C/New Name.md#Part"),
                ("../A/Old.md", "../C/New Name.md"),
                ("/A/Old", "/C/New Name"),
                ("./Sibling.md", "../A/Sibling.md"),
            ]
        );
    }

    #[test]
    fn a_name_that_becomes_ambiguous_gets_its_path() {
        let files = [file("x/Note.md"), file("y/Note.md"), file("L.md")];
        let moves = BTreeMap::from([("y/Note.md".to_string(), "Note.md".to_string())]);
        // [[Note]] resolved to x/Note.md (shortest, sorted first); now Note.md at the root wins.
        let links = [link("L.md", "Note", "Note", "x/Note.md", "wikilink")];
        let (edits, _) = plan(&files, &links, &moves);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].new, "x/Note");
    }

    #[test]
    fn lines_keep_alias_heading_and_encoding() {
        let e = LinkEdit {
            file: "n.md".into(),
            file_after: "n.md".into(),
            line: 1,
            old: "Old Note.md".into(),
            new_file: "Dir/New Note.md".into(),
            new: "Dir/New Note.md".into(),
            target: "Dir/New Note.md".into(),
        };
        let mut l = "[[Old Note.md|alias]] ![[Old Note.md]] [t](<Old Note.md>) [[Old Note.mdx]]\n"
            .to_string();
        assert_eq!(rewrite_line(&mut l, &e, "Old Note.md"), 3);
        assert_eq!(
            l,
            "[[Dir/New Note.md|alias]] ![[Dir/New Note.md]] [t](<Dir/New Note.md>) [[Old Note.mdx]]\n"
        );
        let e2 = LinkEdit {
            old: "Old%20Note.md#Part".into(),
            new: "Dir/New Note.md#Part".into(),
            ..e
        };
        let mut m = "see [x](Old%20Note.md#Part).".to_string();
        assert_eq!(rewrite_line(&mut m, &e2, "Old Note.md"), 1);
        assert_eq!(m, "see [x](Dir/New%20Note.md#Part).");
    }
}
