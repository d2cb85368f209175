//! The shadow cache through the real daemon and CLI: live edits, a `kill -9` during a burst
//! compared row for row with a fresh `reindex`, `sql` refusals, and the sample vault.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::util::{TestVault, wait_until};

const FAST: &str = "[watch]\ndebounce = \"20ms\"\n";

/// Runs a query command with `--json`; `None` when it fails (no cache yet, note not found).
fn query(v: &TestVault, args: &[&str]) -> Option<Value> {
    let out = v.cmd().arg("--json").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn paths_of(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn search_paths(v: &TestVault, word: &str) -> Vec<String> {
    query(v, &["search", word])
        .map(|r| paths_of(&r, "hits", "path"))
        .unwrap_or_default()
}

/// (source, target_path) of every link in `links`/`backlinks`/`unresolved` output.
fn link_pairs(r: &Value) -> Vec<(String, Option<String>)> {
    r["links"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    (
                        l["path"].as_str().unwrap_or("").to_string(),
                        l["target_path"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// Generous: the whole suite runs in parallel on 2 cores.
const T: Duration = Duration::from_secs(60);

#[test]
fn cache_follows_edits_while_the_daemon_runs() {
    let v = TestVault::with_config(FAST);
    v.write("Hub.md", "# Hub\n\nSee [[Target]] and [[Later]].\n");
    v.write("Target.md", "# Target\n\ntarget text\n");
    let d = v.start();
    wait_until("the hub indexed", T, || {
        query(&v, &["backlinks", "Target"])
            .is_some_and(|r| link_pairs(&r).contains(&("Hub.md".into(), Some("Target.md".into()))))
    });

    // A new note becomes searchable.
    v.write("New.md", "# New\n\nxylophonequartz appears here\n");
    wait_until("the new note searchable", T, || {
        search_paths(&v, "xylophonequartz") == vec!["New.md".to_string()]
    });

    // A renamed note's backlinks resolve to the new path.
    std::fs::create_dir_all(v.path("moved")).expect("mkdir");
    std::fs::rename(v.path("Target.md"), v.path("moved/Target.md")).expect("rename");
    wait_until("backlinks follow the rename", T, || {
        query(&v, &["backlinks", "moved/Target.md"]).is_some_and(|r| {
            link_pairs(&r) == vec![("Hub.md".into(), Some("moved/Target.md".into()))]
        })
    });
    wait_until("the hub's link points at the new path", T, || {
        query(&v, &["links", "Hub"]).is_some_and(|r| {
            link_pairs(&r).contains(&("Hub.md".into(), Some("moved/Target.md".into())))
        })
    });

    // A deleted target's links become unresolved.
    std::fs::remove_file(v.path("moved/Target.md")).expect("delete");
    wait_until("the link to the deleted target unresolved", T, || {
        query(&v, &["unresolved"])
            .is_some_and(|r| link_pairs(&r).contains(&("Hub.md".into(), None)))
            && query(&v, &["links", "Hub"])
                .is_some_and(|r| link_pairs(&r).iter().all(|(_, to)| to.is_none()))
    });

    // A note created for an unresolved link resolves it.
    v.write("sub/Later.md", "# Later\n");
    wait_until("the unresolved link resolved by a new note", T, || {
        query(&v, &["backlinks", "sub/Later.md"])
            .is_some_and(|r| link_pairs(&r) == vec![("Hub.md".into(), Some("sub/Later.md".into()))])
    });
    let unresolved = query(&v, &["unresolved"]).expect("unresolved");
    assert_eq!(
        unresolved["links"]
            .as_array()
            .map(|a| a.iter().filter(|l| l["target_raw"] == "Later").count()),
        Some(0),
        "{unresolved}"
    );
    d.stop();
}

fn ro(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open cache ro")
}

pub(crate) fn cache_cursor(db: &Path) -> Option<u64> {
    if !db.exists() {
        return None;
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| {
        r.get::<_, String>(0)
    })
    .ok()?
    .parse()
    .ok()
}

/// Every row of every content table, as text, sorted. Excluded: `meta` (the cursor differs by
/// construction), `notes.id` and the FTS rowid (row ids depend on insertion order, so the FTS
/// rows are keyed by the note's path instead), and `notes.mtime` (an event's mtime is the stat
/// made when it was observed; a later write with the same content is, by design, no work for
/// the cache, so its mtime may lag the disk while every derived row is identical).
pub(crate) fn dump(db: &Path) -> Vec<(String, Vec<String>)> {
    let c = ro(db);
    let queries = [
        (
            "notes",
            "SELECT path, name_key, title, title_from, frontmatter, aliases, size, hash, words, is_markdown, error FROM notes",
        ),
        ("tags", "SELECT * FROM tags"),
        ("links", "SELECT * FROM links"),
        ("headings", "SELECT * FROM headings"),
        ("blocks", "SELECT * FROM blocks"),
        ("tasks", "SELECT * FROM tasks"),
        ("fields", "SELECT * FROM fields"),
        (
            "notes_fts",
            "SELECT n.path, f.title, f.body FROM notes_fts f JOIN notes n ON n.id = f.rowid",
        ),
    ];
    // Every table of the schema is covered (so a new table cannot silently escape the check).
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'notes_fts_%' AND name NOT LIKE 'sqlite_%'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    for t in &tables {
        assert!(
            t == "meta" || queries.iter().any(|(n, _)| n == t),
            "table {t} is not compared"
        );
    }
    queries
        .iter()
        .map(|(name, q)| {
            let mut st = c.prepare(q).expect("prepare");
            let n = st.column_count();
            let mut rows: Vec<String> = st
                .query_map([], |r| {
                    let mut cols = Vec::with_capacity(n);
                    for i in 0..n {
                        cols.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(cols.join("|"))
                })
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            rows.sort();
            (name.to_string(), rows)
        })
        .collect()
}

/// Rebuilds the vault's cache with `reindex` into a fresh state folder and asserts that `db`
/// holds the same rows, table by table; returns the live dump.
pub(crate) fn assert_cache_equals_fresh_reindex(
    v: &TestVault,
    db: &Path,
) -> Vec<(String, Vec<String>)> {
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = v
        .cmd()
        .env("VAULTKEEPER_STATE_DIR", fresh.path())
        .args(["reindex"])
        .output()
        .expect("reindex");
    assert!(
        out.status.success(),
        "reindex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = dump(db);
    let rebuilt = dump(&fresh.path().join("cache.db"));
    for ((name, a), (_, b)) in live.iter().zip(&rebuilt) {
        if a != b {
            let only_live: Vec<_> = a.iter().filter(|r| !b.contains(r)).take(5).collect();
            let only_fresh: Vec<_> = b.iter().filter(|r| !a.contains(r)).take(5).collect();
            panic!(
                "table {name}: {} rows live, {} rebuilt\nonly live: {only_live:#?}\nonly rebuilt: {only_fresh:#?}",
                a.len(),
                b.len()
            );
        }
    }
    live
}

#[test]
fn cache_after_kill9_during_a_burst_equals_a_fresh_reindex() {
    let v = TestVault::with_config(FAST);
    for i in 0..50 {
        v.write(
            &format!("base/B{i}.md"),
            &format!("# B{i}\n\n[[N{}]] #base\n", i * 7),
        );
    }
    let mut d = v.start();
    let db = v.state_dir().join("cache.db");
    wait_until("the first full index", T, || cache_cursor(&db).is_some());

    // 2,000 edits: creates of N0..N1199 and 800 modifications, with links among them and to
    // the base notes, so renames of resolution happen throughout.
    let total = 2000;
    let mut killed = false;
    for k in 0..total {
        let (i, round) = if k < 1200 {
            (k, 0)
        } else {
            ((k - 1200) * 3 % 1200, 1)
        };
        v.write(
            &format!("n/{}/N{i}.md", i % 10),
            &format!(
                "# N{i} r{round}\n\nword{i} [[N{}]] [[B{}]] [[Missing{}]] #t{}\n- [ ] task {round}\nkey:: v{round}\n",
                (i + 1) % 1300,
                i % 60,
                i % 5,
                i % 7
            ),
        );
        if k == 700 {
            d.kill9();
            killed = true;
        }
    }
    assert!(killed);
    let d = v.start();
    let journal_head = || v.journal().and_then(|j| j.head().ok()).unwrap_or(0);
    // The restart scan journals what happened while the daemon was down; wait until the
    // cache has applied all of it (the last created file is in the journal and the cursor is
    // at the head).
    let last = format!("n/{}/N1199.md", 1199 % 10);
    wait_until(
        "the journal to know the whole burst",
        Duration::from_secs(60),
        || v.events().iter().any(|e| e.file_path == last),
    );
    let sentinel_events = v.events_before_sentinel().len();
    assert!(sentinel_events > 0);
    wait_until(
        "the cache cursor at the journal head",
        Duration::from_secs(60),
        || {
            let head = journal_head();
            cache_cursor(&db).is_some_and(|c| c >= head && head > 0)
        },
    );
    d.stop();

    // The sentinel note from events_before_sentinel is in both (it exists on disk).
    let live = assert_cache_equals_fresh_reindex(&v, &db);
    let notes = &live[0].1;
    assert!(notes.len() >= 1250, "{} notes", notes.len());
}

#[test]
fn cache_sql_refuses_writes() {
    let v = TestVault::new();
    v.write("A.md", "# A\n");
    let out = v.run(&["reindex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = v.run(&["--json", "sql", "SELECT count(*) AS n FROM notes"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let r: Value = serde_json::from_slice(&ok.stdout).expect("json");
    assert_eq!(r["rows"][0][0], 1, "{r}");
    for (stmt, why) in [
        ("INSERT INTO notes(path) VALUES('x')", "INSERT"),
        ("UPDATE notes SET title = 'x'", "UPDATE"),
        ("DELETE FROM notes", "DELETE"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
        ("PRAGMA user_version = 5", "PRAGMA"),
        ("PRAGMA journal_mode=DELETE", "PRAGMA"),
        ("SELECT 1; DELETE FROM notes", "more than one statement"),
        ("  /* hi */ delete from tags", "DELETE"),
        ("WITH x AS (SELECT 1) DELETE FROM notes", "may write"),
    ] {
        let out = v.run(&["sql", stmt]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stmt} was accepted");
        assert!(
            err.contains("refused") && err.contains(why),
            "{stmt}: unclear message {err}"
        );
    }
    let after = v.run(&["--json", "sql", "SELECT count(*) FROM notes"]);
    let r: Value = serde_json::from_slice(&after.stdout).expect("json");
    assert_eq!(r["rows"][0][0], 1, "{r}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if e.file_type().expect("type").is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn cache_sample_vault_through_the_daemon() {
    let v = TestVault::with_config(FAST);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-vault"),
        &v.root,
    );
    let d = v.start();
    let mut info = Value::Null;
    wait_until("Alpha Plan with its backlinks", T, || {
        info = query(&v, &["note", "Alpha Plan"]).unwrap_or(Value::Null);
        paths_of(&info, "backlinks", "path").len() >= 3
    });
    assert_eq!(info["path"], "Projects/Alpha Plan.md", "{info}");
    let mut from = paths_of(&info, "backlinks", "path");
    from.sort();
    from.dedup();
    assert!(from.contains(&"Home.md".to_string()), "{info}");
    assert!(from.contains(&"Projects/Beta.md".to_string()), "{info}");
    d.stop();
}
