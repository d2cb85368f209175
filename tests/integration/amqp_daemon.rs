//! Daemon-level RabbitMQ tests: the real binary on temporary vaults, the real broker on
//! 127.0.0.1:5672. Each test uses its own exchange (`[amqp] exchange` in the test's config).
//! Tests that stop the broker or close its connections take `BROKER` for writing and put
//! the broker back in a drop guard; the others take it for reading.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vaultkeeper_core::event::{Event, Kind, Origin};

use vaultkeeper_testkit::broker::{
    BROKER, Msg, Probe, StoppedBroker, broker_url, consume_cmd, rabbitmqctl, unique,
};
use vaultkeeper_testkit::daemon::terminate;

use crate::amqp_lib::{track_consumer_objects, weave_consumer};
use crate::util::{BIN, Daemon, TestVault, wait_until};

/// A config with its own exchange and short retry delays (broker outages heal fast).
fn amqp_toml(exchange: &str) -> String {
    format!(
        "[amqp]\nexchange = \"{exchange}\"\nheartbeat = \"0s\"\nconnect_timeout = \"5s\"\n\
         publish_timeout = \"10s\"\nreconnect_min = \"50ms\"\nreconnect_max = \"1s\"\n\
         [runner]\nretry_min = \"50ms\"\nretry_max = \"1s\"\n"
    )
}

/// The daemon on `tv` publishing to the broker at `url`.
fn start_daemon(tv: &TestVault, url: &str) -> Daemon {
    let mut c = tv.cmd();
    c.env("VAULTKEEPER_AMQP_URL", url);
    let d = tv.start_with(c);
    // The forwarder starts at the journal's head: wait for it to have a cursor before any
    // file is written, or the first notes could fall before its starting point.
    wait_until("the amqp cursor", Duration::from_secs(20), || {
        tv.journal()
            .and_then(|j| j.cursors().ok())
            .is_some_and(|c| c.iter().any(|c| c.consumer == "amqp"))
    });
    d
}

fn journal_has(tv: &TestVault, pred: impl Fn(&Event) -> bool) -> bool {
    tv.events().iter().any(pred)
}

fn wait_journal(tv: &TestVault, what: &str, pred: impl Fn(&Event) -> bool) {
    wait_until(what, Duration::from_secs(30), || journal_has(tv, &pred));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_weave_consumer_gets_the_daemons_created_modified_deleted_notes() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    let daemon = start_daemon(&tv, &broker_url());
    let mut probe = Probe::new().await;
    probe.track_exchange(&exchange);

    let (python, args) = weave_consumer(&exchange, 60);
    let mut child = Command::new(&python)
        .args(&args)
        .args(["--binding", "file.*.md"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (with pika: pip install -r tests/requirements.txt)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    // EOF (the script died) ends this read, so it cannot hang.
    let first = lines
        .next()
        .expect("the Python consumer exited (is pika installed?)")
        .expect("read");
    assert_eq!(first, r#"{"ready": true}"#);

    tv.write("Projects/Plan.md", "# Plan\n");
    wait_journal(&tv, "created", |e| {
        e.file_path == "Projects/Plan.md" && e.event == Kind::Created
    });
    tv.write("notes.txt", "not markdown: not bound");
    tv.write("Projects/Plan.md", "# Plan\n- [ ] ship\n");
    wait_journal(&tv, "modified", |e| {
        e.file_path == "Projects/Plan.md" && e.event == Kind::Modified
    });
    std::fs::remove_file(tv.path("Projects/Plan.md")).expect("rm");

    let mut got = Vec::new();
    for line in lines.by_ref().take(3) {
        got.push(serde_json::from_str::<serde_json::Value>(&line.expect("read")).expect("json"));
    }
    let mut exited = None;
    wait_until("the Python consumer exits", Duration::from_secs(60), || {
        exited = child.try_wait().expect("try_wait");
        exited.is_some()
    });
    assert!(exited.is_some_and(|s| s.success()), "python: {exited:?}");
    let kinds: Vec<_> = got
        .iter()
        .map(|v| v["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["file.created", "file.modified", "file.deleted"]);
    assert!(
        got.iter().all(|v| v["file_path"] == "Projects/Plan.md"),
        "{got:?}"
    );
    assert_eq!(got[0]["content"], "# Plan\n");
    assert_eq!(got[1]["content"], "# Plan\n- [ ] ship\n");
    assert_eq!(got[1]["routing_key"], "file.modified.md");
    assert_eq!(got[1]["content_type"], "application/json");
    let ids: HashSet<String> = tv.events().into_iter().map(|e| e.id).collect();
    assert!(
        got.iter()
            .all(|v| ids.contains(v["message_id"].as_str().unwrap_or(""))),
        "message_id is the journal's event id"
    );
    daemon.stop();
    probe.cleanup().await;
}

/// Per file, the journal seqs of `msgs` in arrival order must increase.
fn assert_in_order_per_file(msgs: &[Msg]) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    for m in msgs {
        let prev = last.insert(&m.event.file_path, m.event.seq);
        assert!(
            prev.is_none_or(|p| p < m.event.seq),
            "{}: seq {} after {prev:?}",
            m.event.file_path,
            m.event.seq
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_while_500_notes_are_written_delays_delivery_only() {
    let _exclusive = BROKER.write().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    let daemon = start_daemon(&tv, &broker_url());
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    tv.write("warmup.md", "up");
    probe
        .take_through(&q, "warmup.md", Duration::from_secs(30))
        .await;
    probe.disconnect().await;

    let mut broker = StoppedBroker::stop();
    for i in 0..500 {
        tv.write(&format!("burst/n-{i:03}.md"), &format!("# Note {i}\n"));
    }
    // Then a second version of every tenth note, for the order per file.
    wait_until("500 created events", Duration::from_secs(60), || {
        tv.events()
            .iter()
            .filter(|e| e.file_path.starts_with("burst/") && e.event == Kind::Created)
            .count()
            >= 500
    });
    for i in (0..500).step_by(10) {
        tv.write(&format!("burst/n-{i:03}.md"), &format!("# Note {i}\nv2\n"));
    }
    let expected: Vec<Event> = {
        let mut ev = Vec::new();
        wait_until("the second versions", Duration::from_secs(60), || {
            ev = tv
                .events()
                .into_iter()
                .filter(|e| e.file_path.starts_with("burst/"))
                .collect();
            ev.iter().filter(|e| e.event == Kind::Modified).count() >= 50
        });
        ev
    };
    // The forwarder saw the outage (and retries), the runner says so.
    daemon.wait_log("retrying in", Duration::from_secs(30));
    broker.start();

    let probe = Probe::new().await;
    let n = expected.len();
    let got = probe
        .take_until(&q, Duration::from_secs(90), |m| {
            m.iter()
                .filter(|m| m.event.file_path.starts_with("burst/"))
                .count()
                >= n
        })
        .await;
    let burst: Vec<Msg> = got
        .into_iter()
        .filter(|m| m.event.file_path.starts_with("burst/"))
        .collect();
    let created: HashSet<&str> = burst
        .iter()
        .filter(|m| m.event.event == Kind::Created)
        .map(|m| m.event.file_path.as_str())
        .collect();
    assert_eq!(created.len(), 500, "all 500 created events arrived");
    let ids: Vec<&str> = burst.iter().map(|m| m.message_id.as_str()).collect();
    let unique_ids: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique_ids.len(), "no message twice");
    let want: HashSet<&str> = expected.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(unique_ids, want, "exactly the journal's events");
    assert!(burst.iter().all(|m| m.message_id == m.event.id));
    assert_in_order_per_file(&burst);
    // Nothing more comes (a late duplicate would sit in the queue after a sentinel).
    tv.write("sentinel.md", "s");
    let rest = probe
        .take_through(&q, "sentinel.md", Duration::from_secs(30))
        .await;
    assert_eq!(rest.len(), 1, "only the sentinel after the burst: {rest:?}");
    let log = daemon.stop();
    assert!(!log.contains("guest:guest"), "no password in the log");
    let mut probe = probe;
    probe.track_queue(&q);
    probe.track_exchange(&exchange);
    probe.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_by_the_broker_are_reopened() {
    let _exclusive = BROKER.write().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    let daemon = start_daemon(&tv, &broker_url());
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    tv.write("before.md", "1");
    probe
        .take_through(&q, "before.md", Duration::from_secs(30))
        .await;
    probe.close_keeping_objects().await;

    rabbitmqctl(&["close_all_connections", "vaultkeeper daemon test"]);
    tv.write("after-1.md", "2");
    tv.write("after-2.md", "3");
    let mut probe = Probe::new().await;
    let got = probe
        .take_until(&q, Duration::from_secs(60), |m| {
            let paths: HashSet<&str> = m.iter().map(|m| m.event.file_path.as_str()).collect();
            paths.contains("after-1.md") && paths.contains("after-2.md")
        })
        .await;
    assert!(got.iter().all(|m| m.event.file_path != "before.md"));
    // The daemon's own status shows the reconnection.
    wait_until(
        "a second connection in status",
        Duration::from_secs(20),
        || {
            let out = tv.run(&["status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            v["consumers"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["name"] == "amqp" && c["detail"]["connects"].as_u64().unwrap_or(0) >= 2
                })
            })
        },
    );
    daemon.stop();
    probe.track_queue(&q);
    probe.track_exchange(&exchange);
    probe.cleanup().await;
}

/// Rows of the tables that must match between two caches, in a stable order.
fn cache_rows(db: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open cache");
    let mut out = BTreeMap::new();
    for (table, sql) in [
        (
            "notes",
            "SELECT path, title, frontmatter, aliases, size, hash, words, is_markdown FROM notes ORDER BY path",
        ),
        (
            "links",
            "SELECT path, target_raw, target_path, kind, line FROM links ORDER BY path, line, target_raw",
        ),
        (
            "tags",
            "SELECT path, tag, source, line FROM tags ORDER BY path, line, tag, source",
        ),
    ] {
        let rows = conn
            .prepare(sql)
            .and_then(|mut s| {
                let n = s.column_count();
                s.query_map([], |r| {
                    let mut cols = Vec::with_capacity(n);
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        cols.push(format!("{v:?}"));
                    }
                    Ok(cols.join("|"))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        out.insert(table, rows);
    }
    out
}

/// `vaultkeeper consume cache --into DIR` with no vault in sight.
fn spawn_consume(config: &Path, dir: &Path, queue: &str, log: &Path) -> Child {
    spawn_consume_target("cache", config, dir, queue, log)
}

fn spawn_consume_target(target: &str, config: &Path, dir: &Path, queue: &str, log: &Path) -> Child {
    consume_cmd(Path::new(BIN), target, config, dir, queue, log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn consume")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_cache_elsewhere_equals_the_local_cache_after_a_burst() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    let daemon = start_daemon(&tv, &broker_url());
    let remote = tempfile::tempdir().expect("tempdir");
    let queue = unique("cacheq");
    let log = tv.state.path().join("consume.log");
    let mut consume = spawn_consume(&tv.config, remote.path(), &queue, &log);
    wait_until("consume is consuming", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("amqp consume: consuming"))
    });

    for i in 0..200 {
        let next = (i + 1) % 200;
        tv.write(
            &format!("Notes/{}/note-{i}.md", i % 10),
            &format!(
                "---\ntags: [burst, t{}]\naliases: [alias {i}]\n---\n# Note {i}\n\
                 See [[note-{next}]] and [[Missing {i}]] #topic/{}\n- [ ] task {i}\n",
                i % 3,
                i % 7
            ),
        );
    }
    // A rename and a deletion inside the burst.
    std::fs::rename(tv.path("Notes/0/note-0.md"), tv.path("Renamed.md")).expect("rename");
    std::fs::remove_file(tv.path("Notes/1/note-1.md")).expect("rm");
    tv.events_before_sentinel();

    let local = tv.state_dir().join("cache.db");
    let remote_db = remote.path().join("cache.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let last = (cache_rows(&local), cache_rows(&remote_db));
        let notes = last.0.get("notes").map_or(0, Vec::len);
        if (notes == 200 && last.0 == last.1) || Instant::now() > deadline {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        last.0.get("notes").map(Vec::len),
        Some(200),
        "198 burst notes + Renamed.md + the sentinel"
    );
    for table in ["notes", "links", "tags"] {
        assert_eq!(last.0[table], last.1[table], "table {table} differs");
    }
    // And the query commands read the remote cache with no vault.
    let local_tags = tv.run(&["tags", "--json"]);
    let remote_tags = Command::new(BIN)
        .args(["--json", "--cache"])
        .arg(&remote_db)
        .arg("tags")
        .current_dir(remote.path())
        .env_remove("VAULTKEEPER_VAULT")
        .env_remove("VAULTKEEPER_CONFIG")
        .output()
        .expect("tags");
    assert!(
        remote_tags.status.success(),
        "{}",
        String::from_utf8_lossy(&remote_tags.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&local_tags.stdout),
        String::from_utf8_lossy(&remote_tags.stdout)
    );

    let status = Some(terminate(
        &mut consume,
        "consume exits",
        Duration::from_secs(30),
    ));
    assert!(
        status.is_some_and(|s| s.success()),
        "consume: {status:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let mut out = String::new();
    if let Some(mut o) = consume.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    assert!(out.starts_with("consumed "), "{out}");
    daemon.stop();
    let mut probe = Probe::new().await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);
    probe.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_without_it_and_journaling_goes_on() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    // With the broker refusing, draining the forwarder on shutdown can only time out.
    let tv = TestVault::with_config(
        BIN,
        &format!("{}shutdown_timeout = \"2s\"\n", amqp_toml(&exchange)),
    );
    let secret = "Wr0ngPassw0rd-xyz";
    let daemon = start_daemon(&tv, &format!("amqp://guest:{secret}@127.0.0.1:5672/%2f"));
    tv.write("one.md", "1");
    daemon.wait_log("access refused", Duration::from_secs(30));
    tv.write("two.md", "2");
    wait_journal(&tv, "journaling goes on", |e| e.file_path == "two.md");
    tv.write("three.md", "3");
    wait_journal(&tv, "journaling goes on", |e| e.file_path == "three.md");
    let mut status = String::new();
    wait_until("the error in status", Duration::from_secs(20), || {
        status = String::from_utf8_lossy(&tv.run(&["status", "--json"]).stdout).into_owned();
        status.contains("access refused")
    });
    assert!(!status.contains(secret), "{status}");
    assert!(status.contains("guest:***@"), "{status}");
    let text = String::from_utf8_lossy(&tv.run(&["status"]).stdout).into_owned();
    assert!(!text.contains(secret), "{text}");
    let log = daemon.stop();
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("access refused"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_snapshot_sends_one_message_per_file() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    tv.write("a.md", "# A\n");
    tv.write("sub/b.md", "# B [[a]]\n");
    tv.write("c.txt", "plain");
    tv.write(".obsidian/workspace.json", "{}");
    tv.write("x.swp", "editor junk");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    let mut cmd = tv.cmd();
    cmd.env("VAULTKEEPER_AMQP_URL", broker_url());
    let out = cmd.args(["publish", "--snapshot"]).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("published 3 snapshot events"), "{stdout}");
    let got = probe
        .take_until(&q, Duration::from_secs(30), |m| m.len() >= 3)
        .await;
    let paths: HashSet<&str> = got.iter().map(|m| m.event.file_path.as_str()).collect();
    assert_eq!(paths, HashSet::from(["a.md", "sub/b.md", "c.txt"]));
    assert!(got.iter().all(|m| m.event.origin == Origin::Snapshot));
    assert!(got.iter().all(|m| m.message_id == m.event.id));
    assert!(got.iter().all(|m| m.content_type == "application/json"));
    let b = got
        .iter()
        .find(|m| m.event.file_path == "sub/b.md")
        .expect("b");
    assert_eq!(b.event.content.as_deref(), Some("# B [[a]]\n"));
    assert_eq!(b.routing_key, "file.created.md");
    assert_eq!(b.event.hash, Some(crate::util::hash("# B [[a]]\n")));
    assert_eq!(probe.count(&q).await, 0, "one message per file");
    probe.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_turned_on_for_an_existing_journal_starts_at_the_head() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    // `[amqp] start = "head"`; the default (the whole journal) is in cursors_amqp.rs.
    let tv = TestVault::with_config(
        BIN,
        &amqp_toml(&exchange).replacen("[amqp]\n", "[amqp]\nstart = \"head\"\n", 1),
    );
    let daemon = tv.start();
    for i in 0..5 {
        tv.write(&format!("old-{i}.md"), "old");
    }
    wait_until("old events", Duration::from_secs(30), || {
        tv.events()
            .iter()
            .filter(|e| e.file_path.starts_with("old-"))
            .count()
            >= 5
    });
    daemon.stop();
    assert!(!tv.events().is_empty());

    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    let daemon = start_daemon(&tv, &broker_url());
    tv.write("new.md", "new");
    let got = probe
        .take_through(&q, "new.md", Duration::from_secs(30))
        .await;
    let paths: Vec<&str> = got.iter().map(|m| m.event.file_path.as_str()).collect();
    assert_eq!(paths, ["new.md"], "old events are not published");
    daemon.stop();
    probe.cleanup().await;
}

fn count_notes(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    cache_rows(db).get("notes").map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_fills_a_remote_cache_and_a_remote_git_mirror() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange));
    // A journal with a head above 0, from a daemon without AMQP.
    let daemon = tv.start();
    tv.write("a.md", "# A\n#alpha [[b]]\n");
    tv.write("b.md", "# B\n#beta\n");
    tv.write("deep/c.md", "# C\n[[a]]\n");
    tv.wait_events(3, "three notes journaled");
    daemon.stop();

    let remote = tempfile::tempdir().expect("tempdir");
    let queue = unique("snapq");
    let log = tv.state.path().join("consume.log");
    let mut consume = spawn_consume(&tv.config, remote.path(), &queue, &log);
    wait_until("consume is consuming", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("amqp consume: consuming"))
    });
    for _ in 0..2 {
        // Twice: the second snapshot changes nothing.
        let mut cmd = tv.cmd();
        cmd.env("VAULTKEEPER_AMQP_URL", broker_url());
        let out = cmd
            .args(["publish", "--snapshot", "--json"])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["published"], 3);
    }
    let db = remote.path().join("cache.db");
    wait_until(
        "three notes in the remote cache",
        Duration::from_secs(30),
        || count_notes(&db) == 3,
    );
    let local = tv.run(&["reindex"]);
    assert!(local.status.success());
    let (l, r) = (
        cache_rows(&tv.state_dir().join("cache.db")),
        cache_rows(&db),
    );
    for table in ["notes", "links", "tags"] {
        assert_eq!(l[table], r[table], "table {table} differs");
    }
    terminate(&mut consume, "consume exits", Duration::from_secs(30));

    // `consume git` mirrors the same events into a repository elsewhere and commits them.
    let mirror = tempfile::tempdir().expect("tempdir");
    let git_cfg = mirror.path().join("remote.toml");
    std::fs::write(
        &git_cfg,
        format!(
            "{}\n[git]\nquiet = \"200ms\"\nauthor_name = \"Mirror\"\nauthor_email = \"mirror@example.org\"\n",
            amqp_toml(&exchange)
        ),
    )
    .expect("config");
    let repo = mirror.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir repo");
    let git_queue = unique("gitq");
    let git_log = tv.state.path().join("consume-git.log");
    let mut consume_git = spawn_consume_target("git", &git_cfg, &repo, &git_queue, &git_log);
    wait_until("consume git is consuming", Duration::from_secs(30), || {
        std::fs::read_to_string(&git_log).is_ok_and(|l| l.contains("amqp consume: consuming"))
    });
    let mut cmd = tv.cmd();
    cmd.env("VAULTKEEPER_AMQP_URL", broker_url());
    let out = cmd.args(["publish", "--snapshot"]).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = || {
        Command::new("git")
            .current_dir(&repo)
            .args(["ls-tree", "-r", "--name-only", "HEAD"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    wait_until(
        "three notes committed in the mirror",
        Duration::from_secs(30),
        || committed().len() == 3,
    );
    assert_eq!(committed(), vec!["a.md", "b.md", "deep/c.md"]);
    assert_eq!(
        std::fs::read_to_string(repo.join("deep/c.md")).expect("mirrored"),
        "# C\n[[a]]\n"
    );
    terminate(
        &mut consume_git,
        "consume git exits",
        Duration::from_secs(30),
    );
    let mut probe = Probe::new().await;
    track_consumer_objects(&mut probe, &exchange, &[&queue, &git_queue]);
    probe.cleanup().await;
}
