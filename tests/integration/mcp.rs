//! `vaultkeeper mcp` driven over stdio with JSON-RPC on a copy of the obsidian-help-en vault:
//! every tool and the note resources, with results checked against the vault's files.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaultkeeper_cache::{CacheConfig, apply::vault_files, reindex};
use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_journal::Journal;

use crate::util::{BIN, TestVault, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The obsidian-help-en vault: `$VAULTKEEPER_HELP_VAULT`, else `shared/vaults/obsidian-help-en`
/// next to the crate (or its parent folder).
pub(crate) fn help_vault() -> PathBuf {
    if let Some(p) = std::env::var_os("VAULTKEEPER_HELP_VAULT") {
        let p = PathBuf::from(p);
        assert!(
            p.is_dir(),
            "VAULTKEEPER_HELP_VAULT={} is not a folder",
            p.display()
        );
        return p;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = manifest
        .ancestors()
        .skip(1)
        .take(2)
        .map(|a| a.join("shared/vaults/obsidian-help-en"))
        .collect();
    candidates
        .iter()
        .find(|c| c.is_dir())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the obsidian-help-en vault is absent (looked in {candidates:?}): \
                 set VAULTKEEPER_HELP_VAULT to its folder"
            )
        })
}

/// Copies `src` into `dst` (regular files and folders only), leaving the copies writable.
pub(crate) fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("entry");
        let ft = entry.file_type().expect("file type");
        let to = dst.join(entry.file_name());
        if ft.is_dir() {
            copy_tree(&entry.path(), &to);
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &to).expect("copy");
            let mut perm = std::fs::metadata(&to).expect("meta").permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&to, perm).expect("chmod");
        }
    }
}

/// Markdown files on disk, vault-relative, skipping dot folders as the cache does.
fn markdown_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && entry.path().extension().is_some_and(|e| e == "md") {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .expect("under root")
                    .to_owned();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Indexes the vault into the state folder the binary uses, plus `extra` paths (files the
/// vault walk skips, such as symlinks).
pub(crate) fn build_cache(tv: &TestVault, extra: &[&str]) {
    let mut files = vault_files(&tv.root).expect("walk vault");
    files.extend(extra.iter().map(|s| s.to_string()));
    reindex(
        &tv.state_dir().join("cache.db"),
        &tv.root,
        files.into_iter(),
        0,
        &CacheConfig::default(),
    )
    .expect("reindex");
}

/// A running `vaultkeeper mcp` and its JSON-RPC stream.
pub(crate) struct Mcp {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: u64,
    stderr: PathBuf,
}

impl Mcp {
    pub(crate) fn spawn(tv: &TestVault) -> Mcp {
        Mcp::spawn_cmd(tv, tv.cmd(), &[])
    }

    /// `vaultkeeper mcp ARGS` from a prepared command (git isolated, say).
    pub(crate) fn spawn_cmd(tv: &TestVault, mut cmd: std::process::Command, args: &[&str]) -> Mcp {
        let stderr = tv.state.path().join("mcp.stderr");
        let mut child = cmd
            .arg("mcp")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn vaultkeeper mcp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Mcp {
            stdin: child.stdin.take(),
            child,
            rx,
            next_id: 1,
            stderr,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to mcp");
        stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str) {
        self.send(&json!({"jsonrpc": "2.0", "method": method}));
    }

    /// Sends a request and returns the whole response (`result` or `error`).
    pub(crate) fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(msg) if msg["id"] == json!(id) => {
                    assert_eq!(msg["jsonrpc"], "2.0", "{msg}");
                    return msg;
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no answer to {method} within {TIMEOUT:?}; stderr:\n{}",
                        self.log()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("mcp closed stdout during {method}; stderr:\n{}", self.log())
                }
            }
        }
    }

    pub(crate) fn result(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp["result"].clone()
    }

    /// initialize (protocol 2025-06-18) and notifications/initialized; returns the result.
    pub(crate) fn handshake(&mut self) -> Value {
        let init = self.result(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "vaultkeeper-test", "version": "0"}
            }),
        );
        self.notify("notifications/initialized");
        init
    }

    /// Calls a tool: (is_error, text of the first content item).
    pub(crate) fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let r = self.result("tools/call", json!({"name": tool, "arguments": args}));
        let text = r["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{tool}: no text content: {r}"))
            .to_string();
        (r["isError"] == json!(true), text)
    }

    /// Calls a tool that must succeed and parses its JSON answer.
    pub(crate) fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (err, text) = self.call(tool, args.clone());
        assert!(!err, "{tool}({args}) failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{tool}: not JSON ({e}): {text}"))
    }

    /// Calls a tool that must fail and returns its message.
    pub(crate) fn err(&mut self, tool: &str, args: Value) -> String {
        let (err, text) = self.call(tool, args.clone());
        assert!(err, "{tool}({args}) should fail, got: {text}");
        text
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn paths_of(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {list}"))
        .iter()
        .map(|h| h["path"].as_str().expect("path").to_string())
        .collect()
}

fn append_events(tv: &TestVault) -> Vec<(Kind, &'static str)> {
    let appended = vec![
        (Kind::Created, "Home.md"),
        (Kind::Modified, "Plugins/Backlinks.md"),
        (Kind::Deleted, "Old note.md"),
    ];
    std::fs::create_dir_all(tv.state_dir()).expect("state dir");
    let mut journal = Journal::open(&tv.state_dir().join("journal.db")).expect("journal");
    let mut events: Vec<Event> = appended
        .iter()
        .map(|(kind, path)| {
            Event::builder(*kind, *path)
                .read(1, None, Some("CONTENT MUST NOT BE SHOWN".into()))
                .source("help", "host")
                .origin(Origin::Watch)
                .build()
        })
        .collect();
    journal.append(&mut events, &[]).expect("append");
    appended
}

#[test]
fn mcp_serves_the_help_vault() {
    let source = help_vault();
    let tv = TestVault::new(BIN);
    copy_tree(&source, &tv.root);
    build_cache(&tv, &[]);
    let appended = append_events(&tv);
    let root = tv.root.clone();
    let md = markdown_files(&root);
    assert!(
        md.len() > 100,
        "help vault looks incomplete: {} notes",
        md.len()
    );

    let mut mcp = Mcp::spawn(&tv);

    // Handshake.
    let init = mcp.handshake();
    assert_eq!(init["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(init["serverInfo"]["name"], "vaultkeeper", "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert!(init["capabilities"]["resources"].is_object(), "{init}");
    assert_eq!(mcp.result("ping", json!({})), json!({}));

    // tools/list: every tool, each with an object input schema.
    let tools = mcp.result("tools/list", json!({}));
    let tools = tools["tools"].as_array().expect("tools").clone();
    let mut names: Vec<&str> = tools
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "list_backlinks",
            "list_tags",
            "list_tasks",
            "query_sql",
            "read_note",
            "recent_changes",
            "search_notes"
        ]
    );
    for t in &tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{t}"
        );
    }
    let search_schema = &tools
        .iter()
        .find(|t| t["name"] == "search_notes")
        .expect("search_notes")["inputSchema"];
    for p in ["query", "tag", "path", "limit"] {
        assert!(
            search_schema["properties"][p].is_object(),
            "{p}: {search_schema}"
        );
    }
    assert!(
        search_schema["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("query"))),
        "{search_schema}"
    );

    // read_note: the text is the file's, headings sit on the lines they say.
    let path = "Plugins/Backlinks.md";
    let file = read(&root, path);
    let note = mcp.ok("read_note", json!({"note": path}));
    assert_eq!(note["path"], path);
    assert_eq!(note["content"].as_str(), Some(file.as_str()));
    assert_eq!(note["uri"], "vault:///Plugins/Backlinks.md");
    let lines: Vec<&str> = file.lines().collect();
    let headings = note["headings"].as_array().expect("headings");
    assert!(!headings.is_empty(), "{note}");
    for h in headings {
        let line = lines[h["line"].as_u64().expect("line") as usize - 1];
        assert!(line.starts_with('#'), "heading {h} on line {line:?}");
        assert!(
            line.contains(h["text"].as_str().expect("text")),
            "{h} vs {line:?}"
        );
    }
    // By name, as in a wikilink.
    assert_eq!(
        mcp.ok("read_note", json!({"note": "Backlinks"}))["path"],
        path
    );

    // Backlinks: Aliases.md links to [[Backlinks]] (checked in the file first).
    let linker = "Linking notes and files/Aliases.md";
    assert!(read(&root, linker).contains("[[Backlinks]]"));
    assert!(
        paths_of(&note, "backlinks").contains(&linker.to_string()),
        "{note}"
    );
    let bl = mcp.ok("list_backlinks", json!({"note": "Backlinks"}));
    assert_eq!(bl["note"], path);
    let links = bl["links"].as_array().expect("links");
    assert!(links.iter().any(|l| l["path"] == linker), "{bl}");
    for l in links {
        let from = read(&root, l["path"].as_str().expect("path"));
        let line = from
            .lines()
            .nth(l["line"].as_u64().expect("line") as usize - 1);
        assert!(
            line.is_some_and(|s| s.to_lowercase().contains("backlinks")),
            "backlink {l} not on its line: {line:?}"
        );
    }

    // search_notes: every hit's file holds the word; the note we know is found.
    let found = mcp.ok("search_notes", json!({"query": "Zettelkasten"}));
    let hits = paths_of(&found, "hits");
    assert!(
        hits.contains(&"Import notes/Import Zettelkasten notes.md".to_string()),
        "{found}"
    );
    for h in &hits {
        assert!(
            read(&root, h).to_lowercase().contains("zettelkasten"),
            "{h}"
        );
    }
    assert!(
        found["hits"][0]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains('«')),
        "{found}"
    );
    let in_plugins = mcp.ok(
        "search_notes",
        json!({"query": "Zettelkasten", "path": "Plugins/*"}),
    );
    let ph = paths_of(&in_plugins, "hits");
    assert!(
        ph.contains(&"Plugins/Format converter.md".to_string()),
        "{in_plugins}"
    );
    assert!(ph.iter().all(|p| p.starts_with("Plugins/")), "{in_plugins}");
    let one = mcp.ok("search_notes", json!({"query": "Zettelkasten", "limit": 1}));
    assert_eq!(paths_of(&one, "hits").len(), 1);
    mcp.err("search_notes", json!({"query": "   "}));

    // recent_changes: newest first, no content.
    let recent = mcp.ok("recent_changes", json!({"limit": 2}));
    let events = recent["events"].as_array().expect("events");
    let got: Vec<&str> = events
        .iter()
        .map(|e| e["file_path"].as_str().expect("path"))
        .collect();
    assert_eq!(got, [appended[2].1, appended[1].1], "{recent}");
    assert!(
        events[0]["seq"].as_u64() > events[1]["seq"].as_u64(),
        "{recent}"
    );
    assert!(
        events.iter().all(|e| e.get("content").is_none()),
        "{recent}"
    );
    assert!(!recent.to_string().contains("CONTENT MUST NOT"));

    // list_tags: every tag is written in some note.
    let all_text: String = md.iter().map(|p| read(&root, p).to_lowercase()).collect();
    let tags = mcp.ok("list_tags", json!({}));
    let tags = tags["tags"].as_array().expect("tags");
    assert!(!tags.is_empty());
    for t in tags {
        let tag = t["tag"]
            .as_str()
            .expect("tag")
            .trim_start_matches('#')
            .to_lowercase();
        assert!(all_text.contains(&tag), "tag {t} not in any note");
        assert!(t["notes"].as_u64() >= Some(1), "{t}");
    }

    // list_tasks: open by default, each on its line; the known open task is there.
    let syntax = "Editing and formatting/Basic formatting syntax.md";
    let syntax_lines: Vec<String> = read(&root, syntax).lines().map(String::from).collect();
    assert_eq!(syntax_lines[289], "- [ ] This is an incomplete task.");
    let open = mcp.ok("list_tasks", json!({}));
    let tasks = open["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .any(|t| t["path"] == syntax && t["line"] == 290),
        "{open}"
    );
    for t in tasks {
        assert!(
            !["x", "X", "-"].contains(&t["status"].as_str().expect("status")),
            "{t}"
        );
        let from = read(&root, t["path"].as_str().expect("path"));
        let line = from
            .lines()
            .nth(t["line"].as_u64().expect("line") as usize - 1);
        assert!(
            line.is_some_and(|l| l.contains(t["text"].as_str().expect("text").trim())),
            "task {t} not on its line {line:?}"
        );
    }
    let done = mcp.ok("list_tasks", json!({"state": "done"}));
    assert!(
        done["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .any(|t| t["path"] == syntax && t["line"] == 289),
        "{done}"
    );

    // query_sql: reads, refuses writes.
    let count = mcp.ok(
        "query_sql",
        json!({"sql": "SELECT count(*) AS n FROM notes WHERE is_markdown = 1"}),
    );
    assert_eq!(count["columns"], json!(["n"]));
    assert_eq!(
        count["rows"][0][0].as_u64(),
        Some(md.len() as u64),
        "{count}"
    );
    let refused = mcp.err("query_sql", json!({"sql": "DELETE FROM notes"}));
    assert!(refused.contains("refused"), "{refused}");
    let refused = mcp.err("query_sql", json!({"sql": "SELECT 1; DROP TABLE notes"}));
    assert!(refused.contains("refused"), "{refused}");
    let again = mcp.ok(
        "query_sql",
        json!({"sql": "SELECT count(*) FROM notes WHERE is_markdown = 1"}),
    );
    assert_eq!(again["rows"][0][0].as_u64(), Some(md.len() as u64));

    // Paths outside the vault are refused, with a message, and the server lives on.
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        "Plugins/../../../etc/passwd",
    ] {
        let msg = mcp.err("read_note", json!({"note": bad}));
        assert!(msg.contains("outside the vault"), "{bad}: {msg}");
        let msg = mcp.err("list_backlinks", json!({"note": bad}));
        assert!(msg.contains("outside the vault"), "{bad}: {msg}");
    }
    let missing = mcp.err("read_note", json!({"note": "No such note anywhere"}));
    assert!(missing.contains("No such note anywhere"), "{missing}");

    // Resources: one per note; reading one gives the file's text.
    let listed = mcp.result("resources/list", json!({}));
    let resources = listed["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), md.len());
    let aliases = resources
        .iter()
        .find(|r| r["name"] == linker)
        .unwrap_or_else(|| panic!("{linker} not listed"));
    assert_eq!(
        aliases["uri"],
        "vault:///Linking%20notes%20and%20files/Aliases.md"
    );
    let uri = aliases["uri"].clone();
    let contents = mcp.result("resources/read", json!({"uri": uri}));
    assert_eq!(contents["contents"][0]["uri"], uri);
    assert_eq!(
        contents["contents"][0]["text"].as_str(),
        Some(read(&root, linker).as_str())
    );
    let templates = mcp.result("resources/templates/list", json!({}));
    assert_eq!(
        templates["resourceTemplates"][0]["uriTemplate"],
        "vault:///{path}"
    );
    for bad in [
        "vault:///..%2F..%2Fetc%2Fpasswd",
        "file:///etc/passwd",
        "vault:///No%20such.md",
    ] {
        let resp = mcp.request("resources/read", json!({"uri": bad}));
        assert!(resp["error"]["message"].is_string(), "{bad}: {resp}");
    }

    // Edits applied to the cache show up in the running server.
    let word = "quetzalcoatlus";
    assert!(!all_text.contains(word));
    std::fs::write(
        root.join("Home.md"),
        format!("{}\n{word}\n", read(&root, "Home.md")),
    )
    .expect("edit");
    build_cache(&tv, &[]);
    let found = mcp.ok("search_notes", json!({"query": word}));
    assert_eq!(paths_of(&found, "hits"), ["Home.md"], "{found}");

    // A symlink escaping the vault, even when the cache knows it, is never read.
    let secret = tv.state.path().join("secret.md");
    std::fs::write(&secret, "TOPSECRET\n").expect("write secret");
    std::os::unix::fs::symlink(&secret, root.join("Escape.md")).expect("symlink");
    build_cache(&tv, &["Escape.md"]);
    let msg = mcp.err("read_note", json!({"note": "Escape.md"}));
    assert!(msg.contains("outside the vault"), "{msg}");
    let resp = mcp.request("resources/read", json!({"uri": "vault:///Escape.md"}));
    assert!(
        resp["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outside the vault")),
        "{resp}"
    );
    assert!(!resp.to_string().contains("TOPSECRET"));

    // Closing stdin ends the server cleanly.
    drop(mcp.stdin.take());
    let mut status = None;
    wait_until("mcp exit after stdin closed", TIMEOUT, || {
        status = mcp.child.try_wait().expect("try_wait");
        status.is_some()
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; stderr:\n{}",
        mcp.log()
    );
    assert!(!mcp.log().contains("ERROR"), "{}", mcp.log());
}

/// With the daemon running (it keeps the cache), the server sees its edits as they land.
#[test]
fn mcp_sees_the_daemons_edits() {
    let tv = TestVault::new(BIN);
    copy_tree(&help_vault(), &tv.root);
    let md = markdown_files(&tv.root);
    let daemon = tv.start();
    let mut mcp = Mcp::spawn(&tv);
    mcp.handshake();
    let count_sql = json!({"sql": "SELECT count(*) FROM notes WHERE is_markdown = 1"});
    wait_until(
        "the daemon's cache holds every note",
        Duration::from_secs(60),
        || {
            let (err, text) = mcp.call("query_sql", count_sql.clone());
            !err && serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v["rows"][0][0].as_u64() == Some(md.len() as u64))
        },
    );

    let word = "quetzalcoatlus";
    let rel = "Inbox/Fresh note.md";
    let text = format!("# Fresh\n\nA {word} links to [[Backlinks]].\n\n- [ ] feed the {word}\n");
    tv.write(rel, &text);
    let query = json!({"query": word});
    wait_until("the new note is searchable", TIMEOUT, || {
        let (err, out) = mcp.call("search_notes", query.clone());
        !err && out.contains(rel)
    });
    let note = mcp.ok("read_note", json!({"note": "Fresh note"}));
    assert_eq!(note["path"], rel);
    assert_eq!(note["content"].as_str(), Some(text.as_str()));
    let bl = mcp.ok("list_backlinks", json!({"note": "Plugins/Backlinks.md"}));
    assert!(
        bl["links"]
            .as_array()
            .expect("links")
            .iter()
            .any(|l| l["path"] == rel && l["line"] == 3),
        "{bl}"
    );
    let tasks = mcp.ok("list_tasks", json!({"tag": null}));
    assert!(
        tasks["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .any(|t| t["path"] == rel && t["line"] == 5),
        "{tasks}"
    );
    let recent = mcp.ok("recent_changes", json!({"limit": 5}));
    assert_eq!(recent["events"][0]["file_path"], rel, "{recent}");
    let listed = mcp.result("resources/list", json!({}));
    assert!(
        listed
            .to_string()
            .contains("vault:///Inbox/Fresh%20note.md")
    );

    std::fs::remove_file(tv.path(rel)).expect("delete");
    // The file goes first, then the cache forgets it: wait for the cache's answer.
    wait_until("the deleted note is gone from the cache", TIMEOUT, || {
        let (err, msg) = mcp.call("read_note", json!({"note": rel}));
        err && msg.contains("no note matches")
    });
    let recent = mcp.ok("recent_changes", json!({"limit": 1}));
    assert_eq!(recent["events"][0]["event"], "file.deleted", "{recent}");

    drop(mcp);
    let log = daemon.stop();
    assert!(!log.contains("ERROR"), "{log}");
}
