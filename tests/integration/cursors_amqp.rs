//! Cursors and the forwarder's starting point, and what `consume cache` accepts from the
//! broker: the real binary, the real broker on 127.0.0.1:5672, one exchange per test.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use lapin::BasicProperties;
use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_testkit::broker::{BROKER, Msg, Probe, broker_url, consume_cmd, unique};
use vaultkeeper_testkit::daemon::terminate;

use crate::amqp_lib::track_consumer_objects;
use crate::util::{BIN, Daemon, TestVault, hash, wait_until};

fn amqp_toml(exchange: &str, extra: &str) -> String {
    format!(
        "[amqp]\nexchange = \"{exchange}\"\nheartbeat = \"0s\"\nconnect_timeout = \"5s\"\n\
         publish_timeout = \"10s\"\nreconnect_min = \"50ms\"\nreconnect_max = \"1s\"\n{extra}\
         [runner]\nretry_min = \"50ms\"\nretry_max = \"1s\"\n"
    )
}

fn start_with_broker(tv: &TestVault) -> Daemon {
    let mut c = tv.cmd();
    c.env("VAULTKEEPER_AMQP_URL", broker_url());
    tv.start_with(c)
}

/// Reads (and acks) events from `queue` until `done` holds for the paths read so far.
async fn paths_until(probe: &Probe, queue: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let paths =
        |msgs: &[Msg]| -> Vec<String> { msgs.iter().map(|m| m.event.file_path.clone()).collect() };
    let got = probe
        .take_until(queue, Duration::from_secs(30), |m| done(&paths(m)))
        .await;
    paths(&got)
}

fn status_json(tv: &TestVault) -> serde_json::Value {
    let out = tv.run(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).expect("status json")
}

fn consumer_entry(status: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    status["consumers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_off_for_one_run_keeps_its_cursor_and_publishes_the_gap() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange, ""));

    let daemon = start_with_broker(&tv);
    tv.write("before.md", "published live");
    paths_until(&probe, &q, |p| p.iter().any(|p| p == "before.md")).await;
    daemon.stop();

    // One run without a broker URL: the forwarder is off, its place is kept.
    let daemon = tv.start();
    tv.write("gap.md", "written while the forwarder is off");
    tv.wait_events(2, "gap.md journaled");
    let mut amqp = None;
    wait_until(
        "status lists the amqp consumer as off with its lag",
        Duration::from_secs(20),
        || {
            amqp = consumer_entry(&status_json(&tv), "amqp");
            amqp.as_ref().is_some_and(|a| a["lag"].as_u64() >= Some(1))
        },
    );
    let amqp = amqp.expect("amqp entry");
    assert_eq!(amqp["state"], "off", "{amqp}");
    assert!(
        amqp["off_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no broker")),
        "{amqp}"
    );
    let text = String::from_utf8_lossy(&tv.run(&["status"]).stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("consumer amqp: off") && l.contains("lag 1")),
        "{text}"
    );
    daemon.stop();

    // Back on: the events of the gap are published.
    let daemon = start_with_broker(&tv);
    let got = paths_until(&probe, &q, |p| p.iter().any(|p| p == "gap.md")).await;
    assert_eq!(got, ["gap.md"], "only the gap, nothing twice");
    daemon.stop();

    // Removing a consumer's place is a deliberate command.
    let out = tv.run(&["forget", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tv.run(&["forget", "amqp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cursors = tv.journal().expect("journal").cursors().expect("cursors");
    assert!(cursors.iter().all(|c| c.consumer != "amqp"), "{cursors:?}");
    assert!(consumer_entry(&status_json(&tv), "amqp").is_none());
    probe.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_forwarder_publishes_every_file_of_the_first_scan() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange, ""));
    for name in ["one.md", "two.md", "sub/three.md"] {
        tv.write(name, name);
    }
    let daemon = start_with_broker(&tv);
    let mut got = paths_until(&probe, &q, |p| p.len() >= 3).await;
    got.sort();
    assert_eq!(got, ["one.md", "sub/three.md", "two.md"]);
    daemon.stop();
    probe.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_turned_on_for_an_existing_journal_sends_its_history_unless_told_head() {
    let _shared = BROKER.read().await;
    for (extra, want_old) in [("", true), ("start = \"head\"\n", false)] {
        let exchange = unique("ex");
        let mut probe = Probe::new().await;
        let q = probe.queue(&exchange, &["file.#"]).await;
        let tv = TestVault::with_config(BIN, &amqp_toml(&exchange, extra));
        let daemon = tv.start();
        tv.write("old.md", "old");
        tv.wait_events(1, "old.md journaled");
        daemon.stop();

        let daemon = start_with_broker(&tv);
        // Written once the forwarder has its place, so it is published either way.
        wait_until("the amqp cursor", Duration::from_secs(20), || {
            tv.journal()
                .and_then(|j| j.cursor("amqp").ok().flatten())
                .is_some()
        });
        tv.write("new.md", "new");
        let got = paths_until(&probe, &q, |p| p.iter().any(|p| p == "new.md")).await;
        if want_old {
            assert_eq!(got, ["old.md", "new.md"], "default: the whole journal");
        } else {
            assert_eq!(got, ["new.md"], "start = head: only new events");
        }
        daemon.stop();
        probe.cleanup().await;
    }
}

/// `consume cache --into DIR` on `queue`.
fn spawn_consume(config: &Path, dir: &Path, queue: &str, log: &Path) -> Child {
    consume_cmd(Path::new(BIN), "cache", config, dir, queue, log)
        .spawn()
        .expect("spawn consume")
}

/// Properties of a message another program publishes persistently.
fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

fn event(path: &str, content: &str, seq: u64) -> Event {
    let mut e = Event::builder(Kind::Created, path)
        .read(
            content.len() as u64,
            Some(hash(content)),
            Some(content.to_string()),
        )
        .source("remote-vault", "remote-host")
        .origin(Origin::Watch)
        .build();
    e.seq = seq;
    e
}

/// (path, hash) of every note in the cache at `db`.
fn notes(db: &Path) -> Vec<(String, String)> {
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut st) = conn.prepare("SELECT path, hash FROM notes ORDER BY path") else {
        return Vec::new();
    };
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_cache_refuses_hostile_messages_and_forged_seqs_skip_nothing() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let queue = unique("hostile");
    let tv = TestVault::with_config(BIN, &amqp_toml(&exchange, "queue_type = \"classic\"\n"));
    let remote = tempfile::tempdir().expect("tempdir");
    let log = tv.state.path().join("consume.log");
    let mut consume = spawn_consume(&tv.config, remote.path(), &queue, &log);
    wait_until("consume is consuming", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("amqp consume: consuming"))
    });
    let mut probe = Probe::new().await;
    probe.exchange(&exchange).await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);

    let a = event("a.md", "# A\n", 1);
    // Bodies as JSON values: a sender can write derived fields that an `Event` never holds.
    let json = |e: &Event| serde_json::to_value(e).expect("json");
    let mut hostile = Vec::new();
    for path in [
        "../escape.md",
        "/etc/abs.md",
        "x/../../up.md",
        "",
        "a/./b.md",
    ] {
        hostile.push(json(&event(path, "# evil\n", 2)));
    }
    let mut wrong_hash = event("c.md", "# C\n", 3);
    wrong_hash.hash = Some(hash("something else"));
    hostile.push(json(&wrong_hash));
    let mut wrong_key = json(&event("k.md", "# K\n", 3));
    wrong_key["routing_key"] = "file.deleted.md".into();
    hostile.push(wrong_key);
    let mut bad_rename = json(&event("r.md", "# R\n", 3));
    bad_rename["event"] = "file.renamed".into();
    bad_rename["routing_key"] = "file.renamed.md".into();
    bad_rename["old_path"] = "/etc/passwd".into();
    hostile.push(bad_rename);
    let forged = event("forged.md", "# F\n", u64::MAX / 2);
    let b = event("b.md", "# B\n", 4);
    // The same event id again (a redelivery), with other content: dropped by id.
    let mut replay = event("a.md", "# replaced\n", 5);
    replay.id = a.id.clone();
    let z = event("z.md", "# Z\n", 6);

    let mut all = vec![json(&a)];
    all.extend(hostile.iter().cloned());
    all.extend([forged, b, replay, z].iter().map(json));
    for e in &all {
        let body = serde_json::to_vec(e).expect("json");
        let key = e["routing_key"].as_str().expect("routing key");
        probe.publish_raw(&exchange, key, &body, persistent()).await;
    }
    let db = remote.path().join("cache.db");
    wait_until("z.md in the remote cache", Duration::from_secs(30), || {
        notes(&db).iter().any(|(p, _)| p == "z.md")
    });
    let dead = vaultkeeper_amqp::dead_queue(&queue);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (probe.count(&dead).await as usize) < hostile.len() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {} dead letters, {} there",
            hostile.len(),
            probe.count(&dead).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = notes(&db);
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["a.md", "b.md", "forged.md", "z.md"], "{got:?}");
    assert_eq!(got[0].1, hash("# A\n"), "a replayed id changes nothing");
    assert_eq!(probe.count(&dead).await as usize, hostile.len());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("../escape.md"), "the reason names the path");

    terminate(&mut consume, "consume exits", Duration::from_secs(30));
    probe.cleanup().await;
}
