//! The architecture as the crate graph holds it: a test over `cargo metadata` that fails
//! when a crate gains a dependency its place does not allow (say, `watch` on `cache`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Workspace crates, by short name (`vaultkeeper-cache` is `cache`; the binary is `bin`),
/// with the workspace crates each depends on normally (not as a dev-dependency).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let short = |name: &str| -> Option<String> {
        if name == "vaultkeeper" {
            Some("bin".to_string())
        } else {
            name.strip_prefix("vaultkeeper-").map(str::to_string)
        }
    };
    let mut graph = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let Some(name) = p["name"].as_str().and_then(short) else {
            continue;
        };
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().and_then(short))
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// What each crate may depend on among the workspace's crates. Anything else fails.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("vaultfs", &["core"]),
    ("journal", &["core"]),
    ("runner", &["core", "journal"]),
    ("watch", &["core", "vaultfs", "journal"]),
    // The consumers: the contract, the bus and the runner, never one another.
    ("cache", &["core", "vaultfs", "journal"]),
    ("git", &["core", "vaultfs", "journal", "runner"]),
    ("amqp", &["core", "journal", "runner"]),
    ("rules", &["core", "journal", "runner"]),
    // Safe writes: not a consumer; reads the cache's link rows (read-only) and commits
    // through git's one commit path. Used by `mv` and the MCP write tools.
    ("write", &["core", "cache", "git"]),
    // Readers of the cache and the journal, through their read-only types; writes only
    // through `write`.
    ("mcp", &["core", "vaultfs", "journal", "cache", "write"]),
    // The local HTTP API: it reads the journal for its event streams (each client by its
    // own cursor); everything else it serves comes from the binary through its Backend.
    ("api", &["core", "journal"]),
    // Dev-only: tests and benchmarks.
    ("testkit", &["core", "vaultfs", "journal", "runner"]),
];

const CONSUMERS: &[&str] = &["cache", "git", "amqp", "rules"];

fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, deps) in graph {
        if name == "bin" {
            if deps.contains("testkit") {
                bad.push("the binary depends on testkit (dev-only)".to_string());
            }
            continue;
        }
        let Some((_, allowed)) = ALLOWED.iter().find(|(n, _)| n == name) else {
            bad.push(format!(
                "crate {name} has no place in the architecture (tests/integration/boundaries.rs)"
            ));
            continue;
        };
        for d in deps {
            if !allowed.contains(&d.as_str()) {
                bad.push(format!("{name} depends on {d}"));
            }
        }
        if CONSUMERS.contains(&name.as_str()) {
            for d in deps.iter().filter(|d| CONSUMERS.contains(&d.as_str())) {
                bad.push(format!("consumer {name} depends on consumer {d}"));
            }
        }
    }
    bad
}

#[test]
fn the_crate_graph_is_the_architecture() {
    let graph = graph();
    for name in ALLOWED.iter().map(|(n, _)| n) {
        assert!(
            graph.contains_key(*name),
            "crate {name} is missing: {graph:?}"
        );
    }
    let bad = violations(&graph);
    assert!(bad.is_empty(), "boundaries broken: {bad:#?}");
}

#[test]
fn a_forbidden_edge_is_caught() {
    // The check itself must be able to fail: add `watch -> cache` and `cache -> git`.
    let mut graph = graph();
    graph
        .entry("watch".into())
        .or_default()
        .insert("cache".into());
    graph
        .entry("cache".into())
        .or_default()
        .insert("git".into());
    let bad = violations(&graph);
    assert!(
        bad.contains(&"watch depends on cache".to_string()),
        "{bad:?}"
    );
    assert!(
        bad.contains(&"consumer cache depends on consumer git".to_string()),
        "{bad:?}"
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Code outside of `#[cfg(test)]` modules: the unit tests may build whatever they need.
fn non_test_code(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

#[test]
fn main_reaches_only_the_cli() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).expect("main.rs");
    let code: Vec<&str> = main
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .collect();
    for line in &code {
        assert!(
            !line.starts_with("mod ") && !line.starts_with("use "),
            "main.rs declares or imports more than the CLI: {line}"
        );
    }
    let paths: Vec<&str> = main
        .match_indices("vaultkeeper::")
        .map(|(i, _)| &main[i..])
        .collect();
    assert!(!paths.is_empty(), "main.rs does not call the CLI");
    for p in paths {
        assert!(
            p.starts_with("vaultkeeper::cli::"),
            "main.rs reaches past the CLI: {p:.40}"
        );
    }
}

/// Names that write: a reader that mentions one of them is not read-only.
const WRITERS: &[&str] = &[
    "Journal::open",
    "Journal::create",
    "CacheConsumer",
    "schema::open_rw",
    "reindex(",
    "Connection::open(",
    "OpenFlags::SQLITE_OPEN_READ_WRITE",
];

/// What readers may not mention at all: they open the cache and the journal only through
/// `CacheReader` and `JournalReader`, never a connection or a journal of their own.
const RAW_HANDLES: &[&str] = &["Journal::", "schema::", "rusqlite::", "Connection"];

/// Words in a method's name or body that write.
const WRITE_WORDS: &[&str] = &[
    "&mut self",
    "fn append",
    "fn set_",
    "fn add_",
    "fn remove",
    "fn forget",
    "fn prune",
    "fn request_",
    "fn retry",
    "fn write",
    "fn insert",
    "fn delete",
    "fn apply",
    "fn reindex",
    ".execute",
    "transaction",
    "open_rw",
    "open_beside_daemon",
    "Journal::open(",
    "Connection::open(",
    "SQLITE_OPEN_READ_WRITE",
    "SQLITE_OPEN_CREATE",
];

/// The read-only types, by file, with the read-only open each must use.
const READER_TYPES: &[(&str, &str)] = &[
    ("crates/cache/src/reader.rs", "schema::open_ro("),
    ("crates/journal/src/reader.rs", "Journal::open_readonly("),
];

/// Why the non-test code of a reader type's file could write (empty: it cannot).
fn writes_in(code: &str) -> Vec<&'static str> {
    WRITE_WORDS
        .iter()
        .copied()
        .filter(|w| code.contains(w))
        .collect()
}

#[test]
fn readers_use_read_only_types() {
    let mut files = rust_files(&root().join("crates/mcp/src"));
    files.push(root().join("src/commands/query.rs"));
    files.push(root().join("src/render/query.rs"));
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for w in WRITERS.iter().chain(RAW_HANDLES) {
            if non_test_code(&text).contains(w) {
                bad.push(format!("{} uses {w}", f.display()));
            }
        }
    }
    // The readers do go through the read-only types (not, say, through nothing at all).
    let uses = |file: &str, ty: &str| {
        let text = std::fs::read_to_string(root().join(file)).expect("read");
        if !non_test_code(&text).contains(ty) {
            Some(format!("{file} does not use {ty}"))
        } else {
            None
        }
    };
    bad.extend(uses("crates/mcp/src/store.rs", "CacheReader"));
    bad.extend(uses("crates/mcp/src/store.rs", "JournalReader"));
    bad.extend(uses("src/render/query.rs", "CacheReader"));
    for (file, open) in READER_TYPES {
        let text = std::fs::read_to_string(root().join(file)).expect("read");
        let code = non_test_code(&text);
        if !code.contains(open) {
            bad.push(format!("{file} does not open with {open}"));
        }
        for w in writes_in(code) {
            bad.push(format!("{file} (a read-only type) has {w:?}"));
        }
    }
    assert!(bad.is_empty(), "a reader reaches a writer: {bad:#?}");
}

#[test]
fn a_writing_reader_is_caught() {
    // The check over the reader types must be able to fail.
    let code = "impl JournalReader {\n    pub fn set_cursor(&self, c: &str, seq: u64) {\n        self.conn.execute(\"UPDATE\", []);\n    }\n}\n";
    let found = writes_in(code);
    assert!(found.contains(&"fn set_"), "{found:?}");
    assert!(found.contains(&".execute"), "{found:?}");
    assert!(writes_in("pub fn head(&self) -> u64 { 0 }").is_empty());
}
