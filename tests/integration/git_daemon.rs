//! Git auto-commit through the real daemon on real repositories, checked with the `git` CLI.

use std::path::PathBuf;
use std::time::Duration;

use vaultkeeper_testkit::git::{FAST, GitVault};

use crate::util::{BIN, wait_until};

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn burst_of_1000_notes_becomes_few_commits() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    let d = g.start();
    g.write_notes("burst", 1000);
    g.wait_clean("1,000 notes committed", Duration::from_secs(120), || {
        g.tracked() == 1001
    });
    let commits = g.commits() - 1;
    assert!(
        (1..=5).contains(&commits),
        "{commits} commits for one burst"
    );
    let (ok, fsck) = g.try_git(&["fsck", "--strict"]);
    assert!(ok, "git fsck --strict: {fsck}");
    let adds = g.additions();
    for i in 0..1000 {
        let p = format!("burst/d{:02}/note-{i}.md", i / 100);
        assert_eq!(adds.get(&p), Some(&1), "{p} in git log --name-status");
    }
    d.stop();
}

#[test]
fn renames_and_deletions_are_committed() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    let d = g.start();
    let body = "# A note long enough for rename detection\n\nline one\nline two\nline three\n";
    g.v.write("a.md", body);
    g.v.write("b.md", "# B\n");
    g.wait_clean("a.md and b.md committed", Duration::from_secs(30), || {
        g.tracked() == 3
    });
    std::fs::create_dir_all(g.v.path("moved")).expect("mkdir");
    std::fs::rename(g.v.path("a.md"), g.v.path("moved/c.md")).expect("rename");
    std::fs::remove_file(g.v.path("b.md")).expect("remove");
    g.wait_clean(
        "rename and delete committed",
        Duration::from_secs(30),
        || g.tracked() == 2,
    );
    let log = g.git(&["log", "-M", "--name-status", "--format=%H"]);
    assert!(log.contains("R100\ta.md\tmoved/c.md"), "{log}");
    assert!(log.contains("D\tb.md"), "{log}");
    d.stop();
}

#[test]
fn no_commit_during_rebase_then_commits_after_continue() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    g.v.write("second.md", "two\n");
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "second"]);
    let d = g.start();
    let out = g.git(&["rebase", "-i", "HEAD~1"]);
    assert!(g.v.root.join(".git/rebase-merge").exists(), "{out}");
    let head = g.head();
    g.v.write("during-rebase.md", "written mid-rebase\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    g.v.write("during-rebase-2.md", "more\n");
    g.wait_event("during-rebase-2.md");
    // Through a few retries the daemon still must not touch HEAD.
    wait_until("git to retry", Duration::from_secs(30), || {
        count(&d.log(), "git: still waiting") >= 2
    });
    assert_eq!(g.head(), head, "daemon committed during a rebase");
    g.git(&["rebase", "--continue"]);
    // The daemon may commit before the test reads HEAD again: wait for the files, not for
    // HEAD to move past a HEAD read after the rebase.
    g.wait_clean(
        "mid-rebase notes committed",
        Duration::from_secs(60),
        || g.tracked() == 4,
    );
    let files = g.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(files.contains("during-rebase.md"), "{files}");
    assert!(files.contains("during-rebase-2.md"), "{files}");
    d.stop();
}

#[test]
fn no_commit_during_conflicted_merge_then_commits_after_resolution() {
    let g = GitVault::new(BIN, FAST);
    g.v.write("shared.md", "base\n");
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "base"]);
    g.git(&["checkout", "-q", "-b", "other"]);
    g.v.write("shared.md", "theirs\n");
    g.git(&["commit", "-q", "-am", "theirs"]);
    g.git(&["checkout", "-q", "main"]);
    g.v.write("shared.md", "ours\n");
    g.git(&["commit", "-q", "-am", "ours"]);
    let d = g.start();
    let (ok, out) = g.try_git(&["merge", "other"]);
    assert!(!ok, "merge should conflict: {out}");
    let head = g.head();
    g.v.write("during-merge.md", "written mid-merge\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    wait_until("git to retry", Duration::from_secs(30), || {
        count(&d.log(), "git: still waiting") >= 2
    });
    assert_eq!(g.head(), head, "daemon committed during a merge");
    g.v.write("shared.md", "resolved\n");
    g.git(&["add", "shared.md"]);
    g.git(&["commit", "-q", "--no-edit"]);
    // Found by its parents: the daemon may already have committed on top of it.
    let merge = g
        .git(&["log", "-1", "--merges", "--format=%H"])
        .trim()
        .to_string();
    g.wait_clean("mid-merge note committed", Duration::from_secs(60), || {
        g.head() != merge
    });
    let files = g.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(files.contains("during-merge.md"), "{files}");
    assert_eq!(g.git(&["rev-parse", "HEAD~1"]).trim(), merge);
    d.stop();
}

#[test]
fn waits_for_a_foreign_index_lock_and_never_removes_it() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    let d = g.start();
    let lock = g.v.root.join(".git/index.lock");
    std::fs::write(&lock, "held by another process").expect("lock");
    let head = g.head();
    g.v.write("locked.md", "while locked\n");
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    // The other process lets go after 3 s; the lock must still be its own file until then.
    let held = std::time::Instant::now();
    wait_until("3 s of holding the lock", Duration::from_secs(10), || {
        assert_eq!(
            std::fs::read_to_string(&lock).ok().as_deref(),
            Some("held by another process"),
            "index.lock was removed or replaced while held"
        );
        assert_eq!(g.head(), head, "committed while index.lock was held");
        held.elapsed() >= Duration::from_secs(3)
    });
    std::fs::remove_file(&lock).expect("release lock");
    g.wait_clean("commit after the lock", Duration::from_secs(60), || {
        g.head() != head
    });
    assert!(
        g.git(&["show", "--name-only", "--format=", "HEAD"])
            .contains("locked.md")
    );
    d.stop();
}

#[test]
fn sigterm_commits_pending_changes_before_exit() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"30s\"\nmax_delay = \"5m\"\n");
    g.initial_commit();
    let d = g.start();
    let head = g.head();
    g.v.write("pending.md", "pending at shutdown\n");
    g.wait_event("pending.md");
    assert_eq!(g.head(), head, "committed before the quiet period");
    d.stop();
    assert!(g.porcelain().is_empty(), "{}", g.porcelain());
    assert!(
        g.git(&["show", "--name-only", "--format=", "HEAD"])
            .contains("pending.md")
    );
}

#[test]
fn kill9_mid_burst_then_restart_commits_everything_once() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    let mut d = g.start();
    let mut killed = false;
    for i in 0..1000 {
        g.v.write(
            &format!("burst/d{:02}/note-{i}.md", i / 100),
            &format!("# {i}\n"),
        );
        // Kill once a first commit of part of the burst has happened (or half-way at the latest).
        if !killed && i >= 300 && (g.commits() > 1 || i >= 500) {
            d.kill9();
            killed = true;
        }
    }
    assert!(killed);
    let d = g.start();
    let out = g.run(&["commit"]);
    assert!(
        out.status.success(),
        "vaultkeeper commit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.wait_clean("everything committed", Duration::from_secs(60), || {
        g.tracked() == 1001
    });
    let adds = g.additions();
    for i in 0..1000 {
        let p = format!("burst/d{:02}/note-{i}.md", i / 100);
        assert_eq!(adds.get(&p), Some(&1), "{p} added once");
    }
    let (ok, fsck) = g.try_git(&["fsck", "--strict"]);
    assert!(ok, "git fsck --strict: {fsck}");
    d.stop();
}

#[test]
fn gitignored_files_are_never_committed() {
    // With the watcher honouring .gitignore (default) and with it journaling everything.
    for watch_gitignore in [true, false] {
        let g = GitVault::new(
            BIN,
            &format!("{FAST}[watch]\ngitignore = {watch_gitignore}\n"),
        );
        g.v.write(".gitignore", "secret.md\nprivate/\n");
        g.initial_commit();
        let d = g.start();
        g.v.write("secret.md", "do not commit\n");
        g.v.write("private/diary.md", "do not commit\n");
        g.v.write("visible.md", "commit me\n");
        wait_until("visible.md committed", Duration::from_secs(30), || {
            g.git(&["ls-files"]).contains("visible.md")
        });
        let events = g.v.events_before_sentinel();
        let journaled = events.iter().any(|e| e.file_path == "secret.md");
        assert_eq!(journaled, !watch_gitignore, "watcher and .gitignore");
        let out = g.run(&["commit"]);
        assert!(out.status.success());
        let all = g.git(&["log", "--all", "--name-only", "--format="]);
        assert!(!all.contains("secret.md"), "{all}");
        assert!(!all.contains("private/"), "{all}");
        assert!(g.porcelain().is_empty(), "{}", g.porcelain());
        d.stop();
    }
}

#[test]
fn commit_command_with_a_daemon() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"1h\"\nmax_delay = \"2h\"\n");
    g.initial_commit();
    let d = g.start();
    let head = g.head();
    g.v.write("now.md", "commit me now\n");
    g.wait_event("now.md");
    assert_eq!(g.head(), head);
    let out = g.run(&["commit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(g.head(), head);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.starts_with(&g.head()[..12]), "{stdout}");
    assert!(g.porcelain().is_empty(), "{}", g.porcelain());
    d.stop();
}

#[test]
fn commit_command_without_a_daemon_applies_pending_events() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"1h\"\nmax_delay = \"2h\"\n");
    g.initial_commit();
    let mut d = g.start();
    let head = g.head();
    g.v.write("offline.md", "journaled, not committed\n");
    g.wait_event("offline.md");
    // No graceful flush: the event stays pending in the journal.
    d.kill9();
    assert_eq!(g.head(), head);
    let out = g.run(&["commit"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(g.head(), head);
    assert!(
        g.git(&["show", "--name-only", "--format=", "HEAD"])
            .contains("offline.md")
    );
    // Nothing left: a second run commits nothing new.
    let again = g.head();
    let out = g.run(&["commit"]);
    assert!(out.status.success());
    assert_eq!(g.head(), again);
}

#[test]
fn init_git_creates_the_repository_and_gitignore() {
    let g = GitVault::plain(BIN, "");
    g.v.write("note.md", "hello\n");
    let out = g.run(&["init", "--git"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(g.v.root.join(".git").is_dir());
    let ignore = std::fs::read_to_string(g.v.root.join(".gitignore")).expect(".gitignore");
    assert!(ignore.contains(".obsidian/workspace"), "{ignore}");
    let top = g.git(&["rev-parse", "--show-toplevel"]);
    assert_eq!(PathBuf::from(top.trim()), g.v.root);
}

fn status_json(g: &GitVault) -> (bool, serde_json::Value) {
    let out = g.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    (out.status.success(), v)
}

#[test]
fn status_shows_git_detail_and_off_is_healthy() {
    let g = GitVault::new(BIN, FAST);
    g.initial_commit();
    let d = g.start();
    g.v.write("one.md", "1\n");
    g.wait_clean("one.md committed", Duration::from_secs(30), || {
        g.tracked() == 2
    });
    let head = g.head();
    wait_until(
        "status to show the last commit",
        Duration::from_secs(30),
        || {
            let (_, v) = status_json(&g);
            v["consumers"].as_array().is_some_and(|a| {
                a.iter().any(|c| {
                    c["name"] == "git" && c["detail"]["last_commit"].as_str() == Some(&head)
                })
            })
        },
    );
    let (ok, v) = status_json(&g);
    assert!(ok, "{v:#}");
    assert_eq!(v["healthy"], true);
    d.stop();

    // Not a repository: git is off, and the daemon is still healthy.
    let plain = GitVault::plain(BIN, FAST);
    let d = plain.start();
    d.wait_log("git auto-commit is off", Duration::from_secs(10));
    plain.v.write("x.md", "x\n");
    plain.wait_event("x.md");
    let (ok, v) = status_json(&plain);
    assert!(ok, "{v:#}");
    assert_eq!(v["healthy"], true);
    d.stop();
}
