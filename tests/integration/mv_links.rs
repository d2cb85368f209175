//! `vaultkeeper mv`: a note or a folder moves with its links kept whole. Every form of link
//! (bare name, path, relative, vault-absolute, with heading, alias, embed, percent-encoded
//! markdown) is rewritten in its own form, links that still resolve are left alone, the move
//! and the rewrites are one commit, and on the Obsidian Help vault a note that 31 links point
//! to and a whole folder move with `unresolved` unchanged and the backlinks following.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use vaultkeeper_testkit::git::{FAST, GitVault};

use crate::mcp::{build_cache, copy_tree, help_vault, read};
use crate::util::{BIN, wait_until};

fn json_of(g: &GitVault, args: &[&str]) -> Value {
    let out = g.run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `unresolved` as (note, target as written), the note's path mapped by `rename`.
fn unresolved(g: &GitVault, rename: impl Fn(&str) -> String) -> BTreeMap<(String, String), usize> {
    let v = json_of(g, &["--json", "unresolved"]);
    let mut out = BTreeMap::new();
    for l in v["links"].as_array().expect("links") {
        let key = (
            rename(l["path"].as_str().expect("path")),
            l["target_raw"].as_str().expect("raw").to_string(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

fn backlink_count(g: &GitVault, note: &str) -> Option<usize> {
    let out = g.run(&["--json", "backlinks", note]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["links"].as_array().map(Vec::len)
}

const LINKER: &str = "\
[[Old]] [[Old|alias]] [[Old#Part]] ![[Old]]
[[A/Old.md]] [md](../A/Old.md) [enc](<../A/Old.md#Part>) [[/A/Old]]
[[Other]] and [[Sibling]]
";

fn small() -> GitVault {
    let g = GitVault::new(BIN, FAST);
    g.v.write(
        "A/Old.md",
        "# Old\n\n## Part\n\nSee [[Sibling]] and [s](./Sibling.md).\n",
    );
    g.v.write("A/Sibling.md", "# Sibling\n");
    g.v.write("B/Linker.md", LINKER);
    g.v.write("Other.md", "# Other\n");
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "init"]);
    build_cache(&g.v, &[]);
    g
}

#[test]
fn every_link_form_is_kept_and_the_move_is_one_commit() {
    let g = small();
    let before = g.commits();
    let unresolved_before = unresolved(&g, str::to_string);

    // A dry run says what it would do and writes nothing.
    let dry = g.run(&["mv", "--dry-run", "A/Old.md", "C/New Name.md"]);
    assert!(dry.status.success(), "{dry:?}");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("would move A/Old.md -> C/New Name.md"),
        "{text}"
    );
    assert!(text.contains("B/Linker.md:1: Old -> New Name"), "{text}");
    assert!(g.v.path("A/Old.md").exists());
    assert_eq!(read(&g.v.root, "B/Linker.md"), LINKER);
    assert_eq!(g.commits(), before);

    let done = json_of(&g, &["--json", "mv", "A/Old.md", "C/New Name.md"]);
    assert_eq!(
        read(&g.v.root, "B/Linker.md"),
        "\
[[New Name]] [[New Name|alias]] [[New Name#Part]] ![[New Name]]
[[C/New Name.md]] [md](../C/New%20Name.md) [enc](<../C/New Name.md#Part>) [[/C/New Name]]
[[Other]] and [[Sibling]]
"
    );
    // In the moved note: the relative link is rewritten, the bare name still resolves.
    assert_eq!(
        read(&g.v.root, "C/New Name.md"),
        "# Old\n\n## Part\n\nSee [[Sibling]] and [s](../A/Sibling.md).\n"
    );
    assert!(!g.v.path("A/Old.md").exists());
    assert_eq!(done["links"].as_array().map(Vec::len), Some(7), "{done}");
    // One commit with the move and the rewrites, naming them.
    assert_eq!(g.commits(), before + 1);
    assert_eq!(done["commit"], Value::String(g.head()));
    // A small note with a line changed: git pairs the rename at a low similarity only.
    let files = g.git(&["show", "--format=", "--name-status", "-M10%", "HEAD"]);
    assert!(files.contains("A/Old.md\tC/New Name.md"), "{files}");
    assert!(files.contains("M\tB/Linker.md"), "{files}");
    let msg = g.git(&["log", "-1", "--format=%B"]);
    assert!(
        msg.starts_with("vaultkeeper mv: A/Old.md -> C/New Name.md"),
        "{msg}"
    );
    assert_eq!(g.porcelain(), "");

    // After a reindex nothing new is unresolved and the backlinks follow.
    let out = g.run(&["reindex"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(unresolved(&g, str::to_string), unresolved_before);
    assert_eq!(backlink_count(&g, "C/New Name.md"), Some(8));
}

#[test]
fn refusals_write_nothing() {
    let g = small();
    let head = g.head();
    for (args, want) in [
        (["mv", "A/Old.md", "Other.md"], "already exists"),
        (["mv", "A/Old.md", "../out.md"], "outside the vault"),
        (["mv", "Missing.md", "x.md"], "no file Missing.md"),
        (["mv", "A", "A/inner"], "into itself"),
    ] {
        let out = g.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Under --json the error is a JSON document on stdout.
    let out = g.run(&["--json", "mv", "Missing.md", "x.md"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Missing.md")),
        "{v}"
    );
    assert_eq!(g.head(), head);
    assert_eq!(g.porcelain(), "");
}

#[test]
fn help_vault_note_and_folder_moves_keep_links_whole() {
    let g = GitVault::new(BIN, FAST);
    copy_tree(&help_vault(), &g.v.root);
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "help vault"]);
    let daemon = g.start();
    let old = "Import notes/Importer.md";
    wait_until("the cache has the vault", Duration::from_secs(60), || {
        backlink_count(&g, old).is_some_and(|n| n > 0)
    });
    let n = backlink_count(&g, old).expect("backlinks");
    assert!(n >= 14, "{n} backlinks");
    let unresolved_before = unresolved(&g, str::to_string);
    let commits = g.commits();

    // A rename: every [[Importer]] and [[Importer|Importer plugin]] must change.
    let new = "Import notes/Importer plugin.md";
    let done = json_of(&g, &["--json", "mv", old, new]);
    let rewritten = done["links"].as_array().map_or(0, Vec::len);
    assert!(
        rewritten >= n,
        "{rewritten} links rewritten for {n} backlinks"
    );
    assert!(done["links_lost"].is_null(), "{done}");
    wait_until("the backlinks follow", Duration::from_secs(30), || {
        backlink_count(&g, new) == Some(n) && backlink_count(&g, old).is_none()
    });
    let rename = |p: &str| {
        if p == old {
            new.to_string()
        } else {
            p.to_string()
        }
    };
    assert_eq!(unresolved(&g, rename), unresolved_before);
    let all = g.git(&["grep", "-h", "-o", "\\[\\[Importer[^]]*\\]\\]"]);
    assert!(
        !all.lines()
            .any(|l| l == "[[Importer]]" || l.starts_with("[[Importer|")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l == "[[Importer plugin|Importer plugin]]"),
        "{all}"
    );

    // A folder: paths into it are rewritten, bare names that still resolve are left alone.
    let done = json_of(&g, &["--json", "mv", "Import notes", "Importing"]);
    assert!(
        done["moved"].as_array().is_some_and(|m| m.len() >= 16),
        "{done}"
    );
    let moved_new = "Importing/Importer plugin.md";
    wait_until(
        "the folder's backlinks follow",
        Duration::from_secs(30),
        || backlink_count(&g, moved_new) == Some(n),
    );
    let rename = |p: &str| {
        let p = if p == old { new } else { p };
        match p.strip_prefix("Import notes/") {
            Some(rest) => format!("Importing/{rest}"),
            None => p.to_string(),
        }
    };
    assert_eq!(unresolved(&g, rename), unresolved_before);

    // Two moves, two commits: the daemon's git consumer commits nothing twice.
    let out = g.run(&["commit"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(g.commits(), commits + 2);
    assert_eq!(g.porcelain(), "");
    drop(daemon);
}
