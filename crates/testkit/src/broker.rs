//! The test side of RabbitMQ: the one broker probe (a plain lapin client that declares
//! test queues, reads and publishes as another program would, and removes what it
//! declared), the broker lock, and a guard that stops the broker app and starts it again.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::RwLock;
use vaultkeeper_core::event::Event;

/// Tests that stop the broker or close its connections take this for writing (and put the
/// broker back in a drop guard); every other broker test takes it for reading.
pub static BROKER: RwLock<()> = RwLock::const_new(());

/// The broker the tests use: `VAULTKEEPER_AMQP_URL`, `RABBITMQ_URL`, or the local guest.
pub fn broker_url() -> String {
    ["VAULTKEEPER_AMQP_URL", "RABBITMQ_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// A broker object name no other test run uses.
pub fn unique(what: &str) -> String {
    format!("vk-test-{what}-{}", uuid::Uuid::now_v7().simple())
}

/// A message read from a test queue, with the properties the tests check.
#[derive(Debug, Clone)]
pub struct Msg {
    /// The `message_id` property.
    pub message_id: String,
    /// The routing key it was published with.
    pub routing_key: String,
    /// The `content_type` property.
    pub content_type: String,
    /// The body, decoded.
    pub event: Event,
}

impl Msg {
    fn from_delivery(d: &Delivery) -> Msg {
        let prop = |p: &Option<lapin::types::ShortString>| {
            p.as_ref().map(|s| s.to_string()).unwrap_or_default()
        };
        Msg {
            message_id: prop(d.properties.message_id()),
            content_type: prop(d.properties.content_type()),
            routing_key: d.routing_key.to_string(),
            event: serde_json::from_slice(&d.data).expect("event body"),
        }
    }
}

/// A header of a delivery.
pub fn header<'a>(d: &'a Delivery, key: &str) -> Option<&'a AMQPValue> {
    d.properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
}

/// A connection to the test broker, retried for 30 s: right after `start_app` the broker
/// may still refuse connections.
async fn connect() -> Connection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Connection::connect(&broker_url(), ConnectionProperties::default()).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to RabbitMQ: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn durable_queue_args() -> FieldTable {
    let mut args = FieldTable::default();
    // Removes the queue if a test is killed before its probe is dropped.
    args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
    args
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

/// A plain lapin client on the test side. What it declares or is told to track is deleted
/// by [`Probe::cleanup`] or, when a test fails first, on drop.
pub struct Probe {
    conn: Connection,
    ch: Channel,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Probe {
    /// Connects to the test broker (retrying while it comes up).
    pub async fn new() -> Probe {
        let conn = connect().await;
        let ch = conn.create_channel().await.expect("channel");
        Probe {
            conn,
            ch,
            queues: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// The probe's channel, for what a test does by hand (deleting an exchange under a
    /// forwarder, say).
    pub fn channel(&self) -> &Channel {
        &self.ch
    }

    /// Declares `exchange` (durable, topic) and tracks it.
    pub async fn exchange(&mut self, exchange: &str) {
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
        self.track_exchange(exchange);
    }

    /// A durable test queue bound to `exchange` with each of `keys` (declares the exchange).
    pub async fn queue(&mut self, exchange: &str, keys: &[&str]) -> String {
        self.exchange(exchange).await;
        let q = unique("q");
        self.ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                durable_queue_args(),
            )
            .await
            .expect("queue");
        for k in keys {
            self.ch
                .queue_bind(
                    q.as_str().into(),
                    exchange.into(),
                    (*k).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
        }
        self.track_queue(&q);
        q
    }

    /// Deletes `queue` at cleanup (one another program declared).
    pub fn track_queue(&mut self, queue: &str) {
        if !self.queues.iter().any(|q| q == queue) {
            self.queues.push(queue.to_string());
        }
    }

    /// Deletes `exchange` at cleanup.
    pub fn track_exchange(&mut self, exchange: &str) {
        if !self.exchanges.iter().any(|e| e == exchange) {
            self.exchanges.push(exchange.to_string());
        }
    }

    /// Reads exactly `n` messages from `queue` (acking them) on a fresh connection, failing
    /// after `timeout`.
    pub async fn take(&self, queue: &str, n: usize, timeout: Duration) -> Vec<Delivery> {
        let conn = connect().await;
        let ch = conn.create_channel().await.expect("channel");
        let mut consumer = ch
            .basic_consume(
                queue.into(),
                unique("probe").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(Ok(d))) => {
                    d.acker.ack(BasicAckOptions::default()).await.expect("ack");
                    got.push(d);
                }
                Ok(other) => panic!("consumer on {queue} ended: {other:?}"),
                Err(_) => panic!("only {} of {n} messages arrived on {queue}", got.len()),
            }
        }
        let _ = conn.close(200, "done".into()).await;
        got
    }

    /// Reads (and acks) messages from `queue` until `done` holds for what was read.
    pub async fn take_until(
        &self,
        queue: &str,
        timeout: Duration,
        done: impl Fn(&[Msg]) -> bool,
    ) -> Vec<Msg> {
        let deadline = Instant::now() + timeout;
        let mut got: Vec<Msg> = Vec::new();
        while !done(&got) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} reading {queue}: got {} messages: {:?}",
                got.len(),
                got.iter()
                    .map(|m| m.event.file_path.as_str())
                    .collect::<Vec<_>>()
            );
            match self
                .ch
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .expect("basic_get")
            {
                Some(m) => {
                    got.push(Msg::from_delivery(&m.delivery));
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

    /// Reads (and acks) messages from `queue` through the first one about `path`, failing
    /// after `timeout`; returns all it read.
    pub async fn take_through(&self, queue: &str, path: &str, timeout: Duration) -> Vec<Msg> {
        self.take_until(queue, timeout, |m| {
            m.iter().any(|m| m.event.file_path == path)
        })
        .await
    }

    /// Messages ready in `queue` (a fresh connection: disruptions may have closed ours; a
    /// queue that is not there counts 0).
    pub async fn count(&self, queue: &str) -> u32 {
        let Ok(conn) = Connection::connect(&broker_url(), ConnectionProperties::default()).await
        else {
            return 0;
        };
        let Ok(ch) = conn.create_channel().await else {
            return 0;
        };
        let n = ch
            .queue_declare(queue.into(), passive(), FieldTable::default())
            .await
            .map(|q| q.message_count())
            .unwrap_or(0);
        let _ = conn.close(200, "done".into()).await;
        n
    }

    /// True once `queue` has a consumer: `consume_queue` declares, then binds, then
    /// consumes, so a queue that merely exists may not be bound yet and a message
    /// published then would be unroutable. (A failed passive declare closes its channel,
    /// so a fresh one.)
    pub async fn consumed(&self, queue: &str) -> bool {
        let Ok(ch) = self.conn.create_channel().await else {
            return false;
        };
        let consumers = ch
            .queue_declare(queue.into(), passive(), FieldTable::default())
            .await
            .map(|q| q.consumer_count());
        if consumers.is_ok() {
            let _ = ch.close(200, "done".into()).await;
        }
        consumers.is_ok_and(|n| n > 0)
    }

    /// Publishes a raw message with `props` as some other program would.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
    ) {
        self.ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .expect("publish")
            .await
            .expect("sent");
    }

    /// Closes the probe's connection (as a client that goes away); what it tracks is still
    /// deleted at cleanup, over a fresh connection.
    pub async fn disconnect(&self) {
        let _ = self.conn.close(200, "probe disconnects".into()).await;
    }

    /// Closes the connection and keeps what it declared (a later probe reads on).
    pub async fn close_keeping_objects(mut self) {
        self.queues.clear();
        self.exchanges.clear();
        let _ = self.conn.close(200, "done".into()).await;
    }

    /// Deletes what the test declared; also runs on drop, so a failing test cleans up too.
    pub async fn cleanup(self) {
        drop(self);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let queues = std::mem::take(&mut self.queues);
        let exchanges = std::mem::take(&mut self.exchanges);
        if queues.is_empty() && exchanges.is_empty() {
            return;
        }
        // Drop cannot await: a thread with its own runtime does the deletions.
        let worker = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) =
                    Connection::connect(&broker_url(), ConnectionProperties::default()).await
                else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                for q in &queues {
                    let _ = ch
                        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                for e in &exchanges {
                    let _ = ch
                        .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                let _ = conn.close(200, "done".into()).await;
            });
        });
        let _ = worker.join();
    }
}

/// Runs `rabbitmqctl` with `args`; fails the test if it fails.
pub fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`rabbitmqctl`] off the async executor.
pub async fn rabbitmqctl_async(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        rabbitmqctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("rabbitmqctl task");
}

/// The broker app stopped; started again when dropped, even when the test fails. Take
/// [`BROKER`] for writing first.
pub struct StoppedBroker {
    stopped: bool,
}

impl StoppedBroker {
    /// Stops the broker app.
    pub fn stop() -> StoppedBroker {
        // Armed before the stop: a stop that fails half-way still gets a start.
        let guard = StoppedBroker { stopped: true };
        rabbitmqctl(&["stop_app"]);
        guard
    }

    /// [`StoppedBroker::stop`] off the async executor.
    pub async fn stop_async() -> StoppedBroker {
        let guard = StoppedBroker { stopped: true };
        rabbitmqctl_async(&["stop_app"]).await;
        guard
    }

    /// Starts the broker app again.
    pub fn start(&mut self) {
        rabbitmqctl(&["start_app"]);
        self.stopped = false;
    }

    /// [`StoppedBroker::start`] off the async executor.
    pub async fn start_async(&mut self) {
        rabbitmqctl_async(&["start_app"]).await;
        self.stopped = false;
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if self.stopped {
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
        }
    }
}

/// `vaultkeeper consume TARGET --queue QUEUE --into DIR` with no vault in sight: the
/// binary at `bin`, the config at `config`, the test broker, its log in `log`. The caller
/// picks stdout and spawns.
pub fn consume_cmd(
    bin: &Path,
    target: &str,
    config: &Path,
    dir: &Path,
    queue: &str,
    log: &Path,
) -> Command {
    let mut c = Command::new(bin);
    c.args(["consume", target, "--queue", queue, "--into"])
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
        .stderr(std::fs::File::create(log).expect("consume log"));
    c
}
