//! Shadow cache tests: full index of the sample vault and of the Obsidian help vault (counts
//! checked by hand), the consumer fed with synthetic events, bad input, and `sql` refusals.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use vaultkeeper_cache::apply::vault_files;
use vaultkeeper_cache::query::{self, TaskFilter};
use vaultkeeper_cache::schema::open_ro;
use vaultkeeper_cache::{CacheConfig, CacheConsumer, reindex};
use vaultkeeper_core::consumer::{Consumer, Durable};
use vaultkeeper_core::event::{Event, Kind, Origin};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn count_p(conn: &Connection, sql: &str, p: &str) -> i64 {
    conn.query_row(sql, [p], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql} [{p}]: {e}"))
}

fn target_of(conn: &Connection, src: &str, raw: &str) -> Option<String> {
    conn.query_row(
        "SELECT target_path FROM links WHERE path = ?1 AND target_raw = ?2",
        [src, raw],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("link {src} -> {raw}: {e}"))
}

/// Indexes a copy of `vault` and returns (tempdir, vault copy, cache db).
fn index_copy(vault: &Path) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("vault");
    copy_dir(vault, &copy);
    let db = dir.path().join("state/cache.db");
    let files = vault_files(&copy).expect("walk");
    reindex(&db, &copy, files.into_iter(), 0, &CacheConfig::default()).expect("reindex");
    (dir, copy, db)
}

// ---------------------------------------------------------------- sample vault

#[test]
fn sample_vault_counts_written_by_hand() {
    let (_dir, _vault, db) = index_copy(&manifest().join("examples/sample-vault"));
    let c = open_ro(&db).expect("open");
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE is_markdown = 1"),
        12
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE is_markdown = 0"),
        1
    );
    assert_eq!(count(&c, "SELECT count(*) FROM links"), 25);
    assert_eq!(
        count(&c, "SELECT count(*) FROM links WHERE target_path IS NULL"),
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM links WHERE kind = 'embed'"),
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM links WHERE kind = 'markdown'"),
        3
    );
    assert_eq!(count(&c, "SELECT count(*) FROM tags"), 14);
    assert_eq!(count(&c, "SELECT count(DISTINCT tag_key) FROM tags"), 11);
    assert_eq!(count(&c, "SELECT count(*) FROM tasks"), 14);
    assert_eq!(count(&c, "SELECT count(*) FROM tasks WHERE done = 1"), 4);
    assert_eq!(count(&c, "SELECT count(*) FROM headings"), 15);
    assert_eq!(count(&c, "SELECT count(*) FROM blocks"), 3);
    assert_eq!(count(&c, "SELECT count(*) FROM fields"), 15);
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE error IS NOT NULL"),
        1
    );

    // Resolution rules on real files.
    assert_eq!(
        target_of(&c, "Home.md", "Beta").as_deref(),
        Some("Notes/Beta.md")
    );
    assert_eq!(
        target_of(&c, "Projects/Alpha Plan.md", "Beta").as_deref(),
        Some("Projects/Beta.md")
    );
    assert_eq!(
        target_of(&c, "Projects/Alpha Plan.md", "#Timeline").as_deref(),
        Some("Projects/Alpha Plan.md")
    );
    assert_eq!(
        target_of(&c, "Projects/Alpha Plan.md", "../Home.md").as_deref(),
        Some("Home.md")
    );
    assert_eq!(
        target_of(&c, "Home.md", "Reference/Glossary%20Terms.md").as_deref(),
        Some("Reference/Glossary Terms.md")
    );
    assert_eq!(
        target_of(
            &c,
            "Reference/Glossary Terms.md",
            "../Notes/Growth%20100%25.md"
        )
        .as_deref(),
        Some("Notes/Growth 100%.md")
    );
    assert_eq!(
        target_of(&c, "Reference/Καλημέρα.md", "glossary terms").as_deref(),
        Some("Reference/Glossary Terms.md")
    );
    assert_eq!(
        target_of(&c, "Home.md", "diagram.png").as_deref(),
        Some("Attachments/diagram.png")
    );
    assert_eq!(target_of(&c, "Home.md", "Missing Note"), None);

    // Queries.
    let home = query::note(&c, "Home").expect("note Home");
    assert_eq!(home.title, "Welcome home");
    assert_eq!(home.aliases, vec!["Start", "Index"]);
    assert_eq!(home.links.len(), 7);
    assert_eq!(home.backlinks.len(), 5);
    assert_eq!(home.tags, vec!["dashboard", "home", "status/active"]);
    assert_eq!(query::note(&c, "Beta").expect("Beta").path, "Notes/Beta.md");
    assert_eq!(
        query::note(&c, "Projects/Beta")
            .expect("Projects/Beta")
            .title,
        "Beta"
    );
    let broken = query::note(&c, "Broken Frontmatter").expect("broken");
    assert!(
        broken
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("frontmatter")),
        "{:?}",
        broken.error
    );
    assert_eq!(broken.links.len(), 1);
    assert_eq!(query::note(&c, "Καλημέρα").expect("greek").words, 10);
    assert!(query::note(&c, "Start").is_err(), "aliases never resolve");

    assert_eq!(
        query::orphans(&c).expect("orphans").notes,
        vec![
            "Archive/Broken Frontmatter.md",
            "Archive/Code Samples.md",
            "Notes/Tasks Board.md"
        ]
    );
    let tags = query::tags(&c).expect("tags").tags;
    let project = tags.iter().find(|t| t.tag == "project").expect("project");
    assert_eq!((project.notes, project.uses), (2, 2));
    let home_tag = tags.iter().find(|t| t.tag == "home").expect("home");
    assert_eq!((home_tag.notes, home_tag.uses), (1, 2));
    assert_eq!(
        query::tasks(&c, TaskFilter::Open, None)
            .expect("open")
            .tasks
            .len(),
        9
    );
    assert_eq!(
        query::tasks(&c, TaskFilter::Done, None)
            .expect("done")
            .tasks
            .len(),
        4
    );
    // #work: Journal (1 open, 1 done) and the Tasks board (6 tasks, note tag via the quote).
    let work = query::tasks(&c, TaskFilter::All, Some("work"))
        .expect("work")
        .tasks;
    assert_eq!(work.len(), 8);
    let idea = query::tasks(&c, TaskFilter::All, Some("#idea"))
        .expect("idea")
        .tasks;
    assert_eq!(idea.len(), 1);
    assert_eq!(
        query::fields(&c, "Status", Some("ACTIVE"))
            .expect("f")
            .fields
            .len(),
        1
    );
    assert_eq!(
        query::fields(&c, "priority", None).expect("f").fields[0].path,
        "Notes/Tasks Board.md"
    );
    assert_eq!(
        query::fields(&c, "reviewer", None).expect("f").fields[0].value,
        "Grace"
    );
    let unresolved = query::unresolved(&c).expect("unresolved").links;
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].target_raw, "Missing Note");

    let s = query::search(&c, "cycle", None, None, 10).expect("search");
    assert_eq!(s.hits.len(), 1);
    assert_eq!(s.hits[0].path, "Ideas.md");
    assert!(
        s.hits[0].snippet.contains("«cycle»"),
        "{}",
        s.hits[0].snippet
    );
    let s = query::search(&c, "\"good morning\"", None, None, 10).expect("phrase");
    assert_eq!(s.hits.len(), 1);
    let s = query::search(&c, "glossa*", None, Some("Reference/*"), 10).expect("prefix");
    let paths: Vec<&str> = s.hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    let s = query::search(&c, "beta", Some("project"), None, 10).expect("tag filter");
    assert!(
        s.hits.iter().all(|h| h.path.starts_with("Projects/")),
        "{:?}",
        s.hits
    );
    assert!(!s.hits.is_empty());
    let s = query::search(&c, "(((\"", None, None, 10);
    assert!(s.is_ok() || s.is_err(), "never panics");
}

#[test]
fn sql_refuses_writes() {
    let (_dir, _vault, db) = index_copy(&manifest().join("examples/sample-vault"));
    let c = open_ro(&db).expect("open");
    let ok = query::sql(&c, "SELECT path FROM notes ORDER BY path LIMIT 2;").expect("select");
    assert_eq!(ok.columns, vec!["path"]);
    assert_eq!(ok.rows.len(), 2);
    assert!(query::sql(&c, "WITH x AS (SELECT 1) SELECT * FROM x").is_ok());
    assert!(query::sql(&c, "PRAGMA table_info(notes)").is_ok());
    for bad in [
        "INSERT INTO notes(path) VALUES('x')",
        "UPDATE notes SET title = 'x'",
        "DELETE FROM notes",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "PRAGMA user_version = 5",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA writable_schema",
        "SELECT 1; DELETE FROM notes",
        "SELECT 1; SELECT 2",
        "/* hi */ DROP TABLE notes",
        "WITH x AS (SELECT 1) DELETE FROM notes",
        "VACUUM INTO '/tmp/stolen.db'",
        "CREATE TABLE t(x)",
        "",
    ] {
        assert!(query::sql(&c, bad).is_err(), "accepted: {bad}");
    }
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes"),
        13,
        "nothing was written"
    );
}

// ---------------------------------------------------------------- help vault

fn help_vault() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VAULTKEEPER_HELP_VAULT") {
        return Some(PathBuf::from(p));
    }
    let p = manifest().join("../shared/vaults/obsidian-help-en");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: the Obsidian help vault is absent (set VAULTKEEPER_HELP_VAULT or put it at {})",
            p.display()
        );
        None
    }
}

#[test]
fn help_vault_counts_checked_by_hand() {
    let Some(vault) = help_vault() else { return };
    let (_dir, _copy, db) = index_copy(&vault);
    let c = open_ro(&db).expect("open");
    // `find . -name '*.md' | wc -l` = 173, `find . -type f | wc -l` = 308.
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE is_markdown = 1"),
        173
    );
    assert_eq!(count(&c, "SELECT count(*) FROM notes"), 308);
    help_vault_notes(&c);
}

/// Per-note counts, written from reading the files (line numbers in comments).
fn help_vault_notes(c: &Connection) {
    let per = |table: &str, path: &str| -> i64 {
        count_p(
            c,
            &format!("SELECT count(*) FROM {table} WHERE path = ?1"),
            path,
        )
    };

    // Linking notes and files/Aliases.md: 3 aliases; no tags; links on lines 15, 17 (embed of
    // a block), 21, 38, 48, 52 (the `[[…]]` in inline code on 41 and 44 do not count);
    // three `##` headings (the `# Dog` on line 31 is in a code block); title = file name.
    let a = "Linking notes and files/Aliases.md";
    let note = query::note(c, a).expect("Aliases");
    assert_eq!(note.title, "Aliases");
    assert_eq!(
        note.aliases,
        vec!["alias", "aliases", "How to/Add aliases to note"]
    );
    assert_eq!(per("tags", a), 0);
    assert_eq!(per("links", a), 6);
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM links WHERE path = ?1 AND kind = 'embed'",
            a
        ),
        1
    );
    assert_eq!(per("headings", a), 3);
    assert!(note.headings.iter().all(|h| h.level == 2));
    assert_eq!(per("fields", a), 5); // aliases x3, permalink, cssclasses
    assert_eq!(
        target_of(c, a, "Internal links#Change the link display text").as_deref(),
        Some("Linking notes and files/Internal links.md")
    );
    assert_eq!(
        target_of(c, a, "Backlinks").as_deref(),
        Some("Plugins/Backlinks.md")
    );
    assert_eq!(
        target_of(c, a, "Properties").as_deref(),
        Some("Editing and formatting/Properties.md")
    );
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM links WHERE path = ?1 AND target_path IS NULL",
            a
        ),
        0
    );

    // Editing and formatting/Tags.md: inline tags #y1984 (51; #1984 is not a tag), #tag #TAG (53),
    // #Tag #TAG #Tag (57, in a callout), #camelCase #PascalCase #snake_case #kebab-case (61-64);
    // everything in backticks or the yaml code block is not a tag.
    let t = "Editing and formatting/Tags.md";
    assert_eq!(per("tags", t), 10);
    assert_eq!(
        count_p(
            c,
            "SELECT count(DISTINCT tag_key) FROM tags WHERE path = ?1",
            t
        ),
        6
    );
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM tags WHERE path = ?1 AND tag_key = 'tag'",
            t
        ),
        5
    );
    // Links: 12, 24 (2), 28 (2), 36, 37, 38 (2), 48 ([[#Nested tags]], itself), 56.
    assert_eq!(per("links", t), 11);
    assert_eq!(target_of(c, t, "#Nested tags").as_deref(), Some(t));
    assert_eq!(
        target_of(c, t, "Functions#hasTag").as_deref(),
        Some("Bases/Functions.md")
    );
    assert_eq!(per("headings", t), 4);
    assert_eq!(query::note(c, t).expect("Tags").title, "Tags");

    // Home.md: 17 wikilinks (19-24, 30-40, 45, 47, 54 x2, 56), all resolving; the three
    // markdown links are external; H1 + four H2.
    let h = "Home.md";
    let home = query::note(c, h).expect("Home");
    assert_eq!(home.title, "Obsidian Help");
    assert_eq!(home.aliases, vec!["Start here"]);
    assert_eq!(per("links", h), 17);
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM links WHERE path = ?1 AND target_path IS NULL",
            h
        ),
        0
    );
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM links WHERE path = ?1 AND kind = 'markdown'",
            h
        ),
        0
    );
    assert_eq!(per("headings", h), 5);
    assert_eq!(
        target_of(c, h, "Import notes").as_deref(),
        Some("Getting started/Import notes.md")
    );
    assert_eq!(
        target_of(c, h, "Commercial license").as_deref(),
        Some("Teams/Commercial license.md")
    );
    assert_eq!(per("fields", h), 5); // aliases, cssclasses x3, permalink

    // Editing and formatting/Basic formatting syntax.md: tasks outside code are 289-290,
    // 303-305 (in a callout) and 334-337 (two tab-indented); those on 285-286, 298-300 and
    // 328-331 are in code blocks. 21 headings outside code (the six on 109-114 are in code).
    let b = "Editing and formatting/Basic formatting syntax.md";
    assert_eq!(per("tasks", b), 9);
    assert_eq!(
        count_p(
            c,
            "SELECT count(*) FROM tasks WHERE path = ?1 AND done = 1",
            b
        ),
        2
    );
    let statuses: String = c
        .prepare("SELECT status FROM tasks WHERE path = ?1 ORDER BY line")
        .expect("prepare")
        .query_map([b], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
        .concat();
    assert_eq!(statuses, "x x?-    ");
    assert_eq!(
        count_p(c, "SELECT min(line) FROM tasks WHERE path = ?1", b),
        289
    );
    assert_eq!(per("headings", b), 21);

    // Linking notes and files/Internal links.md line 13 ends with the block id ^b15695.
    assert_eq!(
        count_p(
            c,
            "SELECT line FROM blocks WHERE path = ?1 AND block_id = 'b15695'",
            "Linking notes and files/Internal links.md"
        ),
        13
    );
}

// ---------------------------------------------------------------- consumer

struct Harness {
    _dir: tempfile::TempDir,
    vault: PathBuf,
    db: PathBuf,
    consumer: CacheConsumer,
    seq: u64,
}

impl Harness {
    /// A consumer without vault root: events carry their content.
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        std::fs::create_dir_all(&vault).expect("mkdir");
        let db = dir.path().join("cache.db");
        let consumer = CacheConsumer::open(&db, None, &CacheConfig::default()).expect("open");
        Harness {
            _dir: dir,
            vault,
            db,
            consumer,
            seq: 0,
        }
    }

    /// A consumer of the vault's own journal: it reads files from disk when an event has no
    /// content, and its first batch indexes the vault from disk.
    fn with_root() -> Harness {
        let mut h = Harness::new();
        h.consumer = CacheConsumer::open(&h.db, Some(h.vault.clone()), &CacheConfig::default())
            .expect("open");
        h
    }

    fn event(&mut self, kind: Kind, path: &str, old: Option<&str>, content: Option<&str>) -> Event {
        self.seq += 1;
        let hash = content.map(|c| blake3::hash(c.as_bytes()).to_hex().to_string());
        let mut e = Event::builder(kind, path)
            .old_path(old.map(str::to_string))
            .read(
                content.map_or(0, |c| c.len() as u64),
                hash,
                content.map(str::to_string),
            )
            .source("v", "h")
            .origin(Origin::Watch)
            .build();
        e.seq = self.seq;
        e
    }

    fn apply(&mut self, batch: &[Event]) -> Durable {
        futures::executor::block_on(self.consumer.handle(batch)).expect("handle")
    }

    fn write(&mut self, path: &str, content: &str) {
        let e = self.event(Kind::Created, path, None, Some(content));
        self.apply(&[e]);
    }

    fn conn(&self) -> Connection {
        open_ro(&self.db).expect("open ro")
    }
}

#[test]
fn consumer_create_modify_rename_delete() {
    let mut h = Harness::new();
    assert_eq!(h.consumer.name(), "cache");
    assert_eq!(h.consumer.own_cursor().expect("cursor"), None);
    h.write(
        "a/Source.md",
        "# Source\n[[Target]] and [[Later]] and [[#Source]]\n",
    );
    h.write("b/Target.md", "# Target\n");
    assert_eq!(h.consumer.own_cursor().expect("cursor"), Some(2));
    let c = h.conn();
    assert_eq!(
        target_of(&c, "a/Source.md", "Target").as_deref(),
        Some("b/Target.md")
    );
    assert_eq!(target_of(&c, "a/Source.md", "Later"), None);

    // A note created for a link that was unresolved.
    h.write("Later.md", "# Later\n");
    assert_eq!(
        target_of(&c, "a/Source.md", "Later").as_deref(),
        Some("Later.md")
    );

    // Rename: rows move, backlinks follow (same name, new folder).
    let hash_before: String = c
        .query_row(
            "SELECT hash FROM notes WHERE path = 'b/Target.md'",
            [],
            |r| r.get(0),
        )
        .expect("hash");
    let mut e = h.event(Kind::Renamed, "c/Target.md", Some("b/Target.md"), None);
    e.hash = Some(hash_before.clone());
    h.apply(&[e]);
    assert_eq!(
        target_of(&c, "a/Source.md", "Target").as_deref(),
        Some("c/Target.md")
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE path = 'b/Target.md'"),
        0
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM headings WHERE path = 'c/Target.md'"
        ),
        1
    );

    // Rename to another name: links by the old name become unresolved.
    let mut e = h.event(Kind::Renamed, "c/Renamed.md", Some("c/Target.md"), None);
    e.hash = Some(hash_before);
    h.apply(&[e]);
    assert_eq!(target_of(&c, "a/Source.md", "Target"), None);
    assert_eq!(query::note(&c, "Renamed").expect("renamed").title, "Target");

    // Renaming the linking note keeps its self link pointing at itself.
    let src_hash: String = c
        .query_row(
            "SELECT hash FROM notes WHERE path = 'a/Source.md'",
            [],
            |r| r.get(0),
        )
        .expect("hash");
    let mut e = h.event(Kind::Renamed, "z/Source2.md", Some("a/Source.md"), None);
    e.hash = Some(src_hash);
    h.apply(&[e]);
    assert_eq!(
        target_of(&c, "z/Source2.md", "#Source").as_deref(),
        Some("z/Source2.md")
    );
    assert_eq!(query::note(&c, "Source2").expect("s2").title, "Source");

    // Delete makes links to it unresolved.
    let e = h.event(Kind::Deleted, "Later.md", None, None);
    h.apply(&[e]);
    assert_eq!(target_of(&c, "z/Source2.md", "Later"), None);
    assert_eq!(count(&c, "SELECT count(*) FROM notes_fts"), 2);

    // Modify changes rows.
    h.write("z/Source2.md", "# Source\nnow only [[Renamed]]\n");
    assert_eq!(
        count(&c, "SELECT count(*) FROM links WHERE path = 'z/Source2.md'"),
        1
    );
    assert_eq!(
        target_of(&c, "z/Source2.md", "Renamed").as_deref(),
        Some("c/Renamed.md")
    );
}

#[test]
fn consumer_unchanged_hash_and_redelivery_are_no_ops() {
    let mut h = Harness::new();
    let e1 = h.event(Kind::Created, "n.md", None, Some("# N\n#tag [[n]]\n"));
    let e2 = h.event(Kind::Modified, "n.md", None, Some("# N\n#tag [[n]]\n"));
    assert_eq!(h.apply(&[e1.clone(), e2.clone()]), Durable::Upto(2));
    let c = h.conn();
    let id: i64 = c
        .query_row("SELECT id FROM notes", [], |r| r.get(0))
        .expect("id");
    // Same hash again, later seq: no work (row id unchanged).
    let e3 = h.event(Kind::Modified, "n.md", None, Some("# N\n#tag [[n]]\n"));
    assert_eq!(h.apply(&[e3]), Durable::Upto(3));
    let id2: i64 = c
        .query_row("SELECT id FROM notes", [], |r| r.get(0))
        .expect("id");
    assert_eq!(id, id2);
    // Redelivery of old events (even a stale delete) changes nothing.
    let mut stale_delete = e1.clone();
    stale_delete.event = Kind::Deleted;
    assert_eq!(h.apply(&[e1, stale_delete, e2]), Durable::Upto(3));
    assert_eq!(count(&c, "SELECT count(*) FROM notes"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM tags"), 1);
    assert_eq!(count(&c, "SELECT count(*) FROM links"), 1);
    assert_eq!(h.consumer.own_cursor().expect("cursor"), Some(3));
}

#[test]
fn consumer_batch_order_and_cycles() {
    let mut h = Harness::new();
    // One batch: links before targets exist, a cycle, a self link.
    let b = vec![
        h.event(Kind::Created, "A.md", None, Some("[[B]] [[A]]")),
        h.event(Kind::Created, "B.md", None, Some("[[C]]")),
        h.event(Kind::Created, "C.md", None, Some("[[A]]")),
        h.event(Kind::Created, "x/B.md", None, Some("[[B]]")),
    ];
    assert_eq!(h.apply(&b), Durable::Upto(4));
    let c = h.conn();
    assert_eq!(target_of(&c, "A.md", "B").as_deref(), Some("B.md"));
    assert_eq!(target_of(&c, "A.md", "A").as_deref(), Some("A.md"));
    assert_eq!(target_of(&c, "C.md", "A").as_deref(), Some("A.md"));
    assert_eq!(
        target_of(&c, "x/B.md", "B").as_deref(),
        Some("B.md"),
        "exact root path wins"
    );
    // Deleting B.md: A's link now finds x/B.md.
    let e = h.event(Kind::Deleted, "B.md", None, None);
    h.apply(&[e]);
    assert_eq!(target_of(&c, "A.md", "B").as_deref(), Some("x/B.md"));
    // A new file in A's folder... (root) named B again takes it back.
    h.write("B.md", "back");
    assert_eq!(target_of(&c, "A.md", "B").as_deref(), Some("B.md"));
    // Attachments resolve embeds.
    h.write("N.md", "![[pic.png]]");
    assert_eq!(target_of(&c, "N.md", "pic.png"), None);
    let e = h.event(Kind::Created, "img/pic.png", None, None);
    h.apply(&[e]);
    assert_eq!(
        target_of(&c, "N.md", "pic.png").as_deref(),
        Some("img/pic.png")
    );
}

#[test]
fn consumer_reads_disk_and_survives_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).expect("mkdir");
    std::fs::write(vault.join("Existing.md"), "# Existing\n[[Big]]\n").expect("write");
    let db = dir.path().join("cache.db");
    let cfg = CacheConfig {
        max_note_bytes: 1024 * 1024,
        ..Default::default()
    };
    let mut consumer = CacheConsumer::open(&db, Some(vault.clone()), &cfg).expect("open");
    let mut seq = 0;
    let mut ev = |kind: Kind, path: &str| {
        seq += 1;
        let mut e = Event::builder(kind, path)
            .source("v", "h")
            .origin(Origin::Watch)
            .build();
        e.seq = seq;
        e
    };
    // First batch without cursor: a full index of the disk.
    let first = ev(Kind::Created, "Existing.md");
    let d = futures::executor::block_on(consumer.handle(&[first])).expect("first");
    assert_eq!(d, Durable::Upto(1));
    let c = open_ro(&db).expect("ro");
    assert_eq!(count(&c, "SELECT count(*) FROM notes"), 1);

    std::fs::write(vault.join("Big.md"), "word ".repeat(300_000)).expect("big");
    std::fs::write(vault.join("Binary.md"), [0u8, 159, 146, 150, 0, 1, 2]).expect("bin");
    std::fs::write(vault.join("Latin1.md"), b"caf\xe9 [[Existing]]\n").expect("latin1");
    let deep: String = (0..800)
        .map(|i| format!("{}- [ ] x\n", "  ".repeat(i)))
        .collect();
    std::fs::write(vault.join("Deep.md"), deep).expect("deep");
    std::fs::write(vault.join("Bomb.md"), yaml_bomb()).expect("bomb");
    let names = [
        "Big.md",
        "Binary.md",
        "Latin1.md",
        "Deep.md",
        "Bomb.md",
        "Vanished.md",
    ];
    let batch: Vec<Event> = names.iter().map(|n| ev(Kind::Created, n)).collect();
    let d = futures::executor::block_on(consumer.handle(&batch)).expect("bad input batch");
    assert_eq!(d, Durable::Upto(7));
    let err = |p: &str| -> Option<String> {
        c.query_row("SELECT error FROM notes WHERE path = ?1", [p], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    assert!(err("Big.md").is_some_and(|e| e.contains("too large")));
    assert!(err("Binary.md").is_some_and(|e| e.contains("binary")));
    assert!(err("Latin1.md").is_some_and(|e| e.contains("UTF-8")));
    assert!(err("Bomb.md").is_some_and(|e| e.contains("frontmatter")));
    assert_eq!(err("Deep.md"), None);
    assert_eq!(
        target_of(&c, "Latin1.md", "Existing").as_deref(),
        Some("Existing.md")
    );
    assert_eq!(
        target_of(&c, "Existing.md", "Big").as_deref(),
        Some("Big.md")
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE path = 'Vanished.md'"),
        0
    );
    assert_eq!(
        count_p(&c, "SELECT count(*) FROM tasks WHERE path = ?1", "Deep.md"),
        800
    );
}

fn yaml_bomb() -> String {
    let mut y = String::from("---\na: &a [x, x, x, x, x, x, x, x, x]\n");
    let mut prev = 'a';
    for c in 'b'..='z' {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        y.push_str(&format!("{c}: &{c} [{refs}]\n"));
        prev = c;
    }
    y.push_str("---\n# Bomb\n");
    y
}

#[test]
fn fifty_megabyte_note_with_default_limit() {
    let mut h = Harness::new();
    let mut big = String::with_capacity(50 * 1024 * 1024 + 100);
    big.push_str("# Huge\n[[Elsewhere]] #big\n");
    let line = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n";
    while big.len() < 50 * 1024 * 1024 - line.len() {
        big.push_str(line);
    }
    let e = h.event(Kind::Created, "huge.md", None, Some(&big));
    assert_eq!(h.apply(&[e]), Durable::Upto(1));
    let c = h.conn();
    // Over the default max_note_bytes (2 MiB): metadata only, which bounds what it costs
    // (indexing it whole held about 15x its size). `note` says its body is not indexed.
    assert_eq!(
        count(&c, "SELECT count(*) FROM notes WHERE path = 'huge.md'"),
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM links WHERE path = 'huge.md'"),
        0
    );
    let info = vaultkeeper_cache::query::note(&c, "huge.md").expect("note");
    assert!(!info.body_indexed);
    assert!(
        info.not_indexed
            .as_deref()
            .is_some_and(|w| w.contains("too large")),
        "{:?}",
        info.not_indexed
    );
    let _ = &h.vault;
}

#[test]
fn awkward_names() {
    let mut h = Harness::new();
    h.write(
        "Notes with spaces/My Note.md",
        "[[Ünïcödé 名前]] [[100% sure]] [[C# tips]]",
    );
    h.write("Ünïcödé 名前.md", "#tag");
    h.write("100% sure.md", "x");
    h.write("C# tips.md", "x");
    let c = h.conn();
    assert_eq!(
        target_of(&c, "Notes with spaces/My Note.md", "Ünïcödé 名前").as_deref(),
        Some("Ünïcödé 名前.md")
    );
    assert_eq!(
        target_of(&c, "Notes with spaces/My Note.md", "100% sure").as_deref(),
        Some("100% sure.md")
    );
    // `#` starts a heading in a link, so [[C# tips]] is "C" with heading " tips", as in Obsidian.
    assert_eq!(
        target_of(&c, "Notes with spaces/My Note.md", "C# tips"),
        None
    );
    assert_eq!(
        query::note(&c, "Notes with spaces/My Note.md")
            .expect("n")
            .links
            .len(),
        3
    );
}

#[test]
fn reindex_equals_consumer_result() {
    // Applying events one by one and a fresh reindex of the same files give the same rows.
    let mut h = Harness::new();
    let files = [
        ("A.md", "# A\n[[B]] #x\n- [ ] t\nk:: v\n"),
        ("sub/B.md", "---\ntags: [y]\n---\n[[A#Top]] ![[p.png]]\n"),
        ("sub/C.md", "[[Nope]] [[sub/B]]"),
    ];
    for (p, t) in files {
        std::fs::create_dir_all(h.vault.join(p).parent().expect("parent")).expect("mkdir");
        std::fs::write(h.vault.join(p), t).expect("write");
        h.write(p, t);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db2 = dir.path().join("fresh.db");
    reindex(
        &db2,
        &h.vault,
        files.iter().map(|(p, _)| p.to_string()),
        h.seq,
        &CacheConfig::default(),
    )
    .expect("reindex");
    let a = h.conn();
    let b = open_ro(&db2).expect("ro");
    for sql in [
        "SELECT path, title, frontmatter, aliases, hash, words, is_markdown, error FROM notes ORDER BY path",
        "SELECT path, tag, source, line FROM tags ORDER BY 1, 2, 3, 4",
        "SELECT path, target_raw, target_path, kind, heading, line FROM links ORDER BY 1, 2, 6",
        "SELECT path, level, text, line FROM headings ORDER BY 1, 4",
        "SELECT path, line, status, text FROM tasks ORDER BY 1, 2",
        "SELECT path, key, value, line FROM fields ORDER BY 1, 2, 3",
        "SELECT value FROM meta WHERE key = 'cursor'",
    ] {
        assert_eq!(rows(&a, sql), rows(&b, sql), "{sql}");
    }
}

/// A fresh reindex of the harness's vault from disk, at its last seq: (tempdir, cache db).
fn fresh_reindex(h: &Harness) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fresh.db");
    let files = vault_files(&h.vault).expect("walk");
    reindex(
        &db,
        &h.vault,
        files.into_iter(),
        h.seq,
        &CacheConfig::default(),
    )
    .expect("reindex");
    (dir, db)
}

/// Rowids of `path`'s rows in `table`, in order.
fn rowids(c: &Connection, table: &str, path: &str) -> Vec<i64> {
    c.prepare(&format!(
        "SELECT rowid FROM {table} WHERE path = ?1 ORDER BY rowid"
    ))
    .expect("prepare")
    .query_map([path], |r| r.get(0))
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

#[test]
fn an_edit_rewrites_only_the_parts_it_changed_and_links_resolve_within_the_batch() {
    let mut h = Harness::new();
    let put = |h: &mut Harness, kind: Kind, p: &str, t: Option<&str>| -> Event {
        let f = h.vault.join(p);
        match t {
            Some(t) => std::fs::write(&f, t).expect("write"),
            None => std::fs::remove_file(&f).expect("remove"),
        }
        h.event(kind, p, None, t)
    };
    let a1 = "# A\n#tag one [[B]]\n- [ ] task\nkey:: v\n## Sub\npara ^blk\n";
    let e = put(&mut h, Kind::Created, "A.md", Some(a1));
    h.apply(&[e]);
    let c = h.conn();
    let id = |c: &Connection| count_p(c, "SELECT id FROM notes WHERE path = ?1", "A.md");
    let a_id = id(&c);
    let parts = |c: &Connection| -> Vec<Vec<i64>> {
        ["tags", "links", "headings", "blocks", "tasks", "fields"]
            .iter()
            .map(|t| rowids(c, t, "A.md"))
            .collect()
    };
    let before = parts(&c);
    assert!(before.iter().all(|r| !r.is_empty()), "{before:?}");
    assert_eq!(target_of(&c, "A.md", "B"), None);

    // Text only: every part stays as it was, the note keeps its id, the text is new.
    let a2 = format!("{a1}an appended line about zebras\n");
    let e = put(&mut h, Kind::Modified, "A.md", Some(&a2));
    h.apply(&[e]);
    let c = h.conn();
    assert_eq!(id(&c), a_id);
    assert_eq!(parts(&c), before);
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'zebras'"
        ),
        1
    );

    // A new link, to notes created later in the same batch; only the links are rewritten,
    // and both resolve.
    let a3 = a2.replace("[[B]]", "[[B]] [[D]]");
    let batch = [
        put(&mut h, Kind::Modified, "A.md", Some(&a3)),
        put(&mut h, Kind::Created, "B.md", Some("# B\n")),
        put(&mut h, Kind::Created, "D.md", Some("# D\n[[A]]\n")),
    ];
    h.apply(&batch);
    let c = h.conn();
    let after = parts(&c);
    assert_ne!(after[1], before[1], "the links were not written again");
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        if i != 1 {
            assert_eq!(a, b, "part {i} was written again");
        }
    }
    assert_eq!(target_of(&c, "A.md", "B").as_deref(), Some("B.md"));
    assert_eq!(target_of(&c, "A.md", "D").as_deref(), Some("D.md"));
    assert_eq!(target_of(&c, "D.md", "A").as_deref(), Some("A.md"));

    // A link written to a note that goes later in the same batch is left unresolved.
    let a4 = a3.replace("[[D]]", "[[D]] [[B]]");
    let batch = [
        put(&mut h, Kind::Modified, "A.md", Some(&a4)),
        put(&mut h, Kind::Deleted, "B.md", None),
    ];
    h.apply(&batch);
    let c = h.conn();
    assert_eq!(
        count_p(
            &c,
            "SELECT count(*) FROM links WHERE path = ?1 AND target_path IS NULL",
            "A.md"
        ),
        2
    );

    // Metadata only (binary content), then text again: the parts go, then come back.
    let e = put(&mut h, Kind::Modified, "A.md", Some("bin\0ary"));
    h.apply(&[e]);
    let c = h.conn();
    assert!(parts(&c).iter().all(Vec::is_empty), "{:?}", parts(&c));
    assert_eq!(id(&c), a_id);
    let e = put(&mut h, Kind::Modified, "A.md", Some(&a4));
    h.apply(&[e]);

    let (_dir, db2) = fresh_reindex(&h);
    let (a, b) = (h.conn(), open_ro(&db2).expect("ro"));
    for sql in [
        "SELECT path, title, frontmatter, aliases, hash, words, is_markdown, error, shape FROM notes ORDER BY path",
        "SELECT path, tag, source, line FROM tags ORDER BY 1, 2, 3, 4",
        "SELECT path, target_raw, target_path, kind, heading, line FROM links ORDER BY 1, 2, 3, 6",
        "SELECT path, level, text, line FROM headings ORDER BY 1, 4",
        "SELECT path, block_id, line FROM blocks ORDER BY 1, 3",
        "SELECT path, line, status, text FROM tasks ORDER BY 1, 2",
        "SELECT path, key, value, line FROM fields ORDER BY 1, 2, 3",
        "SELECT term, doc, cnt FROM notes_vocab ORDER BY term",
    ] {
        assert_eq!(rows(&a, sql), rows(&b, sql), "{sql}");
    }
}

#[test]
fn full_text_after_edits_renames_and_deletes_equals_a_fresh_reindex() {
    // The full-text index keeps no text: a row leaves it by being handed its terms again,
    // made from what the cache stores. Any term left behind, or taken from another row,
    // shows in the vocabulary's counts against a fresh index of the same files.
    let mut h = Harness::with_root();
    let on_disk = |h: &Harness, p: &str, t: Option<&str>| {
        let f = h.vault.join(p);
        match t {
            Some(t) => {
                std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
                std::fs::write(&f, t).expect("write");
            }
            None => std::fs::remove_file(&f).expect("remove"),
        }
    };
    let notes = [
        (
            "Named.md",
            "no heading here, titled by its name\nshared words\n",
        ),
        (
            "fm/Front.md",
            "---\naliases: [Other Name, Third]\nrating: 4.5\ndone: true\nnested: {deep: Value}\n---\nbody of front\n",
        ),
        ("Plain.md", "# Heading Title\nshared words again\n"),
        ("Bad.md", "---\nkey: [unclosed\n---\nbroken yaml body\n"),
        ("gone/Doomed.md", "# Doomed\nwords that must go\n"),
    ];
    for (p, t) in notes {
        on_disk(&h, p, Some(t));
        h.write(p, t);
    }
    let rename = |h: &mut Harness, from: &str, to: &str| {
        let hash: String = h
            .conn()
            .query_row("SELECT hash FROM notes WHERE path = ?1", [from], |r| {
                r.get(0)
            })
            .expect("hash");
        std::fs::create_dir_all(h.vault.join(to).parent().expect("parent")).expect("mkdir");
        std::fs::rename(h.vault.join(from), h.vault.join(to)).expect("rename");
        let mut e = h.event(Kind::Renamed, to, Some(from), None);
        e.hash = Some(hash);
        h.apply(&[e]);
    };
    // A note titled by its name gets the new name as its title, twice; one with a heading
    // keeps its title.
    rename(&mut h, "Named.md", "moved/Renamed Once.md");
    rename(&mut h, "moved/Renamed Once.md", "Twice Renamed.md");
    rename(&mut h, "Plain.md", "sub/Plain Moved.md");
    // Edits, one of them in the same batch as a rename of the same note.
    let fm2 = "---\naliases: [Fresh Alias]\n---\nnew front body\n";
    on_disk(&h, "fm/Front.md", Some(fm2));
    let e = h.event(Kind::Modified, "fm/Front.md", None, Some(fm2));
    h.apply(&[e]);
    let t2 = "# Twice\nedited then moved in one batch\n";
    on_disk(&h, "Twice Renamed.md", Some(t2));
    let hash = blake3::hash(t2.as_bytes()).to_hex().to_string();
    let edit = h.event(Kind::Modified, "Twice Renamed.md", None, Some(t2));
    std::fs::rename(h.vault.join("Twice Renamed.md"), h.vault.join("Final.md")).expect("mv");
    let mut mv = h.event(Kind::Renamed, "Final.md", Some("Twice Renamed.md"), None);
    mv.hash = Some(hash);
    h.apply(&[edit, mv]);
    on_disk(&h, "gone/Doomed.md", None);
    let e = h.event(Kind::Deleted, "gone/Doomed.md", None, None);
    h.apply(&[e]);
    // Batches large enough to be parsed ahead on parser threads: creates, then edits of
    // them (one edited twice), deletions and an edit of an older note, all in one batch.
    let many: Vec<Event> = (0..12)
        .map(|i| {
            let (p, t) = (
                format!("many/M{i}.md"),
                format!("# M{i}\nfirst{i} common\n"),
            );
            on_disk(&h, &p, Some(&t));
            h.event(Kind::Created, &p, None, Some(&t))
        })
        .collect();
    h.apply(&many);
    let mut mixed = Vec::new();
    for i in 0..12 {
        let p = format!("many/M{i}.md");
        if i % 4 == 0 {
            on_disk(&h, &p, None);
            mixed.push(h.event(Kind::Deleted, &p, None, None));
        } else {
            for round in 0..(1 + i % 2) {
                let t = format!("# M{i}\nsecond{i} round{round} common\n");
                on_disk(&h, &p, Some(&t));
                mixed.push(h.event(Kind::Modified, &p, None, Some(&t)));
            }
        }
    }
    let t = "---\naliases: [Batch Alias]\n---\nfront edited zebra\n";
    on_disk(&h, "fm/Front.md", Some(t));
    mixed.push(h.event(Kind::Modified, "fm/Front.md", None, Some(t)));
    h.apply(&mixed);

    let (_dir, db2) = fresh_reindex(&h);
    let vocab = "SELECT term, doc, cnt FROM notes_vocab ORDER BY term";
    let live = rows(&h.conn(), vocab);
    assert_eq!(live, rows(&open_ro(&db2).expect("ro"), vocab));
    let c = h.conn();
    let term = "SELECT count(*) FROM notes_vocab WHERE term = ?1";
    assert_eq!(count_p(&c, term, "doomed"), 0);
    assert_eq!(count_p(&c, term, "twice"), 1);
    for (word, path) in [
        ("renamed", None),
        ("third", None),
        ("twice", Some("Final.md")),
        ("fresh", None),
        ("zebra", Some("fm/Front.md")),
        ("first3", None),
        ("second3", Some("many/M3.md")),
        ("heading", Some("sub/Plain Moved.md")),
    ] {
        let hits: Vec<String> = c
            .prepare("SELECT n.path FROM notes_fts f JOIN notes n ON n.id = f.rowid WHERE notes_fts MATCH ?1")
            .expect("prepare")
            .query_map([word], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            hits,
            path.into_iter().map(str::to_string).collect::<Vec<_>>(),
            "{word}"
        );
    }
}

fn rows(c: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut st = c.prepare(sql).expect("prepare");
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
            .collect::<Result<Vec<_>, _>>()
    })
    .expect("query")
    .collect::<Result<Vec<_>, _>>()
    .expect("rows")
}

#[test]
fn remote_consumer_without_content_indexes_metadata() {
    let mut h = Harness::new();
    h.write("Linker.md", "[[Far]] ![[pic.png]]");
    // A remote consumer sees no content for a note too big for the message.
    let mut e = h.event(Kind::Created, "Far.md", None, None);
    e.hash = Some("abc".into());
    e.size = 99_000_000;
    h.apply(&[e]);
    let c = h.conn();
    let far = query::note(&c, "Far").expect("far");
    assert_eq!(far.size, 99_000_000);
    assert!(
        far.error
            .as_deref()
            .is_some_and(|e| e.contains("metadata only"))
    );
    assert_eq!(target_of(&c, "Linker.md", "Far").as_deref(), Some("Far.md"));
    // Renaming it (same hash, no content) moves the row.
    let mut e = h.event(Kind::Renamed, "sub/Far.md", Some("Far.md"), None);
    e.hash = Some("abc".into());
    h.apply(&[e]);
    assert_eq!(
        target_of(&c, "Linker.md", "Far").as_deref(),
        Some("sub/Far.md")
    );
    assert_eq!(query::note(&c, "Far").expect("far").size, 99_000_000);
}

#[test]
fn task_tag_filter_matches_whole_tags_only() {
    let src = tempfile::tempdir().expect("tempdir");
    // A note's tags count for all its tasks, so the near-miss lives in a note of its own.
    std::fs::write(
        src.path().join("a.md"),
        "# A\n\n- [ ] file the #work report\n",
    )
    .expect("write");
    std::fs::write(
        src.path().join("b.md"),
        "# B\n\n- [ ] nested #work/admin form\n",
    )
    .expect("write");
    std::fs::write(
        src.path().join("c.md"),
        "# C\n\n- [ ] fix the #workshop bench\n",
    )
    .expect("write");
    let (_dir, _vault, db) = index_copy(src.path());
    let conn = open_ro(&db).expect("open");
    let texts: Vec<String> = query::tasks(&conn, TaskFilter::All, Some("work"))
        .expect("tasks")
        .tasks
        .into_iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains("workshop")), "{texts:?}");
}

#[test]
fn a_search_ranks_as_one_query_over_every_match_would() {
    // An unfiltered search scores every match in the full-text index alone and looks up only
    // the best ones; a path filter matching every note takes the one-query path, which orders
    // every match by title, score and path. Both must give the same hits in the same order:
    // notes titled as the query first, ties on score by path (here, a run of identical notes
    // ties at every cut).
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(vault.join("same")).expect("mkdir");
    for i in 0..40 {
        let text = format!(
            "{}{}\n",
            "alpha ".repeat(1 + i % 7),
            "filler words here ".repeat(i % 11)
        );
        std::fs::write(vault.join(format!("n{i:02}.md")), text).expect("write");
    }
    for i in 0..12 {
        std::fs::write(vault.join(format!("same/s{i:02}.md")), "alpha beta gamma\n")
            .expect("write");
    }
    std::fs::write(
        vault.join("Alpha.md"),
        "no such word in the body\nalpha once\n",
    )
    .expect("write");
    std::fs::write(vault.join("Alpha Beta.md"), "# Alpha Beta\nbeta\n").expect("write");
    let db = dir.path().join("cache.db");
    let files = vault_files(&vault).expect("walk");
    reindex(&db, &vault, files.into_iter(), 0, &CacheConfig::default()).expect("reindex");
    let c = open_ro(&db).expect("ro");
    let hits = |q: &str, limit: usize, glob: Option<&str>| -> Vec<(String, String)> {
        query::search(&c, q, None, glob, limit)
            .expect("search")
            .hits
            .into_iter()
            .map(|h| (h.path, format!("{:.12}", h.score)))
            .collect()
    };
    let mut compared = 0;
    for q in [
        "alpha",
        "beta",
        "gamma",
        "alpha beta",
        "alpha OR filler",
        "nothing",
    ] {
        for limit in [1, 3, 5, 12, 20, 100] {
            let fast = hits(q, limit, None);
            assert_eq!(fast, hits(q, limit, Some("*")), "{q:?}, limit {limit}");
            compared += fast.len();
        }
    }
    assert!(compared > 200, "too few hits compared: {compared}");
    assert_eq!(hits("alpha", 1, None)[0].0, "Alpha.md");
    assert_eq!(hits("alpha beta", 1, None)[0].0, "Alpha Beta.md");
}
