//! Git safety reporting and storage integrity on the real binary: a long rebase, held and
//! stale `index.lock`s, damaged journal and cache pages, and a full disk under the state folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use vaultkeeper_testkit::GitVault;

use crate::util::{BIN, Daemon, TestVault, hash, wait_until};

/// Everything committed: `git add -A` and a commit.
fn commit_all(g: &GitVault, msg: &str) {
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", msg]);
}

/// The log without its colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Log lines at warn level or above that contain `needle`.
fn warnings_with(log: &str, needle: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// [`wait_until`], but a timeout shows the daemon's log.
fn wait_logged(d: &Daemon, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; log:\n{}",
            plain(&d.log())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn after_a_long_rebase_pending_changes_commit_within_the_quiet_period() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"1s\"\nmax_delay = \"10m\"\n");
    g.v.write("README.md", "# vault\n");
    commit_all(&g, "init");
    g.v.write("second.md", "two\n");
    commit_all(&g, "second");
    let d = g.start();
    g.git(&["rebase", "-i", "HEAD~1"]);
    assert!(g.v.root.join(".git/rebase-merge").exists());
    let head = g.head();
    g.v.write("during-rebase.md", "written mid-rebase\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    // A rebase the user takes their time over: long enough for any backoff to grow large.
    let held = Instant::now();
    wait_until("40 s of rebase", Duration::from_secs(60), || {
        held.elapsed() >= Duration::from_secs(40)
    });
    assert_eq!(g.head(), head, "daemon committed during a rebase");
    // End it right after a look at the repository, so a grown retry delay cannot hide by
    // luck of timing: the next look must still come within the quiet period.
    let looks = count(&d.log(), "git: still waiting");
    wait_until(
        "the next look at the repository",
        Duration::from_secs(90),
        || count(&d.log(), "git: still waiting") > looks,
    );
    g.git(&["rebase", "--continue"]);
    let ended = Instant::now();
    // The note being tracked, not HEAD moving: the commit may land before HEAD is read.
    wait_logged(
        &d,
        "the commit after the rebase",
        Duration::from_secs(60),
        || !g.git(&["ls-files", "during-rebase.md"]).trim().is_empty() && g.porcelain().is_empty(),
    );
    let took = ended.elapsed();
    assert!(
        took <= Duration::from_secs(6),
        "committed {took:?} after the rebase ended; quiet is 1 s\n{}",
        d.log()
    );
    d.stop();
}

#[test]
fn a_held_index_lock_is_reported_once_with_its_age() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"300ms\"\nmax_delay = \"5m\"\n");
    g.v.write("README.md", "# vault\n");
    commit_all(&g, "init");
    let d = g.start();
    let lock = g.v.root.join(".git/index.lock");
    std::fs::write(&lock, "held by another process").expect("lock");
    let head = g.head();
    g.v.write("locked.md", "while locked\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    wait_until("several retries", Duration::from_secs(30), || {
        count(&d.log(), "git: still waiting") >= 4
    });
    let log = d.log();
    let warned = warnings_with(&log, "index.lock");
    assert_eq!(warned.len(), 1, "reported more than once:\n{log}");
    assert!(warned[0].contains("held for"), "no age in {:?}", warned[0]);
    assert_eq!(g.head(), head, "committed while index.lock was held");
    std::fs::remove_file(&lock).expect("release lock");
    wait_until("commit after the lock", Duration::from_secs(60), || {
        g.head() != head && g.porcelain().is_empty()
    });
    d.stop();
}

#[test]
fn a_stale_index_lock_is_reported_once_as_stale_and_by_doctor() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"300ms\"\nmax_delay = \"5m\"\n");
    g.v.write("README.md", "# vault\n");
    commit_all(&g, "init");
    let lock = g.v.root.join(".git/index.lock");
    std::fs::write(&lock, "left by a git that was killed").expect("lock");
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(20 * 60)))
        .expect("age the lock");
    let d = g.start();
    g.v.write("locked.md", "while locked\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    wait_until("several retries", Duration::from_secs(30), || {
        count(&d.log(), "git: still waiting") >= 4
    });
    let log = d.log();
    let warned = warnings_with(&log, "index.lock");
    assert_eq!(warned.len(), 1, "reported more than once:\n{log}");
    assert!(
        warned[0].contains("20 min") && warned[0].contains("stale"),
        "not reported as a 20 min old, stale lock: {:?}",
        warned[0]
    );
    let out = g.cmd().arg("doctor").output().expect("doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("index.lock"))
        .unwrap_or_else(|| panic!("doctor does not report the lock:\n{text}"));
    assert!(
        line.contains("20 min") && line.contains("stale"),
        "doctor: {line}"
    );
    assert!(lock.exists(), "the lock was removed");
    std::fs::remove_file(&lock).expect("remove the stale lock");
    wait_logged(
        &d,
        "the commit after the lock",
        Duration::from_secs(60),
        || g.porcelain().is_empty(),
    );
    d.stop();
}

/// The page size and the bytes of an SQLite file.
fn sqlite_pages(db: &Path) -> (usize, Vec<u8>) {
    let bytes = std::fs::read(db).expect("read db");
    let raw = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let page = if raw == 1 { 65536 } else { raw };
    (page, bytes)
}

/// Moves everything from the WAL into the main file, so that the file is the whole database.
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
}

/// Overwrites the first page of one of `kinds` (b-tree page types: 0x0D a table leaf, 0x0A an
/// index leaf) at or after the middle of the file with garbage;
/// returns its page number (1-based).
fn corrupt_middle_page(db: &Path, kinds: &[u8]) -> usize {
    checkpoint(db);
    let (page, mut bytes) = sqlite_pages(db);
    let pages = bytes.len() / page;
    assert!(
        pages >= 8,
        "database too small to damage in the middle: {pages} pages"
    );
    let n = (pages / 2..pages)
        .find(|&i| kinds.contains(&bytes[i * page]))
        .expect("a leaf page in the second half");
    for b in &mut bytes[n * page..(n + 1) * page] {
        *b = 0xA5;
    }
    std::fs::write(db, &bytes).expect("write db");
    n + 1
}

fn note_text(i: usize) -> String {
    format!(
        "# Note {i}\n\n{}\n[[Note {}]] #topic{}\n",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(16),
        i + 1,
        i % 7
    )
}

fn write_notes(v: &TestVault, n: usize) {
    for i in 0..n {
        v.write(&format!("notes/n{:03}/note-{i}.md", i / 50), &note_text(i));
    }
}

#[test]
fn a_damaged_journal_is_refused_kept_and_salvaged_then_the_vault_is_rescanned() {
    let v = TestVault::new(BIN);
    write_notes(&v, 300);
    let d = v.start();
    v.wait_events(300, "300 creations");
    d.stop();
    let journal = v.state_dir().join("journal.db");
    let old_head = v.journal().expect("journal").head().expect("head");
    // 0x0D: a table leaf, which in the journal means the events table.
    corrupt_middle_page(&journal, &[0x0D]);
    let damaged = std::fs::read(&journal).expect("read");

    // The daemon refuses it: it says what is damaged and how out, and keeps the file.
    let mut d = v.spawn();
    let status = d.wait_exit(Duration::from_secs(60));
    let log = d.log();
    assert!(!status.success(), "daemon ran on a damaged journal:\n{log}");
    assert!(
        log.contains("journal.db")
            && log.contains("damaged")
            && log.contains("vaultkeeper salvage"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(&journal).expect("read"),
        damaged,
        "the damaged journal was changed"
    );

    // doctor's full check finds it too.
    let out = v.run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "doctor passed a damaged journal:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("journal") && l.contains("damaged"))
        .unwrap_or_else(|| panic!("doctor does not report the journal:\n{text}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(text.contains("vaultkeeper salvage"), "{text}");

    // Salvage: a fresh journal with what could be read, the damaged one kept beside it.
    let out = v.run(&["salvage"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "salvage failed: {said}");
    let kept: Vec<PathBuf> = std::fs::read_dir(v.state_dir())
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("journal.db.damaged-") && !n.ends_with("-wal") && !n.ends_with("-shm")
            })
        })
        .collect();
    assert_eq!(kept.len(), 1, "damaged journal not kept: {said}");
    assert_eq!(std::fs::read(&kept[0]).expect("read"), damaged);
    assert!(said.contains(&kept[0].display().to_string()), "{said}");
    {
        let conn = rusqlite::Connection::open(&journal).expect("open salvaged");
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(ok, "ok");
    }
    let salvaged = v.events();
    assert!(
        !salvaged.is_empty() && salvaged.len() < 300,
        "expected some but not all events back, got {}",
        salvaged.len()
    );
    // Both sides of the damaged page come back, not only what precedes it.
    assert_eq!(salvaged.first().map(|e| e.seq), Some(1), "{said}");
    assert_eq!(salvaged.last().map(|e| e.seq), Some(old_head), "{said}");
    assert!(said.contains("unreadable"), "{said}");

    // The next start reconciles the vault: the snapshot matches the disk again, every
    // file is announced again above the old head, and new changes go on from there.
    let d = v.start();
    let disk = v.files_on_disk();
    wait_until("every file re-announced", Duration::from_secs(60), || {
        let events = v.events();
        disk.iter().all(|p| {
            events
                .iter()
                .any(|e| e.seq > old_head && &e.file_path == p && e.hash.is_some())
        })
    });
    let files = v.journal().expect("journal").load_files().expect("files");
    assert_eq!(
        files
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        disk
    );
    for (path, state) in &files {
        let text = std::fs::read_to_string(v.path(path)).expect("read note");
        assert_eq!(
            vaultkeeper_core::file::hash_hex(state.hash.as_ref()),
            hash(&text),
            "{path}"
        );
    }
    v.write("after.md", "after the salvage\n");
    let mut after = None;
    wait_until("the new note", Duration::from_secs(30), || {
        after = v.events().into_iter().find(|e| e.file_path == "after.md");
        after.is_some()
    });
    let after = after.expect("after.md event");
    assert!(
        after.seq > old_head,
        "seq {} reused (old head {old_head})",
        after.seq
    );
    d.stop();
}

fn cache_count(db: &Path) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .ok()
}

#[test]
fn a_damaged_cache_is_rebuilt_from_the_vault_and_says_so() {
    let v = TestVault::new(BIN);
    write_notes(&v, 300);
    let cache = v.state_dir().join("cache.db");
    let d = v.start();
    wait_until("300 notes in the cache", Duration::from_secs(60), || {
        cache_count(&cache) == Some(300)
    });
    d.stop();
    corrupt_middle_page(&cache, &[0x0D, 0x0A]);

    let d = v.start();
    wait_logged(&d, "the cache rebuilt", Duration::from_secs(60), || {
        cache_count(&cache) == Some(300) && d.log().contains("cache: full index done")
    });
    let log = d.log();
    let said = warnings_with(&log, "cache.db");
    assert!(
        said.iter()
            .any(|l| l.contains("damaged") && l.contains("rebuilding")),
        "the rebuild was not announced:\n{log}"
    );
    let conn =
        rusqlite::Connection::open_with_flags(&cache, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open cache");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ok, "ok");
    drop(conn);
    let out = v.run(&["search", "Lorem", "--limit", "500", "--json"]);
    assert!(out.status.success());
    let hits = String::from_utf8_lossy(&out.stdout)
        .matches("note-")
        .count();
    assert!(hits >= 300, "search sees {hits} notes");
    d.stop();
}

/// A size-limited tmpfs mounted over a folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a filler file until the disk is full; returns it.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_under_the_state_folder_loses_nothing_once_space_frees() {
    let v = TestVault::new(BIN);
    let disk = SmallDisk::mount(&v.state_dir(), "8m");
    v.write("before.md", "before the disk filled\n");
    let mut d = v.start();
    v.wait_events(1, "the first note");
    let filler = disk.fill();
    for i in 0..20 {
        v.write(&format!("full-{i}.md"), &note_text(i));
    }
    wait_until(
        "the journal to report the full disk",
        Duration::from_secs(60),
        || {
            warnings_with(&d.log(), "full")
                .iter()
                .any(|l| l.contains("journal"))
        },
    );
    assert!(
        d.child.try_wait().expect("try_wait").is_none(),
        "the daemon exited on a full disk:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        warnings_with(&log, "full")
            .iter()
            .any(|l| l.contains("journal")),
        "no journal error naming the full disk:\n{log}"
    );
    std::fs::remove_file(&filler).expect("free space");
    wait_until(
        "the notes journaled after space freed",
        Duration::from_secs(90),
        || {
            let events = v.events();
            (0..20).all(|i| {
                let p = format!("full-{i}.md");
                events.iter().any(|e| {
                    e.file_path == p && e.hash.as_deref() == Some(hash(&note_text(i)).as_str())
                })
            })
        },
    );
    let cache = v.state_dir().join("cache.db");
    wait_until("the cache caught up", Duration::from_secs(60), || {
        cache_count(&cache) == Some(21)
    });
    let log = d.stop();
    drop(disk);
    assert!(log.contains("ready"), "{log}");
}
