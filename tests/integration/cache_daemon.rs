//! The shadow cache through the real daemon and CLI: live edits, a `kill -9` during a burst
//! compared row for row with a fresh `reindex`, `sql` refusals, and the sample vault.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vaultkeeper_testkit::cache::{assert_cache_equals_fresh_reindex, cache_cursor};

use crate::util::{BIN, TestVault, wait_until};

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
    let v = TestVault::with_config(BIN, FAST);
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

#[test]
fn cache_after_kill9_during_a_burst_equals_a_fresh_reindex() {
    let v = TestVault::with_config(BIN, FAST);
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
    let v = TestVault::new(BIN);
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
    let v = TestVault::with_config(BIN, FAST);
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
