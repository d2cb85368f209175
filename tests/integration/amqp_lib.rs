//! Integration tests of the `amqp` module against the real RabbitMQ on 127.0.0.1:5672.
//!
//! Every test uses its own exchange and queues. Tests that disrupt the broker
//! (`stop_app`, `close_all_connections`) live in one test function and take the
//! `BROKER` write lock; every other test takes it for reading, so they never overlap.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::ExchangeDeleteOptions;
use lapin::types::AMQPValue;
use tokio_util::sync::CancellationToken;
use vaultkeeper_amqp::{
    AmqpConfig, ConsumeStats, Forwarder, REASON_HEADER, SecretUrl, consume_queue,
    dead_letter_exchange, dead_queue, publish_snapshot,
};
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable, StartAt};
use vaultkeeper_core::event::{Event, Kind, Origin};

use vaultkeeper_testkit::broker::{Probe, StoppedBroker, header, rabbitmqctl_async};
use vaultkeeper_testkit::wait_for;

// The broker lock and names live in testkit; re-exported for the modules that name them here.
pub(crate) use vaultkeeper_testkit::broker::{BROKER, broker_url, unique};

fn config(exchange: &str) -> AmqpConfig {
    AmqpConfig {
        url: Some(SecretUrl::new(broker_url())),
        exchange: exchange.to_string(),
        heartbeat: Duration::ZERO,
        connect_timeout: Duration::from_secs(5),
        publish_timeout: Duration::from_secs(10),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        ..AmqpConfig::default()
    }
}

fn event(seq: u64, kind: Kind, path: &str, content: &str) -> Event {
    let mut e = Event::builder(kind, path)
        .read(
            content.len() as u64,
            Some(blake3::hash(content.as_bytes()).to_hex().to_string()),
            (kind != Kind::Deleted).then(|| content.to_string()),
        )
        .source("notes", "testhost")
        .origin(Origin::Watch)
        .build();
    e.seq = seq;
    e
}

/// `n` modified events spread over `files` files, seq 1..=n.
fn burst(n: u64, files: u64) -> Vec<Event> {
    (1..=n)
        .map(|i| {
            event(
                i,
                Kind::Modified,
                &format!("dir/note-{}.md", i % files),
                &format!("# Note\nversion {i}\n"),
            )
        })
        .collect()
}

/// The Python weave consumer (tests/weave_consumer.py, the protocol's other end) on
/// `exchange`, waiting for 3 messages at most `timeout_s` seconds: interpreter and arguments.
pub(crate) fn weave_consumer(exchange: &str, timeout_s: u32) -> (String, Vec<String>) {
    let python = std::env::var("VAULTKEEPER_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/weave_consumer.py");
    let args = [script, "--url", &broker_url(), "--exchange", exchange]
        .map(str::to_string)
        .into_iter()
        .chain([
            "--queue".to_string(),
            unique("weave"),
            "--count".to_string(),
            "3".to_string(),
            "--timeout".to_string(),
            timeout_s.to_string(),
        ])
        .collect();
    (python, args)
}

/// Properties of a raw JSON message as another program would publish it.
fn json() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

/// Remembers, for cleanup, the broker objects that `consume_queue` (or `vaultkeeper
/// consume`) declared for `queues` on `exchange`: each queue with its dead queue, the
/// exchange with its dead-letter exchange.
pub(crate) fn track_consumer_objects(probe: &mut Probe, exchange: &str, queues: &[&str]) {
    for q in queues {
        probe.track_queue(q);
        probe.track_queue(&dead_queue(q));
    }
    probe.track_exchange(exchange);
    probe.track_exchange(&dead_letter_exchange(exchange));
}

/// A log sink for tests.
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts what the real runner sees of a consumer: its transient errors, and its
/// durable reports (which must never go back).
struct Counted<C> {
    inner: C,
    transient: Arc<AtomicU64>,
    progress: Arc<AtomicU64>,
}

impl<C: Consumer> Consumer for Counted<C> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let r = self.inner.handle(batch).await;
        match &r {
            Ok(Durable::Upto(n)) => {
                let before = self.progress.swap(*n, Ordering::SeqCst);
                assert!(*n >= before, "cursor went back from {before} to {n}");
            }
            Ok(Durable::Unchanged) => {}
            Err(ConsumerError::Transient { .. }) => {
                self.transient.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => panic!("unexpected failure: {e}"),
        }
        r
    }

    fn start_at(&self) -> StartAt {
        self.inner.start_at()
    }

    fn deadline(&self) -> Option<Instant> {
        self.inner.deadline()
    }

    async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
        self.inner.on_deadline().await
    }

    async fn flush(&mut self) -> Result<Durable, ConsumerError> {
        self.inner.flush().await
    }

    async fn stop(&mut self) {
        self.inner.stop().await
    }
}

/// Appends `events` to a journal and runs `consumer` on the daemon's runner until it is
/// caught up with the head (batches of `batch`, the runner's retries); returns the
/// consumer's cursor and the transient errors it had.
async fn run_on_runner<C: Consumer>(
    consumer: &mut Counted<C>,
    journal: &std::path::Path,
    events: &[Event],
    batch: usize,
    timeout: Duration,
) -> (u64, u64) {
    let mut j = vaultkeeper_journal::Journal::open(journal).expect("journal");
    let mut events = events.to_vec();
    let head = j.append(&mut events, &[]).expect("append");
    if j.cursor(consumer.name()).expect("cursor").is_none() {
        j.set_cursor(consumer.name(), 0).expect("cursor");
    }
    drop(j);
    let settings = vaultkeeper_runner::RunnerSettings {
        batch_size: batch,
        max_attempts: 5,
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
    };
    let (_, head_rx) = tokio::sync::watch::channel(head);
    let mut source =
        vaultkeeper_runner::JournalSource::open(journal.to_path_buf(), head_rx).expect("source");
    let status = vaultkeeper_runner::StatusCell::default();
    let ran = tokio::time::timeout(
        timeout,
        vaultkeeper_runner::drive(
            consumer,
            &mut source,
            settings,
            vaultkeeper_runner::RunnerSignals::stopped(),
            status.clone(),
        ),
    )
    .await;
    let cursor = status.lock().expect("status").cursor;
    let transient = consumer.transient.load(Ordering::SeqCst);
    ran.unwrap_or_else(|_| {
        panic!("runner did not finish: cursor {cursor}, {transient} transient errors")
    })
    .expect("runner");
    (cursor, transient)
}

#[tokio::test]
async fn forwarder_publishes_a_batch_with_properties() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    let mut fwd = Forwarder::new(&config(&exchange), "testhost").expect("forwarder");
    assert_eq!(fwd.name(), "amqp");
    assert_eq!(
        fwd.start_at(),
        StartAt::Beginning,
        "default: every event the journal holds"
    );
    let head = Forwarder::new(
        &AmqpConfig {
            start: vaultkeeper_amqp::ForwarderStart::Head,
            ..config(&exchange)
        },
        "testhost",
    )
    .expect("forwarder");
    assert_eq!(head.start_at(), StartAt::Head);

    let mut events = burst(200, 7);
    events.push(event(201, Kind::Created, "img/a.PNG", "x"));
    events.push(event(202, Kind::Deleted, "Makefile", ""));
    let got = fwd.handle(&events).await.expect("publish");
    assert_eq!(got, Durable::Upto(202));

    let msgs = probe.take(&q, events.len(), Duration::from_secs(10)).await;
    for (d, e) in msgs.iter().zip(&events) {
        let body: Event = serde_json::from_slice(&d.data).expect("event JSON");
        assert_eq!(&body, e);
        assert_eq!(d.routing_key.as_str(), e.routing_key());
        let p = &d.properties;
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(
            p.message_id().as_ref().map(|s| s.as_str()),
            Some(e.id.as_str())
        );
        assert_eq!(p.app_id().as_ref().map(|s| s.as_str()), Some("vaultkeeper"));
        assert_eq!(*p.timestamp(), Some(e.timestamp.timestamp() as u64));
    }
    assert_eq!(msgs[200].routing_key.as_str(), "file.created.png");
    assert_eq!(msgs[201].routing_key.as_str(), "file.deleted.none");
    let status = fwd.status();
    assert!(status.connected);
    assert_eq!(status.published, 202);
    assert_eq!(status.exchange, exchange);
    fwd.close().await;
    probe.cleanup().await;
}

/// What a [`Recorder`] saw: every event handed to it, and the state it built
/// (path → hash, as a cache would).
#[derive(Debug, Default)]
struct Log {
    handled: Vec<Event>,
    state: HashMap<String, Option<String>>,
}

/// A test consumer that records events; it can fail on one path always, or
/// transiently a number of times.
struct Recorder {
    log: Arc<Mutex<Log>>,
    fail_path: Option<String>,
    transient: HashMap<String, u32>,
}

impl Recorder {
    fn new() -> (Recorder, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        (
            Recorder {
                log: log.clone(),
                fail_path: None,
                transient: HashMap::new(),
            },
            log,
        )
    }
}

impl Consumer for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        for e in batch {
            if self.fail_path.as_deref() == Some(e.file_path.as_str()) {
                return Err(ConsumerError::event(
                    e.seq,
                    format!("{}: cannot apply", e.file_path),
                ));
            }
            if let Some(n) = self.transient.get_mut(&e.file_path)
                && *n > 0
            {
                *n -= 1;
                return Err(ConsumerError::transient("busy"));
            }
            let mut log = self.log.lock().expect("log");
            log.handled.push(e.clone());
            if e.is_live() {
                log.state.insert(e.file_path.clone(), e.hash.clone());
            } else {
                log.state.remove(&e.file_path);
            }
        }
        Ok(batch
            .last()
            .map_or(Durable::Unchanged, |e| Durable::Upto(e.seq)))
    }
}

fn handled_ids(log: &Arc<Mutex<Log>>) -> Vec<String> {
    log.lock()
        .expect("log")
        .handled
        .iter()
        .map(|e| e.id.clone())
        .collect()
}

/// Asserts that, per file, events were first seen in increasing seq order.
fn assert_in_order_per_file(events: impl IntoIterator<Item = (String, u64)>) {
    let mut seen = HashSet::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    for (path, seq) in events {
        if !seen.insert((path.clone(), seq)) {
            continue;
        }
        if let Some(prev) = last.insert(path.clone(), seq) {
            assert!(prev < seq, "{path}: seq {seq} after {prev}");
        }
    }
}

fn consumer_config(exchange: &str) -> AmqpConfig {
    AmqpConfig {
        delivery_limit: 3,
        ..config(exchange)
    }
}

#[tokio::test]
async fn unroutable_events_are_not_errors_and_snapshot_publishes_everything() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    probe.track_exchange(&exchange);
    // Nothing bound yet: confirmed all the same.
    let mut fwd = Forwarder::new(&config(&exchange), "testhost").expect("forwarder");
    assert_eq!(
        fwd.handle(&burst(10, 3)).await.expect("unroutable is fine"),
        Durable::Upto(10)
    );
    fwd.close().await;

    let q = probe.queue(&exchange, &["file.#"]).await;
    let mut snapshot = burst(3000, 3000);
    for e in &mut snapshot {
        e.origin = Origin::Snapshot;
        e.seq = 0;
    }
    let cfg = AmqpConfig {
        max_in_flight: 256,
        ..config(&exchange)
    };
    let n = publish_snapshot(&cfg, "testhost", &snapshot, CancellationToken::new())
        .await
        .expect("snapshot");
    assert_eq!(n, 3000);
    let got = probe.take(&q, 3000, Duration::from_secs(20)).await;
    let ids: HashSet<_> = got
        .iter()
        .filter_map(|d| d.properties.message_id().as_ref().map(|s| s.to_string()))
        .collect();
    assert_eq!(ids.len(), 3000);
    probe.cleanup().await;
}

#[tokio::test]
async fn heartbeat_goes_to_status_host_with_counters() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["status.*"]).await;
    let cfg = AmqpConfig {
        heartbeat: Duration::from_millis(100),
        ..config(&exchange)
    };
    let mut fwd = Forwarder::new(&cfg, "laptop.example")
        .expect("forwarder")
        .with_counters(Arc::new(
            || serde_json::json!({"events": 42, "lag": {"git": 3}}),
        ));
    let at = fwd.deadline().expect("a heartbeat deadline");
    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    assert_eq!(
        fwd.on_deadline().await.expect("on_deadline"),
        Durable::Unchanged
    );
    assert!(fwd.deadline().expect("next") > at);
    let got = probe.take(&q, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].routing_key.as_str(), "status.laptop_example");
    let body: serde_json::Value = serde_json::from_slice(&got[0].data).expect("json");
    assert_eq!(body["host"], "laptop.example");
    assert_eq!(body["counters"]["events"], 42);
    assert_eq!(body["counters"]["lag"]["git"], 3);
    assert_eq!(fwd.status().heartbeats, 1);
    fwd.close().await;
    probe.cleanup().await;
}

#[tokio::test]
async fn wrong_password_is_a_clear_error_without_the_password_and_retries_go_on() {
    let _shared = BROKER.read().await;
    if std::env::var("VAULTKEEPER_AMQP_URL").is_ok() || std::env::var("RABBITMQ_URL").is_ok() {
        eprintln!("skipped: an AMQP URL in the environment would override the test's URL");
        return;
    }
    let secret = "Wr0ng-pw-7431";
    // Capture this thread's logs (the test runtime is single-threaded, so all of ours).
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || SharedBuf(sink.clone()))
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let cfg = AmqpConfig {
        url: Some(SecretUrl::new(format!(
            "amqp://guest:{secret}@127.0.0.1:5672/%2f"
        ))),
        ..config(&unique("ex"))
    };
    assert!(!format!("{cfg:?}").contains(secret));
    let mut fwd = Forwarder::new(&cfg, "testhost").expect("forwarder");
    assert!(!format!("{fwd:?}").contains(secret));
    let events = burst(3, 3);
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while errors.len() < 3 {
        assert!(Instant::now() < deadline, "no retries: {errors:?}");
        match fwd.handle(&events).await {
            Err(ConsumerError::Transient { reason: msg, .. }) => errors.push(msg),
            other => panic!("expected a transient error, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for e in &errors {
        assert!(!e.contains(secret), "password in error: {e}");
    }
    assert!(
        errors[0].contains("access refused") && errors[0].contains("guest:***@127.0.0.1"),
        "unclear error: {}",
        errors[0]
    );
    let status = fwd.status();
    assert!(!status.connected);
    assert!(status.errors >= 2, "{status:?}");
    assert_eq!(status.published, 0);
    let json = serde_json::to_string(&status).expect("json");
    assert!(!json.contains(secret), "{json}");
    assert!(json.contains("access refused"), "{json}");

    let logged = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    assert!(logged.contains("access refused"), "{logged}");
    assert!(!logged.contains(secret), "password in logs: {logged}");

    let bad = AmqpConfig {
        url: Some(SecretUrl::new(format!(
            "amqp://guest:{secret}@127.0.0.1:notaport/"
        ))),
        ..AmqpConfig::default()
    };
    let e = Forwarder::new(&bad, "h").expect_err("bad url").to_string();
    assert!(!e.contains(secret), "{e}");
}

#[tokio::test]
async fn python_weave_consumer_receives_created_modified_deleted_notes() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    probe.track_exchange(&exchange);
    let (python, args) = weave_consumer(&exchange, 30);
    let mut child = tokio::process::Command::new(&python)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 (with pika: pip install pika)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the Python consumer did not get ready")
        .expect("read")
        .expect("the Python consumer exited (is pika installed? pip install pika)");
    assert_eq!(first, r#"{"ready": true}"#);

    let mut fwd = Forwarder::new(&config(&exchange), "testhost").expect("forwarder");
    let events = vec![
        event(1, Kind::Created, "Daily/2026-11-24.md", "# Today\n"),
        event(2, Kind::Created, "attachments/pic.png", "png"),
        event(
            3,
            Kind::Modified,
            "Daily/2026-11-24.md",
            "# Today\n- [ ] write\n",
        ),
        event(4, Kind::Deleted, "Daily/2026-11-24.md", ""),
    ];
    assert_eq!(
        fwd.handle(&events).await.expect("publish"),
        Durable::Upto(4)
    );

    let mut got = Vec::new();
    while got.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("message lines")
            .expect("read")
            .expect("the Python consumer stopped early");
        got.push(serde_json::from_str::<serde_json::Value>(&line).expect("json line"));
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exit")
        .expect("wait");
    assert!(status.success(), "python consumer: {status}");
    let kinds: Vec<_> = got
        .iter()
        .map(|v| v["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["file.created", "file.modified", "file.deleted"]);
    assert!(got.iter().all(|v| v["file_path"] == "Daily/2026-11-24.md"));
    assert_eq!(got[1]["content"], "# Today\n- [ ] write\n");
    assert!(got[2]["content"].is_null());
    assert_eq!(got[0]["message_id"], events[0].id.as_str());
    assert_eq!(got[0]["content_type"], "application/json");
    fwd.close().await;
    probe.cleanup().await;
}

/// Runs `consume_queue` in a task; returns the token to stop it and its handle.
fn spawn_consumer(
    cfg: AmqpConfig,
    queue: &str,
    binds: Vec<String>,
    consumer: Recorder,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<ConsumeStats, vaultkeeper_amqp::AmqpError>>,
) {
    let token = CancellationToken::new();
    let t = token.clone();
    let queue = queue.to_string();
    let handle =
        tokio::spawn(async move { consume_queue(&cfg, &queue, &binds, consumer, t).await });
    (token, handle)
}

async fn stop(
    token: CancellationToken,
    handle: tokio::task::JoinHandle<Result<ConsumeStats, vaultkeeper_amqp::AmqpError>>,
) -> ConsumeStats {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(20), handle)
        .await
        .expect("consumer stops on shutdown")
        .expect("join")
        .expect("consume_queue")
}

async fn wait_handled(log: &Arc<Mutex<Log>>, n: usize, timeout: Duration) {
    wait_for(
        &format!("{n} distinct events handled"),
        timeout,
        async || {
            let ids: HashSet<_> = handled_ids(log).into_iter().collect();
            (ids.len() >= n).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn consume_queue_acks_after_effect_and_redelivery_changes_nothing() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let queue = unique("cq");
    let mut probe = Probe::new().await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);
    let cfg = consumer_config(&exchange);
    let (mut rec, log) = Recorder::new();
    rec.transient.insert("dir/note-1.md".into(), 2);
    let (token, handle) = spawn_consumer(cfg.clone(), &queue, vec![], rec);
    // The queue exists once the consumer declared it.
    wait_for(
        "queue bound and consumed",
        Duration::from_secs(30),
        async || probe.consumed(&queue).await.then_some(()),
    )
    .await;

    let mut fwd = Forwarder::new(&cfg, "testhost").expect("forwarder");
    let events = burst(50, 5);
    fwd.handle(&events).await.expect("publish");
    // The same events again, as after a crash before the cursor moved.
    fwd.handle(&events[40..]).await.expect("publish again");
    wait_handled(&log, 50, Duration::from_secs(20)).await;
    wait_for(
        "all 60 messages handled",
        Duration::from_secs(20),
        async || (log.lock().expect("log").handled.len() >= 60).then_some(()),
    )
    .await;

    let stats = stop(token, handle).await;
    assert_eq!(stats.acked, 60, "{stats:?}");
    assert_eq!(
        stats.requeued, 0,
        "transient failures are retried in place: {stats:?}"
    );
    assert_eq!(probe.count(&queue).await, 0);
    {
        let log = log.lock().expect("log");
        let mut expected = HashMap::new();
        for e in &events {
            expected.insert(e.file_path.clone(), e.hash.clone());
        }
        assert_eq!(log.state, expected, "duplicates changed nothing");
        assert_in_order_per_file(log.handled.iter().map(|e| (e.file_path.clone(), e.seq)));
    }
    fwd.close().await;
    probe.cleanup().await;
}

#[tokio::test]
async fn poison_and_failing_messages_go_to_the_dead_queue_and_later_ones_flow() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let queue = unique("cq");
    let mut probe = Probe::new().await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);
    let cfg = consumer_config(&exchange);
    let (mut rec, log) = Recorder::new();
    rec.fail_path = Some("bad.md".into());
    let (token, handle) = spawn_consumer(cfg.clone(), &queue, vec!["file.*.md".into()], rec);
    wait_for(
        "queue bound and consumed",
        Duration::from_secs(30),
        async || probe.consumed(&queue).await.then_some(()),
    )
    .await;

    let mut fwd = Forwarder::new(&cfg, "testhost").expect("forwarder");
    fwd.handle(&[event(1, Kind::Created, "a.md", "a")])
        .await
        .expect("publish");
    probe
        .publish_raw(&exchange, "file.created.md", b"this is not json", json())
        .await;
    probe
        .publish_raw(
            &exchange,
            "file.created.md",
            br#"{"protocol_version": 99, "event": "file.created"}"#,
            json(),
        )
        .await;
    fwd.handle(&[event(2, Kind::Created, "bad.md", "b")])
        .await
        .expect("publish");
    fwd.handle(&[
        event(3, Kind::Created, "c.md", "c"),
        event(4, Kind::Created, "d.png", "d"),
    ])
    .await
    .expect("publish");
    wait_for(
        "a.md and c.md handled",
        Duration::from_secs(20),
        async || {
            let log = log.lock().expect("log");
            (log.state.contains_key("a.md") && log.state.contains_key("c.md")).then_some(())
        },
    )
    .await;
    let dead = probe
        .take(&dead_queue(&queue), 3, Duration::from_secs(20))
        .await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|d| match header(d, REASON_HEADER) {
            Some(AMQPValue::LongString(s)) => s.to_string(),
            other => panic!("no reason header: {other:?}"),
        })
        .collect();
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert_eq!(dead[0].data, b"this is not json");
    assert!(reasons[1].contains("protocol_version 99"), "{reasons:?}");
    assert!(reasons[2].contains("bad.md: failed 3 times"), "{reasons:?}");
    let stats = stop(token, handle).await;
    assert_eq!(stats.dead_lettered, 3, "{stats:?}");
    assert_eq!(stats.requeued, 2, "{stats:?}");
    assert!(
        !log.lock().expect("log").state.contains_key("d.png"),
        "binding file.*.md"
    );
    fwd.close().await;
    probe.cleanup().await;
}

/// The one test that disrupts the broker: it holds the write lock, so no other test of
/// this file runs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_and_closed_connections_only_delay_delivery() {
    let _exclusive = BROKER.write().await;
    let exchange = unique("ex");
    let queue = unique("cq");
    let mut probe = Probe::new().await;
    let q = probe.queue(&exchange, &["file.#"]).await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);
    let cfg = consumer_config(&exchange);
    let (rec, log) = Recorder::new();
    let (token, handle) = spawn_consumer(cfg.clone(), &queue, vec![], rec);
    wait_for(
        "queue bound and consumed",
        Duration::from_secs(30),
        async || probe.consumed(&queue).await.then_some(()),
    )
    .await;
    let fwd = Forwarder::new(&cfg, "testhost").expect("forwarder");
    let status = fwd.status_handle();
    let all = burst(600, 20);

    // Broker down while 500 events are handed over: transient errors, the cursor stays.
    let mut broker = StoppedBroker::stop_async().await;
    let progress = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("journal.db");
    let runner = {
        let events = all[..500].to_vec();
        let mut fwd = Counted {
            inner: fwd,
            transient: Arc::new(AtomicU64::new(0)),
            progress: progress.clone(),
        };
        let journal = journal.clone();
        tokio::spawn(async move {
            let r = run_on_runner(&mut fwd, &journal, &events, 50, Duration::from_secs(180)).await;
            (fwd, r)
        })
    };
    wait_for(
        "transient errors while down",
        Duration::from_secs(30),
        async || (status.get().errors >= 3).then_some(()),
    )
    .await;
    assert_eq!(
        progress.load(Ordering::SeqCst),
        0,
        "cursor moved without a broker"
    );
    assert!(!status.get().connected);
    broker.start_async().await;
    let (mut fwd, (cursor, transient)) = tokio::time::timeout(Duration::from_secs(200), runner)
        .await
        .expect("runner finishes")
        .expect("join");
    assert_eq!(cursor, 500);
    assert!(transient >= 3, "{transient}");

    let got = probe.take(&q, 500, Duration::from_secs(60)).await;
    let bodies: Vec<Event> = got
        .iter()
        .map(|d| serde_json::from_slice(&d.data).expect("event"))
        .collect();
    let ids: HashSet<_> = bodies.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 500, "every event once");
    assert_in_order_per_file(bodies.iter().map(|e| (e.file_path.clone(), e.seq)));
    // The remote consumer came back too.
    wait_handled(&log, 500, Duration::from_secs(90)).await;

    // Connections closed from the broker side: both reconnect and go on.
    let connects = status.get().connects;
    rabbitmqctl_async(&["close_all_connections", "vaultkeeper test"]).await;
    let (cursor, _) =
        run_on_runner(&mut fwd, &journal, &all[500..], 50, Duration::from_secs(60)).await;
    assert_eq!(cursor, 600);
    assert!(status.get().connects > connects, "{:?}", status.get());
    let got = probe.take(&q, 100, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 100);
    wait_handled(&log, 600, Duration::from_secs(60)).await;
    let stats = stop(token, handle).await;
    assert!(stats.sessions >= 3, "{stats:?}");
    {
        let log = log.lock().expect("log");
        assert_in_order_per_file(log.handled.iter().map(|e| (e.file_path.clone(), e.seq)));
        let handled: HashSet<_> = log.handled.iter().map(|e| e.id.clone()).collect();
        assert_eq!(handled.len(), 600);
    }
    fwd.inner.close().await;
    probe.cleanup().await;
}

#[tokio::test]
async fn a_channel_closed_by_the_broker_is_reopened_and_declarations_redone() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let mut probe = Probe::new().await;
    probe.track_exchange(&exchange);
    let mut fwd = Forwarder::new(&config(&exchange), "testhost").expect("forwarder");
    assert_eq!(
        fwd.handle(&burst(5, 5)).await.expect("publish"),
        Durable::Upto(5)
    );
    // Deleting the exchange makes the broker close the forwarder's channel (404) on the next publish.
    probe
        .channel()
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete exchange");
    let events: Vec<Event> = burst(10, 5).split_off(5);
    match fwd.handle(&events).await {
        Err(ConsumerError::Transient { reason: msg, .. }) => assert!(
            msg.contains("NOT_FOUND") || msg.contains("404") || msg.contains("not found"),
            "{msg}"
        ),
        other => panic!("expected a transient error, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match fwd.handle(&events).await {
            Ok(d) => {
                assert_eq!(d, Durable::Upto(10));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // The exchange is back (declared again) and routes to a new queue.
    let q = probe.queue(&exchange, &["file.#"]).await;
    let more: Vec<Event> = burst(12, 5).split_off(10);
    fwd.handle(&more).await.expect("publish");
    let got = probe.take(&q, 2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        fwd.status().connects,
        1,
        "the connection stayed; only the channel was reopened"
    );
    fwd.close().await;
    probe.cleanup().await;
}

/// A consumer that holds its work (like git waiting for a quiet period): nothing is
/// durable until `flush`.
struct Holder {
    log: Arc<Mutex<Log>>,
    last: Option<u64>,
}

impl Consumer for Holder {
    fn name(&self) -> &str {
        "holder"
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let mut log = self.log.lock().expect("log");
        log.handled.extend(batch.iter().cloned());
        self.last = batch.last().map(|e| e.seq).or(self.last);
        Ok(Durable::Unchanged)
    }

    async fn flush(&mut self) -> Result<Durable, ConsumerError> {
        Ok(self.last.map_or(Durable::Unchanged, Durable::Upto))
    }
}

#[tokio::test]
async fn messages_are_acked_only_once_the_effect_is_durable() {
    let _shared = BROKER.read().await;
    let exchange = unique("ex");
    let queue = unique("cq");
    let mut probe = Probe::new().await;
    track_consumer_objects(&mut probe, &exchange, &[&queue]);
    let cfg = consumer_config(&exchange);
    let run = |log: Arc<Mutex<Log>>| {
        let token = CancellationToken::new();
        let (cfg, queue, t) = (cfg.clone(), queue.clone(), token.clone());
        let handle = tokio::spawn(async move {
            consume_queue(&cfg, &queue, &[], Holder { log, last: None }, t).await
        });
        (token, handle)
    };
    let first = Arc::new(Mutex::new(Log::default()));
    let (_token, handle) = run(first.clone());
    wait_for(
        "queue bound and consumed",
        Duration::from_secs(30),
        async || probe.consumed(&queue).await.then_some(()),
    )
    .await;
    let mut fwd = Forwarder::new(&cfg, "testhost").expect("forwarder");
    fwd.handle(&burst(5, 5)).await.expect("publish");
    wait_handled(&first, 5, Duration::from_secs(10)).await;
    // A crash before the effect was durable: nothing was acked, everything comes again.
    handle.abort();
    let _ = handle.await;
    let second = Arc::new(Mutex::new(Log::default()));
    let (token, handle) = run(second.clone());
    wait_handled(&second, 5, Duration::from_secs(30)).await;
    // Shutdown flushes the consumer, and its Durable acks the held messages.
    let stats = stop(token, handle).await;
    assert_eq!(stats.acked, 5, "{stats:?}");
    assert_eq!(probe.count(&queue).await, 0);
    fwd.close().await;
    probe.cleanup().await;
}
