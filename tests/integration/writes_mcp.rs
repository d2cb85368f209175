//! The MCP write tools (`vaultkeeper mcp --write`) on a git vault, driven over stdio: each
//! tool checked against the files on disk and `git log`, stale hashes refused, a human's
//! pending edits kept out of the tool's commit, `git revert` of one commit restoring the file,
//! and paths outside the vault, oversized content and a vault without git refused with
//! nothing written. Off by default: without `--write` the tools are not there.

use serde_json::{Value, json};
use vaultkeeper_testkit::git::{FAST, GitVault};

use crate::mcp::{Mcp, build_cache, read};
use crate::util::{BIN, hash};

/// A git vault with a few notes, committed, and its cache built.
fn vault() -> GitVault {
    let g = GitVault::new(BIN, &format!("{FAST}[mcp]\nmax_write_bytes = 4096\n"));
    g.v.write(
        "Notes/Plan.md",
        "---\ntitle: Plan\nstatus: draft\n---\n# Plan\n\n## Steps\nold step\n\n## Notes\nkeep\n",
    );
    g.v.write("Other.md", "# Other\n\nSee [[Plan]].\n");
    // As `vaultkeeper init --git` writes it: the trash is not part of the history.
    g.v.write(".gitignore", ".trash/\n");
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "init"]);
    build_cache(&g.v, &[]);
    g
}

fn mcp(g: &GitVault) -> Mcp {
    let mut m = Mcp::spawn_cmd(&g.v, g.cmd(), &["--write"]);
    m.handshake();
    m
}

fn hash_of(g: &GitVault, rel: &str) -> String {
    hash(&read(&g.v.root, rel))
}

/// The last commit's message and the paths it changed (`--name-status`).
fn last_commit(g: &GitVault) -> (String, String) {
    (
        g.git(&["log", "-1", "--format=%B"]),
        g.git(&["show", "--format=", "--name-status", "-M", "HEAD"]),
    )
}

#[test]
fn write_tools_are_off_by_default_and_listed_with_write() {
    let g = vault();
    let mut ro = Mcp::spawn_cmd(&g.v, g.cmd(), &[]);
    ro.handshake();
    let names = |m: &mut Mcp| -> Vec<String> {
        m.result("tools/list", json!({}))["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().expect("name").to_string())
            .collect()
    };
    assert!(!names(&mut ro).iter().any(|n| n == "append_to_note"));
    let mut rw = mcp(&g);
    let all = names(&mut rw);
    for t in [
        "create_note",
        "append_to_note",
        "replace_section",
        "set_frontmatter_field",
        "remove_frontmatter_field",
        "replace_text",
        "move_note",
        "delete_note",
        "search_notes",
    ] {
        assert!(all.iter().any(|n| n == t), "{t} missing from {all:?}");
    }
}

#[test]
fn integer_arguments_are_plain_bounded_integers_and_strings_are_accepted() {
    let g = vault();
    let mut m = mcp(&g);
    let tools = m.result("tools/list", json!({}));
    let search = tools["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "search_notes")
        .expect("search_notes")
        .clone();
    let limit = &search["inputSchema"]["properties"]["limit"];
    assert_eq!(limit["type"], "integer", "{limit}");
    assert_eq!(limit["minimum"], 1, "{limit}");
    assert_eq!(limit["maximum"], 200, "{limit}");
    assert!(limit.get("format").is_none(), "{limit}");
    // What the MCP Inspector's CLI sends.
    let hits = m.ok("search_notes", json!({"query": "plan", "limit": "1"}));
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(1), "{hits}");
    let bad = m.err("search_notes", json!({"query": "plan", "limit": "two"}));
    assert!(bad.contains("whole number"), "{bad}");
}

#[test]
fn each_write_tool_is_one_commit_naming_tool_client_and_path() {
    let g = vault();
    let mut m = mcp(&g);
    let before = g.commits();

    // read_note's hash is the one the writes take.
    let note = m.ok("read_note", json!({"note": "Notes/Plan.md"}));
    let h = note["hash"].as_str().expect("hash").to_string();
    assert_eq!(h, hash_of(&g, "Notes/Plan.md"));

    let r = m.ok(
        "append_to_note",
        json!({"path": "Notes/Plan.md", "expected_hash": h, "text": "- appended"}),
    );
    assert!(read(&g.v.root, "Notes/Plan.md").ends_with("keep\n- appended\n"));
    assert_eq!(r["hash"], json!(hash_of(&g, "Notes/Plan.md")));
    let (msg, files) = last_commit(&g);
    assert!(
        msg.starts_with("mcp append_to_note: Notes/Plan.md"),
        "{msg}"
    );
    assert!(msg.contains("Client: vaultkeeper-test 0"), "{msg}");
    assert_eq!(files.trim(), "M\tNotes/Plan.md");
    assert_eq!(r["commit"], json!(g.head()));

    let r = m.ok(
        "replace_section",
        json!({"path": "Notes/Plan.md", "expected_hash": r["hash"], "heading": "Steps", "content": "new step"}),
    );
    assert!(read(&g.v.root, "Notes/Plan.md").contains("## Steps\nnew step\n\n## Notes\nkeep\n"));
    let r = m.ok(
        "set_frontmatter_field",
        json!({"path": "Notes/Plan.md", "expected_hash": r["hash"], "key": "status", "value": "done"}),
    );
    assert!(read(&g.v.root, "Notes/Plan.md").starts_with("---\ntitle: Plan\nstatus: done\n---\n"));
    let r = m.ok(
        "remove_frontmatter_field",
        json!({"path": "Notes/Plan.md", "expected_hash": r["hash"], "key": "title"}),
    );
    assert!(read(&g.v.root, "Notes/Plan.md").starts_with("---\nstatus: done\n---\n"));
    let r = m.ok(
        "replace_text",
        json!({"path": "Notes/Plan.md", "expected_hash": r["hash"], "old_text": "keep", "new_text": "kept"}),
    );
    assert!(read(&g.v.root, "Notes/Plan.md").contains("## Notes\nkept\n"));
    let created = m.ok(
        "create_note",
        json!({"path": "New/Idea.md", "content": "# Idea\n"}),
    );
    assert_eq!(read(&g.v.root, "New/Idea.md"), "# Idea\n");
    assert_eq!(last_commit(&g).1.trim(), "A\tNew/Idea.md");
    let dup = m.err(
        "create_note",
        json!({"path": "New/Idea.md", "content": "other"}),
    );
    assert!(dup.contains("already exists"), "{dup}");
    m.ok(
        "delete_note",
        json!({"path": "New/Idea.md", "expected_hash": created["hash"]}),
    );
    assert!(!g.v.path("New/Idea.md").exists());
    assert_eq!(read(&g.v.root, ".trash/New/Idea.md"), "# Idea\n");
    assert_eq!(last_commit(&g).1.trim(), "D\tNew/Idea.md");
    let _ = r;
    // One commit per write: append, section, set, remove, replace, create, delete.
    assert_eq!(g.commits(), before + 7);
    assert_eq!(g.porcelain(), "", "every write is committed");
    let full = g.git(&["log", "-p", "-7", "--format=%s"]);
    assert!(full.contains("+- appended"), "{full}");
}

#[test]
fn a_stale_hash_is_refused_and_the_human_text_survives() {
    let g = vault();
    let mut m = mcp(&g);
    let h = hash_of(&g, "Notes/Plan.md");
    let human = "---\ntitle: Plan\n---\n# Plan\n\nthe human's edit\n";
    g.v.write("Notes/Plan.md", human);
    let err = m.err(
        "append_to_note",
        json!({"path": "Notes/Plan.md", "expected_hash": h, "text": "tool text"}),
    );
    let current = hash(human);
    assert!(err.contains("changed since it was read"), "{err}");
    assert!(err.contains(&current), "the current hash is given: {err}");
    assert_eq!(read(&g.v.root, "Notes/Plan.md"), human);
}

#[test]
fn human_pending_edits_stay_out_of_the_tool_commit_and_revert_restores_the_file() {
    let g = vault();
    let mut m = mcp(&g);
    // The human edits two files and commits neither.
    g.v.write("Other.md", "# Other\n\nhuman, elsewhere\n");
    let human = "# Plan\n\nhuman, same file\n";
    g.v.write("Notes/Plan.md", human);
    let r = m.ok(
        "append_to_note",
        json!({"path": "Notes/Plan.md", "expected_hash": hash(human), "text": "tool"}),
    );
    // The tool's commit holds only its own change ...
    let diff = g.git(&["show", "--format=", "HEAD"]);
    assert!(diff.contains("+tool"), "{diff}");
    assert!(
        !diff.contains("+human"),
        "the human's edit is not in the tool's commit: {diff}"
    );
    assert_eq!(r["commit"], json!(g.head()));
    // ... the human's edit of that file is its own commit before it, the other file pending.
    let parent = g.git(&["show", "--format=", "HEAD~1", "--", "Notes/Plan.md"]);
    assert!(parent.contains("+human, same file"), "{parent}");
    assert_eq!(g.porcelain().trim(), "M Other.md");
    // Reverting the tool's commit gives back exactly the human's text.
    g.git(&["revert", "--no-edit", "HEAD"]);
    assert_eq!(read(&g.v.root, "Notes/Plan.md"), human);
}

#[test]
fn escapes_oversize_and_no_git_are_refused_and_nothing_is_written() {
    let g = vault();
    let outside = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(outside.path(), g.v.path("out")).expect("symlink");
    g.git(&["add", "out"]);
    g.git(&["commit", "-q", "-m", "link"]);
    let mut m = mcp(&g);
    let head = g.head();
    for (path, want) in [
        ("../escape.md", "outside the vault"),
        ("/tmp/abs.md", "outside the vault"),
        ("out/x.md", "symlink"),
        (".git/hooks/pre-commit", "inside .git"),
    ] {
        let e = m.err("create_note", json!({"path": path, "content": "x"}));
        assert!(e.contains(want), "{path}: {e}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).expect("list").count(), 0);
    let big = "x".repeat(5000);
    let e = m.err(
        "append_to_note",
        json!({"path": "Notes/Plan.md", "expected_hash": hash_of(&g, "Notes/Plan.md"), "text": big}),
    );
    assert!(e.contains("above the limit of 4096 bytes"), "{e}");
    assert_eq!(g.head(), head);
    assert_eq!(g.porcelain(), "");

    // A vault without git: refused, nothing written.
    let plain = GitVault::plain(BIN, "");
    plain.v.write("a.md", "# a\n");
    build_cache(&plain.v, &[]);
    let mut m = Mcp::spawn_cmd(&plain.v, plain.cmd(), &["--write"]);
    m.handshake();
    let e = m.err("create_note", json!({"path": "b.md", "content": "x"}));
    assert!(e.contains("need git"), "{e}");
    assert!(!plain.v.path("b.md").exists());
    let v: Value = m.ok("read_note", json!({"note": "a.md"}));
    assert_eq!(v["path"], "a.md");
}
