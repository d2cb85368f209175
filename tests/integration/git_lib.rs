//! Integration tests of the git consumer on real repositories, checked with the real `git` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_core::retry::Backoff;
use vaultkeeper_git::{self as git, GitConfig, GitConsumer, GitError, GitStart};

/// A temporary repository with an isolated git configuration for the CLI.
struct Repo {
    _tmp: TempDir,
    home: PathBuf,
    dir: PathBuf,
}

fn git_in(home: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_EDITOR", "true")
        .env("GIT_SEQUENCE_EDITOR", "sed -i s/pick/edit/")
        .output()
        .expect("run git");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Repo {
    fn new() -> Repo {
        let tmp = TempDir::new().expect("tempdir");
        let home = tmp.path().join("home");
        let dir = tmp.path().join("vault");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(&dir).expect("vault");
        std::fs::write(home.join("gitconfig"), "").expect("gitconfig");
        let r = Repo {
            _tmp: tmp,
            home,
            dir,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.name", "Test User"]);
        r.git(&["config", "user.email", "test@example.org"]);
        r.git(&["config", "commit.gpgsign", "false"]);
        r
    }

    fn git(&self, args: &[&str]) -> String {
        let (ok, text) = git_in(&self.home, &self.dir, args);
        assert!(ok, "git {args:?} failed: {text}");
        text
    }

    fn try_git(&self, args: &[&str]) -> (bool, String) {
        git_in(&self.home, &self.dir, args)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    fn commits(&self) -> usize {
        let (ok, out) = self.try_git(&["rev-list", "--count", "HEAD"]);
        if ok {
            out.trim().parse().expect("count")
        } else {
            0
        }
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    fn assert_clean(&self) {
        assert_eq!(
            self.git(&["status", "--porcelain"]),
            "",
            "work tree not clean"
        );
        let (ok, out) = self.try_git(&["fsck", "--strict"]);
        assert!(ok, "git fsck --strict: {out}");
    }
}

fn cfg() -> GitConfig {
    GitConfig {
        quiet: Duration::from_millis(50),
        max_delay: Duration::from_secs(60),
        ..GitConfig::default()
    }
}

fn consumer(repo: &Repo, cfg: &GitConfig) -> GitConsumer {
    GitConsumer::open(&repo.dir, cfg, "vault", "testhost").expect("open consumer")
}

fn ev(seq: u64, kind: Kind, path: &str, old: Option<&str>) -> Event {
    let mut e = Event::builder(kind, path)
        .old_path(old.map(str::to_string))
        .source("vault", "testhost")
        .origin(Origin::Watch)
        .build();
    e.seq = seq;
    e
}

/// Calls `on_deadline` the way the runner does: when the deadline passes, and again with
/// backoff after transient errors, until something is durable or `limit` runs out.
async fn run_until_durable(c: &mut GitConsumer, limit: Duration) -> (Result<Durable, String>, u32) {
    let end = Instant::now() + limit;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
    let mut transient = 0;
    loop {
        if Instant::now() >= end {
            return (
                Err(format!("no durable result within {limit:?}")),
                transient,
            );
        }
        let Some(deadline) = c.deadline() else {
            return (Ok(Durable::Unchanged), transient);
        };
        let now = Instant::now();
        if deadline > now {
            tokio::time::sleep(deadline - now).await;
        }
        match c.on_deadline().await {
            Ok(Durable::Unchanged) => {}
            Ok(d) => return (Ok(d), transient),
            Err(ConsumerError::Transient { .. }) => {
                transient += 1;
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return (Err(e.to_string()), transient),
        }
    }
}

#[tokio::test]
async fn burst_of_1000_notes_is_one_commit() {
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    let mut events = Vec::new();
    for i in 0..1000 {
        let p = format!("folder {}/note {i}.md", i % 17);
        repo.write(&p, &format!("# Note {i}\n"));
        events.push(ev(i + 1, Kind::Created, &p, None));
    }
    for chunk in events.chunks(100) {
        assert_eq!(c.handle(chunk).await.expect("handle"), Durable::Unchanged);
    }
    assert_eq!(c.pending(), 1000);
    let (r, _) = run_until_durable(&mut c, Duration::from_secs(60)).await;
    assert_eq!(r, Ok(Durable::Upto(1000)));
    assert_eq!(repo.commits(), 1);
    repo.assert_clean();
    let log = repo.git(&["log", "--name-status", "--format=%B"]);
    assert_eq!(log.lines().filter(|l| l.starts_with("A\t")).count(), 1000);
    for i in [0, 1, 500, 999] {
        assert!(
            log.contains(&format!("A\tfolder {}/note {i}.md", i % 17)),
            "{i}"
        );
    }
    let msg = repo.git(&["log", "-1", "--format=%B"]);
    assert!(
        msg.starts_with("vault: 1000 change(s) on testhost\n\nA folder 0/note 0.md\n"),
        "{msg}"
    );
    assert!(msg.contains("... and 980 more"), "{msg}");
    assert_eq!(c.status().pending, 0);
    assert_eq!(c.status().last_commit, Some(repo.head()));
    assert_eq!(c.deadline(), None);
    // The burst went to disk as one pack, not 1,000 loose objects.
    let packs = std::fs::read_dir(repo.dir.join(".git/objects/pack"))
        .expect("pack dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pack"))
        })
        .count();
    assert_eq!(packs, 1);
    // Redelivered after a crash (a new consumer, same events): nothing twice, no empty pack.
    let mut again = consumer(&repo, &cfg());
    again.handle(&events).await.expect("handle");
    assert_eq!(again.flush().await.expect("flush"), Durable::Upto(1000));
    assert_eq!(repo.commits(), 1);
    // Half of them edited, a few deleted: a second bulk commit on top of the pack.
    for i in 0..500 {
        repo.write(
            &format!("folder {}/note {i}.md", i % 17),
            &format!("# Note {i}\nedited\n"),
        );
    }
    for i in 500..520 {
        std::fs::remove_file(repo.dir.join(format!("folder {}/note {i}.md", i % 17))).expect("rm");
    }
    again.handle(&events[..520]).await.expect("handle");
    assert_eq!(again.flush().await.expect("flush"), Durable::Upto(1000));
    assert_eq!(repo.commits(), 2);
    let stat = repo.git(&["show", "--name-status", "--format=", "HEAD"]);
    assert_eq!(stat.lines().filter(|l| l.starts_with("M\t")).count(), 500);
    assert_eq!(stat.lines().filter(|l| l.starts_with("D\t")).count(), 20);
    repo.assert_clean();
}

#[tokio::test]
async fn renames_and_deletions_are_committed() {
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    repo.write("a.md", "alpha note with enough text to be a rename\n");
    repo.write("b.md", "beta\n");
    c.handle(&[
        ev(1, Kind::Created, "a.md", None),
        ev(2, Kind::Created, "b.md", None),
    ])
    .await
    .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    std::fs::create_dir_all(repo.dir.join("dir")).expect("mkdir");
    std::fs::rename(repo.dir.join("a.md"), repo.dir.join("dir/a2.md")).expect("rename");
    std::fs::remove_file(repo.dir.join("b.md")).expect("rm");
    c.handle(&[
        ev(3, Kind::Renamed, "dir/a2.md", Some("a.md")),
        ev(4, Kind::Deleted, "b.md", None),
    ])
    .await
    .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(4));
    let log = repo.git(&["log", "-1", "-M", "--name-status", "--format="]);
    assert!(log.contains("R100\ta.md\tdir/a2.md"), "{log}");
    assert!(log.contains("D\tb.md"), "{log}");
    let msg = repo.git(&["log", "-1", "--format=%B"]);
    assert!(
        msg.contains("R a.md -> dir/a2.md") && msg.contains("D b.md"),
        "{msg}"
    );
    assert_eq!(repo.commits(), 2);
    repo.assert_clean();
}

#[tokio::test]
async fn a_renamed_folder_arrives_as_one_event() {
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    repo.write("Old/one.md", "first note in the folder, long enough\n");
    repo.write("Old/sub/two.md", "second note in the folder, long enough\n");
    c.handle(&[ev(1, Kind::Created, "Old", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    assert_eq!(repo.git(&["ls-files"]), "Old/one.md\nOld/sub/two.md\n");
    std::fs::rename(repo.dir.join("Old"), repo.dir.join("New")).expect("rename");
    c.handle(&[ev(2, Kind::Renamed, "New", Some("Old"))])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    let log = repo.git(&["log", "-1", "-M", "--name-status", "--format="]);
    assert!(log.contains("R100\tOld/one.md\tNew/one.md"), "{log}");
    assert!(
        log.contains("R100\tOld/sub/two.md\tNew/sub/two.md"),
        "{log}"
    );
    std::fs::remove_dir_all(repo.dir.join("New")).expect("rm");
    c.handle(&[
        ev(3, Kind::Deleted, "New/one.md", None),
        ev(4, Kind::Deleted, "New", None),
    ])
    .await
    .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(4));
    assert_eq!(repo.git(&["ls-files"]), "");
    repo.assert_clean();
}

#[tokio::test]
async fn staged_content_matches_git_with_and_without_filters() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    repo.write("plain.md", "plain\n");
    repo.write("crlf.md", "kept as is\r\n");
    repo.write("run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        repo.dir.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("plain.md", repo.dir.join("link.md")).expect("symlink");
    let names = ["plain.md", "crlf.md", "run.sh", "link.md"];
    let events: Vec<Event> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ev(i as u64 + 1, Kind::Created, n, None))
        .collect();
    c.handle(&events).await.expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(4));
    repo.assert_clean();
    let tree = repo.git(&["ls-tree", "HEAD"]);
    assert!(
        tree.contains("100755 blob") && tree.contains("120000 blob"),
        "{tree}"
    );
    for n in names.iter().take(3) {
        let ours = repo.git(&["rev-parse", &format!("HEAD:{n}")]);
        let git = repo.git(&["hash-object", n]);
        assert_eq!(ours, git, "{n}");
    }
    // With attributes, git's filters apply (libgit2's add path): CRLF normalised.
    repo.write(".gitattributes", "*.txt text eol=lf\n");
    repo.write("sub/win.txt", "line one\r\nline two\r\n");
    c.handle(&[
        ev(5, Kind::Created, ".gitattributes", None),
        ev(6, Kind::Created, "sub/win.txt", None),
    ])
    .await
    .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(6));
    assert_eq!(
        repo.git(&["show", "HEAD:sub/win.txt"]),
        "line one\nline two\n"
    );
    repo.assert_clean();
}

#[tokio::test]
async fn rebase_in_progress_waits_then_commits() {
    let repo = Repo::new();
    repo.write("one.md", "1\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "one"]);
    repo.write("two.md", "2\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "two"]);
    let mut c = consumer(&repo, &cfg());
    repo.git(&["rebase", "-i", "HEAD~1"]);
    assert!(repo.dir.join(".git/rebase-merge").exists());
    let head = repo.head();
    repo.write("new.md", "written during the rebase\n");
    c.handle(&[ev(1, Kind::Created, "new.md", None)])
        .await
        .expect("handle");
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => assert!(m.contains("rebase"), "{m}"),
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(repo.head(), head, "committed during a rebase");
    assert!(c.status().blocked.is_some_and(|b| b.contains("rebase")));
    assert!(c.deadline().is_some(), "pending paths must stay due");
    repo.git(&["rebase", "--continue"]);
    let (r, _) = run_until_durable(&mut c, Duration::from_secs(30)).await;
    assert_eq!(r, Ok(Durable::Upto(1)));
    assert_eq!(repo.commits(), 3);
    assert!(
        repo.git(&["show", "--name-only", "--format=", "HEAD"])
            .contains("new.md")
    );
    assert_eq!(c.status().blocked, None);
    repo.assert_clean();
}

#[tokio::test]
async fn merge_with_conflicts_waits_then_commits() {
    let repo = Repo::new();
    repo.write("a.md", "base\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "base"]);
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("a.md", "side\n");
    repo.git(&["commit", "-q", "-am", "side"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.write("a.md", "main\n");
    repo.git(&["commit", "-q", "-am", "main"]);
    let mut c = consumer(&repo, &cfg());
    let (ok, _) = repo.try_git(&["merge", "side"]);
    assert!(!ok, "the merge must conflict");
    let head = repo.head();
    repo.write("during.md", "note written during the merge\n");
    c.handle(&[
        ev(1, Kind::Created, "during.md", None),
        ev(2, Kind::Modified, "a.md", None),
    ])
    .await
    .expect("handle");
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => assert!(m.contains("merge"), "{m}"),
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(repo.head(), head);
    repo.write("a.md", "resolved\n");
    repo.git(&["add", "a.md"]);
    repo.git(&["commit", "-q", "--no-edit"]);
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    let last = repo.git(&["show", "--name-status", "--format=", "HEAD"]);
    assert_eq!(
        last.trim(),
        "A\tduring.md",
        "only what differs from HEAD: {last}"
    );
    assert_eq!(repo.git(&["show", "HEAD:a.md"]), "resolved\n");
    repo.assert_clean();
}

#[tokio::test]
async fn held_index_lock_is_waited_for_and_never_removed() {
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    let lock = repo.dir.join(".git/index.lock");
    std::fs::write(&lock, "").expect("lock");
    let held = lock.clone();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        std::fs::remove_file(held).expect("unlock");
    });
    repo.write("x.md", "x\n");
    c.handle(&[ev(7, Kind::Created, "x.md", None)])
        .await
        .expect("handle");
    let start = Instant::now();
    let (r, transient) = run_until_durable(&mut c, Duration::from_secs(30)).await;
    release.join().expect("release thread");
    assert_eq!(r, Ok(Durable::Upto(7)));
    // Waiting for another git is not a failure: no transient errors, the status says `blocked`.
    assert_eq!(transient, 0, "a held lock was reported as an error");
    assert!(start.elapsed() >= Duration::from_millis(2500));
    assert_eq!(repo.commits(), 1);
    repo.assert_clean();
}

#[tokio::test]
async fn foreign_lock_makes_flush_transient_and_lock_stays() {
    let repo = Repo::new();
    let mut c = consumer(&repo, &cfg());
    let lock = repo.dir.join(".git/index.lock");
    std::fs::write(&lock, "someone else").expect("lock");
    repo.write("x.md", "x\n");
    c.handle(&[ev(1, Kind::Created, "x.md", None)])
        .await
        .expect("handle");
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => assert!(m.contains("index.lock"), "{m}"),
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock kept"),
        "someone else"
    );
    assert_eq!(repo.commits(), 0);
}

#[tokio::test]
async fn gitignored_files_are_never_committed() {
    let repo = Repo::new();
    repo.write(".gitignore", "secret.md\nprivate/\n");
    repo.write("secret.md", "s\n");
    repo.write("private/x.md", "p\n");
    repo.write("ok.md", "fine\n");
    let mut c = consumer(&repo, &cfg());
    c.handle(&[
        ev(1, Kind::Created, ".gitignore", None),
        ev(2, Kind::Created, "secret.md", None),
        ev(3, Kind::Created, "private/x.md", None),
        ev(4, Kind::Created, "ok.md", None),
    ])
    .await
    .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(4));
    let files = repo.git(&["ls-files"]);
    assert_eq!(files, ".gitignore\nok.md\n");
    repo.assert_clean();
}

#[tokio::test]
async fn no_empty_commits_and_redelivery_commits_nothing_twice() {
    let repo = Repo::new();
    repo.write("a.md", "a\n");
    let events = vec![
        ev(1, Kind::Created, "a.md", None),
        ev(2, Kind::Modified, "a.md", None),
    ];
    {
        let mut c = consumer(&repo, &cfg());
        c.handle(&events).await.expect("handle");
        assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
        assert_eq!(c.flush().await.expect("flush"), Durable::Unchanged);
    }
    assert_eq!(repo.commits(), 1);
    // A restart after a crash hands the same events over again.
    let mut c = consumer(&repo, &cfg());
    c.handle(&events).await.expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    // Events about a file that ends up as HEAD has it, and about a file that came and went.
    repo.write("tmp.md", "t\n");
    c.handle(&[
        ev(3, Kind::Modified, "a.md", None),
        ev(4, Kind::Created, "tmp.md", None),
    ])
    .await
    .expect("handle");
    std::fs::remove_file(repo.dir.join("tmp.md")).expect("rm");
    c.handle(&[ev(5, Kind::Deleted, "tmp.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(5));
    assert_eq!(repo.commits(), 1);
    repo.assert_clean();
}

#[tokio::test]
async fn users_own_commits_and_staging_are_respected() {
    let repo = Repo::new();
    repo.write("a.md", "a\n");
    repo.write("b.md", "b\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "start"]);
    let mut c = consumer(&repo, &cfg());
    repo.write("a.md", "a changed\n");
    c.handle(&[ev(1, Kind::Modified, "a.md", None)])
        .await
        .expect("handle");
    // The user commits that change themself, and stages another one without committing.
    repo.git(&["commit", "-q", "-am", "mine"]);
    repo.write("b.md", "b staged by the user\n");
    repo.git(&["add", "b.md"]);
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    assert_eq!(repo.commits(), 2, "no commit: a.md already matches HEAD");
    repo.write("c.md", "c\n");
    c.handle(&[ev(2, Kind::Created, "c.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    assert_eq!(repo.commits(), 3);
    let last = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(last, "c.md\n");
    assert_eq!(repo.git(&["diff", "--cached", "--name-only"]), "b.md\n");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>"]).trim(),
        "Test User <test@example.org>"
    );
    // A checkout to another branch: the next commit goes there.
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.write("d.md", "d\n");
    c.handle(&[ev(3, Kind::Created, "d.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(3));
    assert!(
        repo.git(&["show", "--name-only", "--format=", "other"])
            .contains("d.md")
    );
    assert_eq!(c.status().branch.as_deref(), Some("other"));
}

#[tokio::test]
async fn detached_head_is_refused() {
    let repo = Repo::new();
    repo.write("a.md", "a\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "start"]);
    repo.git(&["checkout", "-q", "--detach"]);
    let mut c = consumer(&repo, &cfg());
    repo.write("b.md", "b\n");
    c.handle(&[ev(1, Kind::Created, "b.md", None)])
        .await
        .expect("handle");
    for _ in 0..2 {
        match c.flush().await {
            Err(ConsumerError::Transient { reason: m, .. }) => {
                assert!(m.contains("detached"), "{m}")
            }
            other => panic!("expected Transient, got {other:?}"),
        }
    }
    assert_eq!(repo.commits(), 1);
    assert_eq!(c.status().branch, None);
    repo.git(&["checkout", "-q", "main"]);
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    assert_eq!(repo.commits(), 2);
}

#[tokio::test]
async fn quiet_period_and_max_delay_set_the_deadline() {
    let repo = Repo::new();
    let cfg = GitConfig {
        quiet: Duration::from_secs(10),
        max_delay: Duration::from_millis(300),
        ..GitConfig::default()
    };
    let mut c = consumer(&repo, &cfg);
    assert_eq!(c.deadline(), None);
    repo.write("a.md", "a\n");
    let before = Instant::now();
    c.handle(&[ev(1, Kind::Created, "a.md", None)])
        .await
        .expect("handle");
    let d = c.deadline().expect("deadline");
    assert!(d >= before + Duration::from_millis(300) && d < before + Duration::from_secs(2));
    // Not due yet: on_deadline does nothing.
    assert_eq!(c.on_deadline().await.expect("early"), Durable::Unchanged);
    let (r, _) = run_until_durable(&mut c, Duration::from_secs(10)).await;
    assert_eq!(r, Ok(Durable::Upto(1)));
    // Once past the max delay, handle commits by itself under a steady stream.
    repo.write("b.md", "b\n");
    c.handle(&[ev(2, Kind::Created, "b.md", None)])
        .await
        .expect("handle");
    let end = Instant::now() + Duration::from_secs(10);
    let mut seq = 2;
    loop {
        assert!(Instant::now() < end, "max delay not honoured");
        seq += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if c.handle(&[ev(seq, Kind::Modified, "b.md", None)])
            .await
            .expect("handle")
            == Durable::Upto(seq)
        {
            break;
        }
    }
    assert_eq!(repo.commits(), 2);
}

#[tokio::test]
async fn large_files_warn_or_are_skipped() {
    let repo = Repo::new();
    repo.write("big.bin", &"x".repeat(5000));
    repo.write("small.md", "s\n");
    let events = [
        ev(1, Kind::Created, "big.bin", None),
        ev(2, Kind::Created, "small.md", None),
    ];
    let skip = GitConfig {
        large_file_warn: 1000,
        skip_large: true,
        ..cfg()
    };
    let mut c = consumer(&repo, &skip);
    c.handle(&events).await.expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    assert_eq!(repo.git(&["ls-files"]), "small.md\n");
    let warn = GitConfig {
        large_file_warn: 1000,
        ..cfg()
    };
    let mut c = consumer(&repo, &warn);
    c.handle(&events).await.expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    assert_eq!(repo.git(&["ls-files"]), "big.bin\nsmall.md\n");
}

#[tokio::test]
async fn failing_signing_program_refuses_to_commit() {
    let repo = Repo::new();
    repo.git(&["config", "commit.gpgsign", "true"]);
    repo.git(&["config", "gpg.program", "false"]);
    let mut c = consumer(&repo, &cfg());
    repo.write("a.md", "a\n");
    c.handle(&[ev(1, Kind::Created, "a.md", None)])
        .await
        .expect("handle");
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => {
            assert!(m.contains("refusing to commit unsigned"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(repo.commits(), 0);
    assert!(c.status().last_error.is_some());
    repo.git(&["config", "gpg.format", "ssh"]);
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => {
            assert!(m.contains("user.signingkey"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    repo.git(&["config", "gpg.program", "/nonexistent/gpg"]);
    repo.git(&["config", "gpg.format", "openpgp"]);
    match c.flush().await {
        Err(ConsumerError::Transient { reason: m, .. }) => {
            assert!(m.contains("/nonexistent/gpg"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(repo.commits(), 0);
    repo.git(&["config", "commit.gpgsign", "false"]);
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
}

#[tokio::test]
async fn ssh_signed_commits_verify() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("ssh-keygen not found; skipping");
        return;
    }
    let repo = Repo::new();
    let key = repo.home.join("signing_key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    let allowed = repo.home.join("allowed_signers");
    std::fs::write(&allowed, format!("test@example.org {public}")).expect("allowed");
    repo.git(&["config", "commit.gpgsign", "true"]);
    repo.git(&["config", "gpg.format", "ssh"]);
    repo.git(&["config", "user.signingkey", key.to_str().expect("utf8")]);
    repo.git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        allowed.to_str().expect("utf8"),
    ]);
    let mut c = consumer(&repo, &cfg());
    repo.write("a.md", "signed\n");
    c.handle(&[ev(1, Kind::Created, "a.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    let raw = repo.git(&["cat-file", "commit", "HEAD"]);
    assert!(
        raw.contains("gpgsig -----BEGIN SSH SIGNATURE-----"),
        "{raw}"
    );
    let (ok, out) = repo.try_git(&["verify-commit", "HEAD"]);
    assert!(ok, "git verify-commit: {out}");
    repo.assert_clean();
}

#[tokio::test]
async fn pushes_to_a_local_remote_and_failed_push_never_blocks_commits() {
    let repo = Repo::new();
    let remote = repo.home.join("remote.git");
    let (ok, out) = git_in(
        &repo.home,
        &repo.home,
        &["init", "-q", "--bare", remote.to_str().expect("utf8")],
    );
    assert!(ok, "{out}");
    repo.git(&["remote", "add", "origin", remote.to_str().expect("utf8")]);
    let pushing = GitConfig {
        push: true,
        ..cfg()
    };
    let mut c = consumer(&repo, &pushing);
    repo.write("a.md", "a\n");
    c.handle(&[ev(1, Kind::Created, "a.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    assert!(
        c.finish_push(Duration::from_secs(20)),
        "{:?}",
        c.status().push
    );
    let (ok, pushed) = git_in(
        &repo.home,
        &repo.home,
        &[
            "--git-dir",
            remote.to_str().expect("utf8"),
            "rev-parse",
            "main",
        ],
    );
    assert!(ok, "{pushed}");
    assert_eq!(pushed.trim(), repo.head());
    assert!(
        c.status()
            .push
            .is_some_and(|p| p.last_ok.is_some() && !p.behind)
    );

    // The remote goes away: commits continue, the push error is reported.
    std::fs::remove_dir_all(&remote).expect("rm remote");
    repo.write("b.md", "b\n");
    c.handle(&[ev(2, Kind::Created, "b.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(2));
    assert!(!c.finish_push(Duration::from_secs(20)));
    let push = c.status().push.expect("push status");
    assert!(push.behind && push.last_error.is_some(), "{push:?}");
    repo.write("c.md", "c\n");
    c.handle(&[ev(3, Kind::Created, "c.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(3));
    assert_eq!(repo.commits(), 3);
    assert!(c.deadline().is_some(), "a push retry stays scheduled");
}

#[tokio::test]
async fn vault_in_a_subfolder_of_the_repository() {
    let repo = Repo::new();
    repo.write("notes/.keep", "");
    let vault = repo.dir.join("notes");
    let mut c = GitConsumer::open(&vault, &cfg(), "notes", "testhost").expect("open");
    std::fs::write(vault.join("n.md"), "n\n").expect("write");
    c.handle(&[ev(1, Kind::Created, "n.md", None)])
        .await
        .expect("handle");
    assert_eq!(c.flush().await.expect("flush"), Durable::Upto(1));
    assert_eq!(repo.git(&["ls-files"]), "notes/n.md\n");
}

#[test]
fn start_is_off_outside_a_repository_and_errors_when_forced() {
    let tmp = TempDir::new().expect("tmp");
    match git::start(tmp.path(), &GitConfig::default(), "v", "h").expect("start") {
        GitStart::Off(reason) => {
            assert!(reason.contains("not in a git repository"), "{reason}");
            let s = git::GitReport::off(reason);
            assert!(!s.enabled && s.off_reason.is_some());
        }
        GitStart::On(_) => panic!("on outside a repository"),
    }
    let forced = GitConfig {
        enabled: Some(true),
        ..GitConfig::default()
    };
    assert!(matches!(
        git::start(tmp.path(), &forced, "v", "h"),
        Err(GitError::NotARepository(_))
    ));
    let repo = Repo::new();
    assert!(matches!(
        git::start(&repo.dir, &GitConfig::default(), "v", "h"),
        Ok(GitStart::On(_))
    ));
    let off = GitConfig {
        enabled: Some(false),
        ..GitConfig::default()
    };
    assert!(matches!(
        git::start(&repo.dir, &off, "v", "h"),
        Ok(GitStart::Off(_))
    ));
}

/// Runs in a child process with an empty HOME, so that no global identity is found.
#[test]
fn missing_identity_is_an_error_at_start() {
    if std::env::var_os("VK_GIT_NO_IDENTITY_CHILD").is_none() {
        let tmp = TempDir::new().expect("tmp");
        let out = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "git_lib::missing_identity_is_an_error_at_start",
                "--nocapture",
            ])
            .env("VK_GIT_NO_IDENTITY_CHILD", "1")
            .env("HOME", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let tmp = TempDir::new().expect("tmp");
    git2::Repository::init(tmp.path()).expect("init");
    let err =
        GitConsumer::open(tmp.path(), &GitConfig::default(), "v", "h").expect_err("no identity");
    let text = err.to_string();
    assert!(matches!(err, GitError::NoIdentity(_)), "{text}");
    for key in [
        "git.author_name",
        "git.author_email",
        "user.name",
        "user.email",
    ] {
        assert!(text.contains(key), "{text}");
    }
    let own = GitConfig {
        author_name: Some("Own".into()),
        author_email: Some("own@example.org".into()),
        ..GitConfig::default()
    };
    assert!(GitConsumer::open(tmp.path(), &own, "v", "h").is_ok());
}

#[test]
fn init_repo_creates_and_appends_gitignore() {
    let tmp = TempDir::new().expect("tmp");
    let out = git::init_repo(tmp.path(), Some(".vaultkeeper")).expect("init");
    assert!(out.created);
    assert!(tmp.path().join(".git").is_dir());
    let gi = std::fs::read_to_string(tmp.path().join(".gitignore")).expect("gitignore");
    for line in [
        "/.vaultkeeper/",
        ".obsidian/workspace*.json",
        ".trash/",
        "*.swp",
    ] {
        assert!(gi.lines().any(|l| l == line), "{line} missing: {gi}");
    }
    let again = git::init_repo(tmp.path(), Some(".vaultkeeper")).expect("again");
    assert!(!again.created && again.gitignore_added.is_empty());

    let tmp = TempDir::new().expect("tmp");
    std::fs::write(tmp.path().join(".gitignore"), "mine/\n.trash/").expect("write");
    let out = git::init_repo(tmp.path(), None).expect("init");
    assert!(!out.gitignore_added.contains(&".trash/".to_string()));
    let gi = std::fs::read_to_string(tmp.path().join(".gitignore")).expect("gitignore");
    assert!(gi.starts_with("mine/\n.trash/\n"), "{gi}");
    assert!(gi.contains(".obsidian/workspace*.json"));
    assert_eq!(gi.matches(".trash/").count(), 1);
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_keys() {
    #[derive(serde::Deserialize)]
    struct Top {
        git: GitConfig,
    }
    let t: Top =
        toml::from_str("[git]\nquiet = \"2s\"\nmax_delay = \"1m\"\npush = true\n").expect("parse");
    assert_eq!(t.git.quiet, Duration::from_secs(2));
    assert_eq!(t.git.max_delay, Duration::from_secs(60));
    assert!(t.git.push);
    assert_eq!(t.git.remote, "origin");
    assert_eq!(t.git.max_files_in_message, 20);
    assert!(toml::from_str::<Top>("[git]\nqiuet = \"2s\"\n").is_err());
    let s = toml::to_string(&GitConfig::default()).expect("serialize");
    assert!(s.contains("quiet = \"10s\""), "{s}");
}
