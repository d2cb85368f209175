//! `vaultkeeper search` through the CLI: a query starting with `-` is a query, `--field`,
//! `--substring`, and a cache of the previous schema (before the search tokenizer) asking for
//! a reindex, then working after it.

use serde_json::Value;

use crate::util::{BIN, TestVault};

fn search(v: &TestVault, args: &[&str]) -> Result<Vec<String>, String> {
    let out = v.cmd().arg("--json").arg("search").args(args).output();
    let out = out.map_err(|e| e.to_string())?;
    if !out.status.success() {
        // Under --json the command's errors are JSON on stdout; clap's own are on stderr.
        let json: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        let message = json
            .as_ref()
            .and_then(|j| j["error"]["message"].as_str())
            .unwrap_or_default();
        return Err(format!("{message}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let r: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(r["hits"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn vault() -> TestVault {
    let v = TestVault::new(BIN);
    v.write(
        "Embeds.md",
        "# Embeds\nEmbedding files shows them inline.\n",
    );
    v.write(
        "Styled.md",
        "---\ncssclasses: soft-embed\nstatus: draft\n---\nA styled page.\n",
    );
    v.write(
        "Compound.md",
        "---\nstatus: done\n---\nDas Sprachmodell lernt.\n",
    );
    let out = v.run(&["reindex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

#[test]
fn hyphen_queries_fields_and_substrings() {
    let v = vault();
    // Not a flag: the hyphen is punctuation, the word is searched.
    let hits = search(&v, &["-inline"]).expect("-word");
    assert_eq!(hits, vec!["Embeds.md".to_string()]);
    let hits = search(&v, &["--limit", "5", "-embed*"]).expect("-prefix*");
    assert_eq!(hits.len(), 2, "{hits:?}");
    let hits = search(&v, &["--field", "status=draft", "embed*"]).expect("field");
    assert_eq!(hits, vec!["Styled.md".to_string()]);
    let hits = search(&v, &["--field", "STATUS=Done"]).expect("field only");
    assert_eq!(hits, vec!["Compound.md".to_string()]);
    assert!(search(&v, &["modell"]).expect("word").is_empty());
    let hits = search(&v, &["--substring", "modell"]).expect("substring");
    assert_eq!(hits, vec!["Compound.md".to_string()]);
    let err = search(&v, &["--field", "novalue", "x"]).expect_err("bad field");
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = search(&v, &[]).expect_err("empty");
    assert!(err.contains("empty search"), "{err}");
}

#[test]
fn a_cache_of_the_old_schema_asks_for_a_reindex_then_searches() {
    let v = vault();
    let db = v.state_dir().join("cache.db");
    {
        // The shape of schema 1: FTS5's own tokenizer over title and body, no `bodies`.
        let c = rusqlite::Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP TABLE notes_vocab; DROP TABLE notes_fts; DROP TABLE bodies;
             CREATE VIRTUAL TABLE notes_fts USING fts5(title, body);
             PRAGMA user_version = 1;",
        )
        .expect("downgrade");
    }
    let err = search(&v, &["embedding"]).expect_err("stale");
    assert!(err.contains("reindex"), "{err}");
    let out = v.run(&["reindex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        search(&v, &["embedding"]).expect("after"),
        vec!["Embeds.md".to_string()]
    );
}
