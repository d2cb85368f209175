//! Search on the real Obsidian Help vault (English, `VAULTKEEPER_HELP_VAULT`; skipped, saying
//! so, when absent): stems find every form, phrases and prefixes find what a scan of the files
//! finds, and a note's title finds that note first for at least 95% of the notes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vaultkeeper_cache::apply::vault_files;
use vaultkeeper_cache::query;
use vaultkeeper_cache::schema::open_ro;
use vaultkeeper_cache::{CacheConfig, reindex};

fn help_vault() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VAULTKEEPER_HELP_VAULT") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vaults/obsidian-help-en");
    if p.is_dir() {
        return Some(p);
    }
    eprintln!(
        "SKIPPED: the Obsidian help vault is absent (set VAULTKEEPER_HELP_VAULT or put it at {})",
        p.display()
    );
    None
}

/// Every `.md` file's text by vault path.
fn notes_of(root: &Path) -> BTreeMap<String, String> {
    vault_files(root)
        .expect("walk")
        .into_iter()
        .filter(|p| p.ends_with(".md"))
        .map(|p| {
            let t = std::fs::read_to_string(root.join(&p)).unwrap_or_default();
            (p, t)
        })
        .collect()
}

/// Lowercase, every run of non-alphanumeric characters one space, padded with spaces: a
/// phrase of whole words is then ` a b ` inside it.
fn words_line(t: &str) -> String {
    let mut out = String::from(" ");
    for c in t.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.push(' ');
    out
}

/// The body: the text after a leading frontmatter block (whose keys the index leaves out).
fn body_of(t: &str) -> &str {
    t.strip_prefix("---\n")
        .and_then(|r| r.split_once("\n---").map(|(_, b)| b))
        .unwrap_or(t)
}

#[test]
fn help_vault_stems_phrases_prefixes_and_titles() {
    let Some(src) = help_vault() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cache.db");
    let files = vault_files(&src).expect("walk");
    // Read-only vault: the index reads it, nothing writes there.
    reindex(&db, &src, files.into_iter(), 0, &CacheConfig::default()).expect("reindex");
    let conn = open_ro(&db).expect("open");
    let notes = notes_of(&src);
    let found = |q: &str| -> BTreeSet<String> {
        query::search(&conn, q, None, None, 10_000)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect()
    };
    let scan = |f: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        notes
            .iter()
            .filter(|(_, t)| f(t))
            .map(|(p, _)| p.clone())
            .collect()
    };

    // `attachment` finds at least every note with `attachment` or `attachments`.
    let want = scan(&|t| t.to_lowercase().contains("attachment"));
    let got = found("attachment");
    let missed: Vec<_> = want.difference(&got).collect();
    assert!(missed.is_empty(), "attachment: missed {missed:?}");
    println!(
        "help vault: `attachment` finds {} notes; {} contain attachment(s)",
        got.len(),
        want.len()
    );
    assert!(want.len() >= 20, "the vault changed? {}", want.len());

    // A phrase finds exactly the notes holding its words in a row.
    for phrase in ["core plugin", "command palette", "file explorer"] {
        let pat = format!(" {phrase} ");
        let want = scan(&|t| words_line(body_of(t)).contains(&pat));
        let got = found(&format!("\"{phrase}\""));
        let extra: Vec<_> = got
            .iter()
            // The title may be the file name, which is not in the text.
            .filter(|p| !words_line(&format!("{}\n{p}", notes[*p])).contains(&pat))
            .collect();
        assert!(!want.is_empty(), "{phrase}: not in the vault");
        assert!(
            want.is_subset(&got),
            "{phrase}: missed {:?}",
            want.difference(&got)
        );
        assert!(extra.is_empty(), "{phrase}: found without it: {extra:?}");
    }

    // A prefix finds every note with a word starting with it, and only notes holding it.
    let want = scan(&|t| words_line(body_of(t)).contains(" embed"));
    let got = found("embed*");
    assert!(
        want.is_subset(&got),
        "embed*: missed {:?}",
        want.difference(&got)
    );
    let stray: Vec<_> = got
        .iter()
        .filter(|p| {
            !notes[*p].to_lowercase().contains("embed") && !p.to_lowercase().contains("embed")
        })
        .collect();
    assert!(stray.is_empty(), "embed*: found without it: {stray:?}");

    // Known-item search: a note's title finds it first (titles shared by two notes skipped).
    let mut titles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut st = conn
        .prepare("SELECT path, title FROM notes WHERE is_markdown = 1")
        .expect("prepare");
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    for (p, t) in rows {
        titles.entry(t.to_lowercase()).or_default().push(p);
    }
    let (mut tried, mut first, mut misses) = (0usize, 0usize, Vec::new());
    for (title, paths) in &titles {
        let [path] = paths.as_slice() else { continue };
        tried += 1;
        let hits = query::search(&conn, title, None, None, 5).map(|r| r.hits);
        match hits.as_deref() {
            Ok([top, ..]) if &top.path == path => first += 1,
            other => misses.push(format!(
                "{title:?} -> {:?}",
                other.map(|h| h.first().map(|h| h.path.clone()))
            )),
        }
    }
    let rate = first as f64 / tried.max(1) as f64;
    misses.truncate(20);
    println!(
        "help vault: a title finds its note first for {first} of {tried} notes ({:.1}%); misses (20 at most): {misses:?}",
        rate * 100.0
    );
    assert!(tried >= 150, "only {tried} distinct titles");
    assert!(rate >= 0.95, "{:.1}%: {misses:?}", rate * 100.0);
}
