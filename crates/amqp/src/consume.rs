//! The remote consumer: runs any [`Consumer`] from a durable (quorum) queue bound to the
//! events exchange, acking a message only once the consumer's effect is durable, and
//! sending what cannot be handled to `<queue>.dead` with a reason.

use std::collections::HashMap;

use futures::StreamExt;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Confirmation, ExchangeKind};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::config::{AmqpConfig, QueueType};
use super::connection::Link;
use super::error::AmqpError;
use super::publish::declare_exchange;
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind, PROTOCOL_VERSION};
use vaultkeeper_core::retry::Backoff;

/// Header on dead-lettered messages saying why vaultkeeper gave up on them.
pub const REASON_HEADER: &str = "x-vaultkeeper-reason";
/// Header on dead-lettered messages naming the queue they came from.
pub const QUEUE_HEADER: &str = "x-vaultkeeper-queue";

/// The dead-letter exchange of `exchange`: `<exchange>.dlx` (direct, keyed by queue name).
pub fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dlx")
}

/// The dead-letter queue of `queue`: `<queue>.dead`.
pub fn dead_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// What a [`consume_queue`] run did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsumeStats {
    /// Messages acknowledged after a durable effect.
    pub acked: u64,
    /// Messages sent to `<queue>.dead` (unparseable, or failing `delivery_limit` times).
    pub dead_lettered: u64,
    /// Messages given back to the queue after a failure, to be tried again.
    pub requeued: u64,
    /// Heartbeat messages skipped.
    pub skipped: u64,
    /// Sessions opened (more than one means reconnections).
    pub sessions: u64,
}

/// Runs `consumer` on the events of queue `queue` until `shutdown` is cancelled.
///
/// Declares (again on every reconnection): the topic exchange `[amqp] exchange`; the
/// durable queue `queue` (`x-queue-type` from `[amqp] queue_type`, for quorum queues an
/// explicit `x-delivery-limit`) bound with each of `binds` (`file.#` when empty); the
/// direct exchange `<exchange>.dlx` and the queue `<queue>.dead` bound to it by the queue's
/// name. Each message is handed to `consumer.handle(&[event])`; it is acked once a
/// `Durable::Upto` covers its seq (with `prefetch` messages held, `flush` is called).
/// `Transient` errors are retried in place with backoff (not nacked, so they never count
/// towards the delivery limit); `Failed` requeues the message until it has been delivered
/// `delivery_limit` times, then it goes to `<queue>.dead` with the reason in
/// [`REASON_HEADER`]. Messages that are not JSON, have another `protocol_version`, or fail
/// [`validate`] (a path escaping the target, fields contradicting each other) go there at
/// once. The connection is re-established with backoff, forever.
///
/// Returns on shutdown (after `consumer.flush()`), or with an error that retrying cannot
/// fix: no URL, a bad URL or CA file, a queue name too long, or a declaration the broker
/// refuses (a queue that exists with other arguments).
pub async fn consume_queue<C: Consumer>(
    cfg: &AmqpConfig,
    queue: &str,
    binds: &[String],
    mut consumer: C,
    shutdown: CancellationToken,
) -> Result<ConsumeStats, AmqpError> {
    if queue.is_empty() || queue.len() > 250 {
        return Err(AmqpError::Precondition {
            what: format!("queue name {queue:?}"),
            reason: "must be 1 to 250 bytes (it is extended with .dead)".to_string(),
        });
    }
    let mut link = Link::new(cfg, &format!("vaultkeeper consume {queue}"))?;
    let keys: Vec<String> = if binds.is_empty() {
        vec!["file.#".to_string()]
    } else {
        binds.to_vec()
    };
    let mut state = State {
        cfg,
        queue,
        stats: ConsumeStats::default(),
        failures: HashMap::new(),
        pending: Vec::new(),
    };
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    while !shutdown.is_cancelled() {
        let opened = open_session(&mut link, cfg, queue, &keys).await;
        let (ch, deliveries) = match opened {
            Ok(pair) => pair,
            Err(e) if !e.is_transient() => {
                link.close().await;
                return Err(e);
            }
            Err(e) => {
                let delay = link
                    .wait_before_connect()
                    .unwrap_or_else(|| backoff.next_delay());
                tracing::warn!(error = %e, retry_in = ?delay, queue, "amqp consume: cannot open the queue");
                if link.wait_before_connect().is_none() {
                    // Not a failed connection attempt (the link recorded that itself) but a
                    // refused step on an open link: start the next try on a fresh channel.
                    link.broken(&e).await;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        backoff.reset();
        state.stats.sessions += 1;
        tracing::info!(queue, url = %link.redacted_url(), "amqp consume: consuming");
        match state
            .run_session(&ch, deliveries, &mut consumer, &shutdown)
            .await
        {
            Ok(()) => break,
            Err(e) => {
                // Unacked messages go back to the queue with the channel and come again.
                state.pending.clear();
                let e = match e {
                    SessionError::Amqp(e) => e,
                    SessionError::Lapin(what, e) => link.map_err(&what, &e),
                };
                link.broken(&e).await;
            }
        }
    }
    link.close().await;
    Ok(state.stats)
}

enum SessionError {
    Amqp(AmqpError),
    Lapin(String, lapin::Error),
}

impl From<AmqpError> for SessionError {
    fn from(e: AmqpError) -> Self {
        SessionError::Amqp(e)
    }
}

fn lapin_err(what: impl Into<String>) -> impl FnOnce(lapin::Error) -> SessionError {
    let what = what.into();
    move |e| SessionError::Lapin(what, e)
}

fn queue_args(cfg: &AmqpConfig, dead_letter_to: Option<(&str, &str)>) -> FieldTable {
    let mut args = FieldTable::default();
    let kind = match cfg.queue_type {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    };
    args.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
    if let Some((dlx, key)) = dead_letter_to {
        if cfg.queue_type == QueueType::Quorum {
            // RabbitMQ 3.10 has no default limit: without it a poison message loops forever.
            let limit = i64::from(cfg.delivery_limit.max(1));
            args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        }
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(key.into()),
        );
    }
    args
}

async fn declare_queue(
    link: &Link,
    ch: &Channel,
    name: &str,
    args: FieldTable,
) -> Result<(), AmqpError> {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .map(|_| ())
    .map_err(|e| link.map_err(&format!("declaring queue {name}"), &e))
}

async fn bind(
    link: &Link,
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), AmqpError> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| {
        link.map_err(
            &format!("binding queue {queue} to {exchange} with {key}"),
            &e,
        )
    })
}

/// Opens a fresh channel, redoes every declaration, and starts consuming.
async fn open_session(
    link: &mut Link,
    cfg: &AmqpConfig,
    queue: &str,
    keys: &[String],
) -> Result<(Channel, lapin::Consumer), AmqpError> {
    let (ch, _) = link.channel().await?;
    let dlx = dead_letter_exchange(&cfg.exchange);
    let dead = dead_queue(queue);
    declare_exchange(link, &ch, &cfg.exchange, ExchangeKind::Topic).await?;
    declare_exchange(link, &ch, &dlx, ExchangeKind::Direct).await?;
    declare_queue(link, &ch, &dead, queue_args(cfg, None)).await?;
    bind(link, &ch, &dead, &dlx, queue).await?;
    declare_queue(link, &ch, queue, queue_args(cfg, Some((&dlx, queue)))).await?;
    for key in keys {
        bind(link, &ch, queue, &cfg.exchange, key).await?;
    }
    ch.basic_qos(cfg.prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(|e| link.map_err("setting prefetch", &e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| link.map_err("enabling publisher confirms", &e))?;
    let deliveries = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| link.map_err(&format!("consuming from {queue}"), &e))?;
    Ok((ch, deliveries))
}

/// Parses a message body into an event, or says why it is not one.
fn parse(data: &[u8]) -> Result<Event, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("protocol_version").map(Value::as_u64) {
        Some(Some(n)) if n == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(n)) => {
            return Err(format!(
                "protocol_version {n}, this consumer reads {PROTOCOL_VERSION}"
            ));
        }
        _ => return Err("no protocol_version: not a vaultkeeper event".to_string()),
    }
    let event: Event =
        serde_json::from_value(v).map_err(|e| format!("not a vaultkeeper event: {e}"))?;
    validate(&event)?;
    Ok(event)
}

/// Longest path or name accepted from the broker.
const MAX_FIELD: usize = 4096;

/// Checks every field of an event that came from the broker, so nothing a sender writes
/// can escape the target folder or contradict itself; the reason names the field. `seq`
/// is the sender's number and is never trusted for anything but ordering its snapshots.
pub fn validate(e: &Event) -> Result<(), String> {
    check_path("file_path", &e.file_path)?;
    let path = &e.file_path;
    match (e.event, &e.old_path) {
        (_, Some(old)) => check_path("old_path", old)?,
        (Kind::Renamed, None) => return Err(format!("{path:?}: file.renamed without old_path")),
        _ => {}
    }
    if uuid::Uuid::parse_str(&e.id).is_err() {
        return Err(format!("{path:?}: id {:?} is not a UUID", e.id));
    }
    if let Some(h) = &e.hash
        && (h.len() != 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(format!("{path:?}: hash is not a blake3 hex digest"));
    }
    if let Some(text) = &e.content {
        if e.event == Kind::Deleted {
            return Err(format!("{path:?}: file.deleted with content"));
        }
        if e.size != text.len() as u64 {
            return Err(format!(
                "{path:?}: size {} but {} bytes of content",
                e.size,
                text.len()
            ));
        }
        let actual = blake3::hash(text.as_bytes()).to_hex().to_string();
        if e.hash.as_deref() != Some(actual.as_str()) {
            return Err(format!("{path:?}: hash does not match the content"));
        }
    }
    for (field, value) in [("vault", &e.vault), ("host", &e.host)] {
        if value.is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
            return Err(format!(
                "{path:?}: {field} must be 1 to 255 bytes without control characters"
            ));
        }
    }
    Ok(())
}

/// A vault-relative path with `/`: not empty, not absolute, no empty, `.` or `..` part.
fn check_path(field: &str, p: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{field} {p:?}: {why}"));
    if p.is_empty() {
        return bad("empty");
    }
    if p.len() > MAX_FIELD {
        return bad("too long");
    }
    if p.contains('\0') {
        return bad("contains NUL");
    }
    if p.starts_with('/') {
        return bad("absolute; must be relative to the vault");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("not a plain vault-relative path (empty, . or .. part)");
    }
    let first = p.split('/').next().unwrap_or("");
    if first.len() == 2 && first.ends_with(':') {
        return bad("starts with a drive letter");
    }
    Ok(())
}

/// Deliveries so far as the broker counts them (quorum queues set `x-delivery-count`).
fn delivery_count(d: &Delivery) -> u32 {
    let Some(v) = d
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count"))
    else {
        return 0;
    };
    let n: i128 = match v {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

struct State<'a> {
    cfg: &'a AmqpConfig,
    queue: &'a str,
    stats: ConsumeStats,
    /// Failures seen by this process per message id, for queues that do not count deliveries.
    failures: HashMap<String, u32>,
    /// Handled messages whose effect is not durable yet, in delivery order.
    pending: Vec<(u64, Acker)>,
}

impl State<'_> {
    async fn run_session<C: Consumer>(
        &mut self,
        ch: &Channel,
        mut deliveries: lapin::Consumer,
        consumer: &mut C,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let mut retry = Backoff::new(self.cfg.reconnect_min, self.cfg.reconnect_max);
        loop {
            let deadline = consumer.deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    match consumer.flush().await {
                        Ok(d) => self.ack_upto(d).await?,
                        Err(e) => tracing::warn!(error = %e, "amqp consume: flush on shutdown failed; unacked messages will come again"),
                    }
                    return Ok(());
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    match consumer.on_deadline().await {
                        Ok(d) => {
                            retry.reset();
                            self.ack_upto(d).await?;
                        }
                        Err(e) => self.held_work_failed(e, &mut retry, shutdown).await?,
                    }
                }
                next = deliveries.next() => match next {
                    Some(Ok(d)) => self.process(ch, d, consumer, shutdown).await?,
                    Some(Err(e)) => return Err(SessionError::Lapin(format!("consuming from {}", self.queue), e)),
                    None => return Err(SessionError::Amqp(AmqpError::Channel {
                        what: format!("consuming from {}", self.queue),
                        reason: "the broker cancelled the consumer (queue deleted?)".to_string(),
                    })),
                },
            }
        }
    }

    /// `on_deadline`/`flush` failed for work the consumer holds.
    async fn held_work_failed(
        &mut self,
        e: ConsumerError,
        retry: &mut Backoff,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        match e {
            ConsumerError::Transient(reason) => {
                let delay = retry.next_delay();
                tracing::warn!(%reason, retry_in = ?delay, "amqp consume: held work not durable yet");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            ConsumerError::Failed { reason, .. } => {
                // Give the held messages back: they come again and count towards the limit.
                tracing::warn!(%reason, held = self.pending.len(), "amqp consume: held work failed; requeueing");
                for (_, acker) in std::mem::take(&mut self.pending) {
                    acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                        .map_err(lapin_err("requeueing"))?;
                    self.stats.requeued += 1;
                }
            }
        }
        Ok(())
    }

    async fn ack_upto(&mut self, durable: Durable) -> Result<(), SessionError> {
        let Durable::Upto(n) = durable else {
            return Ok(());
        };
        let (done, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(seq, _)| *seq <= n);
        self.pending = held;
        for (_, acker) in done {
            acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(lapin_err("acking"))?;
            self.stats.acked += 1;
        }
        Ok(())
    }

    async fn process<C: Consumer>(
        &mut self,
        ch: &Channel,
        d: Delivery,
        consumer: &mut C,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        if d.properties.kind().as_ref().map(|k| k.as_str()) == Some("heartbeat") {
            d.acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(lapin_err("acking"))?;
            self.stats.skipped += 1;
            return Ok(());
        }
        let event = match parse(&d.data) {
            Ok(e) => e,
            Err(reason) => {
                tracing::warn!(queue = self.queue, %reason, "amqp consume: unparseable or invalid message dead-lettered");
                return self.dead_letter(ch, d, &reason).await;
            }
        };
        let mut retry = Backoff::new(self.cfg.reconnect_min, self.cfg.reconnect_max);
        loop {
            match consumer.handle(std::slice::from_ref(&event)).await {
                Ok(durable) => {
                    self.failures.remove(&event.id);
                    self.pending.push((event.seq, d.acker));
                    self.ack_upto(durable).await?;
                    if self.pending.len() >= usize::from(self.cfg.prefetch.max(1)) {
                        // The broker sends nothing more until something is acked.
                        match consumer.flush().await {
                            Ok(durable) => self.ack_upto(durable).await?,
                            Err(e) => self.held_work_failed(e, &mut retry, shutdown).await?,
                        }
                    }
                    return Ok(());
                }
                Err(ConsumerError::Transient(reason)) => {
                    let delay = retry.next_delay();
                    tracing::warn!(file = %event.file_path, %reason, retry_in = ?delay, "amqp consume: transient failure, retrying");
                    tokio::select! {
                        // Unacked, the message returns to the queue when the channel closes.
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(ConsumerError::Failed { reason, .. }) => {
                    let local = self.failures.entry(event.id.clone()).or_insert(0);
                    *local += 1;
                    let attempts = (delivery_count(&d) + 1).max(*local);
                    if attempts >= self.cfg.delivery_limit.max(1) {
                        self.failures.remove(&event.id);
                        let reason =
                            format!("{}: failed {attempts} times: {reason}", event.file_path);
                        tracing::warn!(queue = self.queue, %reason, "amqp consume: giving up on a message");
                        return self.dead_letter(ch, d, &reason).await;
                    }
                    tracing::warn!(file = %event.file_path, %reason, attempts, "amqp consume: failed, requeueing");
                    d.acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                        .map_err(lapin_err("requeueing"))?;
                    self.stats.requeued += 1;
                    return Ok(());
                }
            }
        }
    }

    /// Republishes the message, unchanged but for the reason headers, to the dead-letter
    /// exchange, and acks it once the broker confirmed the copy.
    async fn dead_letter(
        &mut self,
        ch: &Channel,
        d: Delivery,
        reason: &str,
    ) -> Result<(), SessionError> {
        let dlx = dead_letter_exchange(&self.cfg.exchange);
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(
            REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            QUEUE_HEADER.into(),
            AMQPValue::LongString(LongString::from(self.queue)),
        );
        let props = d.properties.clone().with_headers(headers);
        let confirm = ch
            .basic_publish(
                dlx.as_str().into(),
                self.queue.into(),
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await
            .map_err(lapin_err(format!("dead-lettering to {dlx}")))?;
        match tokio::time::timeout(self.cfg.publish_timeout, confirm).await {
            Ok(Ok(Confirmation::Ack(_))) => {}
            Ok(Ok(_)) => {
                return Err(SessionError::Amqp(AmqpError::Channel {
                    what: format!("dead-lettering to {dlx}"),
                    reason: "not confirmed by the broker".to_string(),
                }));
            }
            Ok(Err(e)) => return Err(SessionError::Lapin(format!("dead-lettering to {dlx}"), e)),
            Err(_) => {
                return Err(SessionError::Amqp(AmqpError::Timeout {
                    what: format!("dead-lettering to {dlx}"),
                    after: self.cfg.publish_timeout,
                }));
            }
        }
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(lapin_err("acking"))?;
        self.stats.dead_lettered += 1;
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_field() {
        let mut good = vaultkeeper_core::event::sample("a/b.md");
        good.hash = Some(blake3::hash(b"x").to_hex().to_string());
        assert_eq!(validate(&good), Ok(()));
        let with = |f: &dyn Fn(&mut Event)| {
            let mut e = good.clone();
            f(&mut e);
            validate(&e).expect_err("refused")
        };
        for p in [
            "../x.md", "/x.md", "a//b.md", "a/./b.md", "", "C:/x.md", "a\0b.md",
        ] {
            let why = with(&|e| {
                e.file_path = p.to_string();
            });
            assert!(why.starts_with("file_path"), "{p:?}: {why}");
        }
        let mut forged = serde_json::to_value(&good).expect("json");
        forged["routing_key"] = "file.deleted.md".into();
        let body = serde_json::to_vec(&forged).expect("body");
        assert!(parse(&body).expect_err("refused").contains("routing_key"));
        assert!(with(&|e| e.id = "7".into()).contains("UUID"));
        assert!(with(&|e| e.hash = Some("zz".into())).contains("hash"));
        assert!(with(&|e| e.vault = String::new()).contains("vault"));
        assert!(
            with(&|e| {
                e.event = Kind::Renamed;
                e.old_path = None;
            })
            .contains("old_path")
        );
    }

    #[test]
    fn parse_tells_why() {
        assert!(parse(b"nope").expect_err("refused").starts_with("not JSON"));
        assert!(
            parse(br#"{"protocol_version":2}"#)
                .expect_err("refused")
                .contains("protocol_version 2")
        );
        assert!(
            parse(br#"{"event":"file.created"}"#)
                .expect_err("refused")
                .contains("no protocol_version")
        );
        assert!(
            parse(br#"{"protocol_version":1}"#)
                .expect_err("refused")
                .starts_with("not a vaultkeeper event")
        );
    }
}
