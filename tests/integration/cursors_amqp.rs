//! Cursors and the forwarder's starting point, and what `consume cache` accepts from the
//! broker: the real binary, the real broker on 127.0.0.1:5672, one exchange per test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use vaultkeeper_core::event::{Event, Kind, Origin};

use crate::amqp_lib::{BROKER, broker_url, unique};
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

/// A plain lapin client on the test side, removing what it declared on `cleanup`.
struct Side {
    conn: Connection,
    ch: Channel,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Side {
    async fn new() -> Side {
        let conn = Connection::connect(&broker_url(), ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let ch = conn.create_channel().await.expect("channel");
        Side {
            conn,
            ch,
            queues: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    async fn exchange(&mut self, exchange: &str) {
        self.ch
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        if !self.exchanges.iter().any(|e| e == exchange) {
            self.exchanges.push(exchange.to_string());
        }
    }

    /// A test queue bound to `exchange` with `file.#`.
    async fn queue(&mut self, exchange: &str) -> String {
        self.exchange(exchange).await;
        let q = unique("cq");
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
        self.ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .expect("queue");
        self.ch
            .queue_bind(
                q.as_str().into(),
                exchange.into(),
                "file.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        self.queues.push(q.clone());
        q
    }

    /// Reads (and acks) events until `done` holds for the paths read so far.
    async fn take_until(&self, queue: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let timeout = Duration::from_secs(30);
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while !done(&got) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} reading {queue}: got {got:?}"
            );
            match self
                .ch
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .expect("basic_get")
            {
                Some(m) => {
                    let event: Event = serde_json::from_slice(&m.delivery.data).expect("event");
                    got.push(event.file_path);
                    m.delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .expect("ack");
                }
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        got
    }

    async fn count(&self, queue: &str) -> u32 {
        self.ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0)
    }

    async fn publish_raw(&self, exchange: &str, key: &str, body: &[u8]) {
        self.ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
    }

    async fn cleanup(self) {
        for q in &self.queues {
            let _ = self
                .ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for e in &self.exchanges {
            let _ = self
                .ch
                .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = self.conn.close(200, "done".into()).await;
    }
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
    let mut side = Side::new().await;
    let q = side.queue(&exchange).await;
    let tv = TestVault::with_config(&amqp_toml(&exchange, ""));

    let daemon = start_with_broker(&tv);
    tv.write("before.md", "published live");
    side.take_until(&q, |p| p.iter().any(|p| p == "before.md"))
        .await;
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
    let got = side
        .take_until(&q, |p| p.iter().any(|p| p == "gap.md"))
        .await;
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
    side.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_forwarder_publishes_every_file_of_the_first_scan() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut side = Side::new().await;
    let q = side.queue(&exchange).await;
    let tv = TestVault::with_config(&amqp_toml(&exchange, ""));
    for name in ["one.md", "two.md", "sub/three.md"] {
        tv.write(name, name);
    }
    let daemon = start_with_broker(&tv);
    let mut got = side.take_until(&q, |p| p.len() >= 3).await;
    got.sort();
    assert_eq!(got, ["one.md", "sub/three.md", "two.md"]);
    daemon.stop();
    side.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarder_turned_on_for_an_existing_journal_sends_its_history_unless_told_head() {
    let _shared = BROKER.read().await;
    for (extra, want_old) in [("", true), ("start = \"head\"\n", false)] {
        let exchange = unique("ex");
        let mut side = Side::new().await;
        let q = side.queue(&exchange).await;
        let tv = TestVault::with_config(&amqp_toml(&exchange, extra));
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
        let got = side
            .take_until(&q, |p| p.iter().any(|p| p == "new.md"))
            .await;
        if want_old {
            assert_eq!(got, ["old.md", "new.md"], "default: the whole journal");
        } else {
            assert_eq!(got, ["new.md"], "start = head: only new events");
        }
        daemon.stop();
        side.cleanup().await;
    }
}

/// `consume cache --into DIR` on `queue`.
fn spawn_consume(config: &Path, dir: &Path, queue: &str, log: &Path) -> Child {
    Command::new(BIN)
        .args(["consume", "cache", "--queue", queue, "--into"])
        .arg(dir)
        .current_dir(dir)
        .env("VAULTKEEPER_CONFIG", config)
        .env("VAULTKEEPER_AMQP_URL", broker_url())
        .env("VAULTKEEPER_LOG", "vaultkeeper=debug,info")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env("XDG_STATE_HOME", dir.join("xdg-state"))
        .env_remove("VAULTKEEPER_VAULT")
        .env_remove("VAULTKEEPER_STATE_DIR")
        .env_remove("RABBITMQ_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn consume")
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
    let tv = TestVault::with_config(&amqp_toml(&exchange, "queue_type = \"classic\"\n"));
    let remote = tempfile::tempdir().expect("tempdir");
    let log = tv.state.path().join("consume.log");
    let mut consume = spawn_consume(&tv.config, remote.path(), &queue, &log);
    wait_until("consume is consuming", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("amqp consume: consuming"))
    });
    let mut side = Side::new().await;
    side.exchange(&exchange).await;
    side.queues
        .extend([queue.clone(), vaultkeeper_amqp::dead_queue(&queue)]);
    side.exchanges
        .push(vaultkeeper_amqp::dead_letter_exchange(&exchange));

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
        side.publish_raw(&exchange, key, &body).await;
    }
    let db = remote.path().join("cache.db");
    wait_until("z.md in the remote cache", Duration::from_secs(30), || {
        notes(&db).iter().any(|(p, _)| p == "z.md")
    });
    let dead = vaultkeeper_amqp::dead_queue(&queue);
    let deadline = Instant::now() + Duration::from_secs(30);
    while (side.count(&dead).await as usize) < hostile.len() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {} dead letters, {} there",
            hostile.len(),
            side.count(&dead).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = notes(&db);
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["a.md", "b.md", "forged.md", "z.md"], "{got:?}");
    assert_eq!(got[0].1, hash("# A\n"), "a replayed id changes nothing");
    assert_eq!(side.count(&dead).await as usize, hostile.len());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("../escape.md"), "the reason names the path");

    Command::new("kill")
        .args(["-TERM", &consume.id().to_string()])
        .status()
        .expect("kill");
    wait_until("consume exits", Duration::from_secs(30), || {
        consume.try_wait().expect("try_wait").is_some()
    });
    side.cleanup().await;
}
