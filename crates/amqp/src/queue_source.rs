//! An AMQP queue as a runner [`Source`]: deliveries in, acks once the consumer's effect is
//! durable, failures given back to the broker (whose delivery count survives reconnects),
//! dead letters republished to `<queue>.dead` with the reason headers. Sessions are
//! opened again with backoff, forever; only a refused declaration stops it.

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, LongString};
use lapin::{Channel, Confirmation};

use vaultkeeper_core::consumer::StartAt;
use vaultkeeper_core::event::Event;
use vaultkeeper_core::retry::Backoff;
use vaultkeeper_runner::Source;

use crate::config::AmqpConfig;
use crate::connection::Link;
use crate::consume::{ConsumeStats, QUEUE_HEADER, REASON_HEADER};
use crate::declare::{dead_letter_exchange, open_session};
use crate::error::AmqpError;
use crate::validate::parse;

/// One open channel consuming the queue.
struct Session {
    ch: Channel,
    deliveries: lapin::Consumer,
}

/// A delivery that parsed into an event.
struct Received {
    event: Event,
    delivery: Delivery,
}

/// The queue `queue`, bound with `keys`, as a source of events.
pub(crate) struct QueueSource {
    cfg: AmqpConfig,
    queue: String,
    keys: Vec<String>,
    link: Link,
    reconnect: Backoff,
    session: Option<Session>,
    /// A delivery taken from the channel and not yet sorted (kept here so that a cancelled
    /// [`Source::wait`] does not lose it).
    inbox: Option<Delivery>,
    /// Received, not yet accepted by the runner, in delivery order.
    buffer: Vec<Received>,
    /// How many of `buffer` the last read handed over.
    handed: usize,
    /// Handed over, not durable yet: acked by [`Source::durable`].
    pending: Vec<Received>,
    /// What happened, for `vaultkeeper consume`.
    pub(crate) stats: ConsumeStats,
}

impl QueueSource {
    pub(crate) fn new(
        cfg: &AmqpConfig,
        queue: &str,
        keys: Vec<String>,
    ) -> Result<QueueSource, AmqpError> {
        Ok(QueueSource {
            link: Link::new(cfg, &format!("vaultkeeper consume {queue}"))?,
            cfg: cfg.clone(),
            queue: queue.to_string(),
            keys,
            reconnect: Backoff::new(cfg.reconnect_min, cfg.reconnect_max),
            session: None,
            inbox: None,
            buffer: Vec::new(),
            handed: 0,
            pending: Vec::new(),
            stats: ConsumeStats::default(),
        })
    }

    pub(crate) async fn close(&mut self) {
        self.session = None;
        self.link.close().await;
    }

    /// The session broke: unacked messages go back to the queue with the channel and
    /// come again, so nothing received is kept.
    async fn broken(&mut self, e: AmqpError) {
        tracing::warn!(error = %e, queue = %self.queue, "amqp consume: session lost");
        self.session = None;
        self.inbox = None;
        self.buffer.clear();
        self.pending.clear();
        self.handed = 0;
        self.link.broken(&e).await;
    }

    fn lapin(&self, what: &str, e: &lapin::Error) -> AmqpError {
        self.link.map_err(what, e)
    }

    /// Opens a session, waiting with backoff while the broker is away.
    async fn connect(&mut self) -> Result<(), AmqpError> {
        while self.session.is_none() {
            match open_session(&mut self.link, &self.cfg, &self.queue, &self.keys).await {
                Ok((ch, deliveries)) => {
                    self.reconnect.reset();
                    self.stats.sessions += 1;
                    tracing::info!(queue = %self.queue, url = %self.link.redacted_url(), "amqp consume: consuming");
                    self.session = Some(Session { ch, deliveries });
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => {
                    let waited = self.link.wait_before_connect();
                    let delay = waited.unwrap_or_else(|| self.reconnect.next_delay());
                    tracing::warn!(error = %e, retry_in = ?delay, queue = %self.queue, "amqp consume: cannot open the queue");
                    if waited.is_none() {
                        // Not a failed connection attempt (the link recorded that itself) but a
                        // refused step on an open link: start the next try on a fresh channel.
                        self.link.broken(&e).await;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Ok(())
    }

    /// Sorts the delivery in the inbox: heartbeats are acked and skipped, what is not a
    /// valid event is dead-lettered at once, events are buffered for the runner.
    async fn sort_inbox(&mut self) -> Result<(), AmqpError> {
        let Some(d) = self.inbox.as_ref() else {
            return Ok(());
        };
        let Some(ch) = self.session.as_ref().map(|s| s.ch.clone()) else {
            self.inbox = None;
            return Ok(());
        };
        if d.properties.kind().as_ref().map(|k| k.as_str()) == Some("heartbeat") {
            d.acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| self.lapin("acking", &e))?;
            self.stats.skipped += 1;
            self.inbox = None;
            return Ok(());
        }
        match parse(&d.data) {
            Ok(event) => {
                if let Some(delivery) = self.inbox.take() {
                    self.buffer.push(Received { event, delivery });
                }
            }
            Err(reason) => {
                let reason = reason.to_string();
                tracing::warn!(queue = %self.queue, %reason, "amqp consume: unparseable or invalid message dead-lettered");
                republish_dead(&self.link, &ch, &self.cfg, &self.queue, d, &reason).await?;
                self.stats.dead_lettered += 1;
                self.inbox = None;
            }
        }
        Ok(())
    }

    /// Runs a step of a session; a broken session is dropped, to be opened again.
    async fn settle(&mut self, r: Result<(), AmqpError>) {
        if let Err(e) = r {
            self.broken(e).await;
        }
    }

    fn take(&mut self, seq: u64) -> Option<Received> {
        if let Some(i) = self.buffer.iter().position(|r| r.event.seq == seq) {
            if i < self.handed {
                self.handed -= 1;
            }
            return Some(self.buffer.remove(i));
        }
        let i = self.pending.iter().position(|r| r.event.seq == seq)?;
        Some(self.pending.remove(i))
    }

    async fn ack_upto(&mut self, n: u64) -> Result<(), AmqpError> {
        let (done, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.event.seq <= n);
        self.pending = held;
        for r in done {
            r.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| self.lapin("acking", &e))?;
            self.stats.acked += 1;
        }
        Ok(())
    }

    async fn requeue(&mut self, rs: Vec<Received>) -> Result<(), AmqpError> {
        for r in rs {
            r.delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
                .map_err(|e| self.lapin("requeueing", &e))?;
            self.stats.requeued += 1;
        }
        Ok(())
    }
}

impl Source for QueueSource {
    type Error = AmqpError;

    async fn open(&mut self, _: &str, _: StartAt, _: Option<u64>) -> Result<u64, AmqpError> {
        // The queue is the position: what is acked is gone, the rest comes again.
        Ok(0)
    }

    async fn read(&mut self, limit: usize) -> Result<Vec<Event>, AmqpError> {
        self.handed = limit.min(self.buffer.len());
        Ok(self.buffer[..self.handed]
            .iter()
            .map(|r| r.event.clone())
            .collect())
    }

    fn accept(&mut self) {
        let n = self.handed.min(self.buffer.len());
        self.pending.extend(self.buffer.drain(..n));
        self.handed = 0;
    }

    async fn durable(&mut self, seq: u64) -> Result<u64, AmqpError> {
        let r = self.ack_upto(seq).await;
        self.settle(r).await;
        Ok(seq)
    }

    fn prior_attempts(&self, seq: u64) -> u32 {
        self.buffer
            .iter()
            .chain(&self.pending)
            .find(|r| r.event.seq == seq)
            .map_or(0, |r| delivery_count(&r.delivery))
    }

    async fn retry_later(&mut self, seq: u64) -> Result<(), AmqpError> {
        if let Some(r) = self.take(seq) {
            tracing::warn!(file = %r.event.file_path, "amqp consume: failed, requeueing");
            let done = self.requeue(vec![r]).await;
            self.settle(done).await;
        }
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        seq: u64,
        reason: &str,
        attempts: u32,
    ) -> Result<(), AmqpError> {
        let Some(r) = self.take(seq) else {
            // The session broke since: the message comes again and counts on.
            return Ok(());
        };
        let Some(ch) = self.session.as_ref().map(|s| s.ch.clone()) else {
            return Ok(());
        };
        let reason = format!("{}: failed {attempts} times: {reason}", r.event.file_path);
        tracing::warn!(queue = %self.queue, %reason, "amqp consume: giving up on a message");
        let done = republish_dead(
            &self.link,
            &ch,
            &self.cfg,
            &self.queue,
            &r.delivery,
            &reason,
        )
        .await
        .map(|()| self.stats.dead_lettered += 1);
        self.settle(done).await;
        Ok(())
    }

    async fn held_failed(&mut self) -> Result<(), AmqpError> {
        // Give the held messages back: they come again and count towards the limit.
        let held = std::mem::take(&mut self.pending);
        tracing::warn!(queue = %self.queue, held = held.len(), "amqp consume: held work failed; requeueing");
        let done = self.requeue(held).await;
        self.settle(done).await;
        Ok(())
    }

    fn wants_flush(&self) -> bool {
        // The broker sends nothing more until something is acked.
        self.pending.len() >= usize::from(self.cfg.prefetch.max(1))
    }

    async fn wait(&mut self) -> Result<(), AmqpError> {
        loop {
            if self.inbox.is_some() {
                let sorted = self.sort_inbox().await;
                self.settle(sorted).await;
                if !self.buffer.is_empty() {
                    return Ok(());
                }
            }
            self.connect().await?;
            let Some(session) = self.session.as_mut() else {
                continue;
            };
            let broke = match session.deliveries.next().await {
                Some(Ok(d)) => {
                    self.inbox = Some(d);
                    continue;
                }
                Some(Err(e)) => self.lapin(&format!("consuming from {}", self.queue), &e),
                None => AmqpError::Channel {
                    what: format!("consuming from {}", self.queue),
                    reason: "the broker cancelled the consumer (queue deleted?)".to_string(),
                },
            };
            self.broken(broke).await;
        }
    }

    fn drains_on_stop(&self) -> bool {
        false
    }
}

/// Republishes `d`, unchanged but for the reason headers, to the dead-letter exchange,
/// and acks it once the broker confirmed the copy.
async fn republish_dead(
    link: &Link,
    ch: &Channel,
    cfg: &AmqpConfig,
    queue: &str,
    d: &Delivery,
    reason: &str,
) -> Result<(), AmqpError> {
    let dlx = dead_letter_exchange(&cfg.exchange);
    let what = format!("dead-lettering to {dlx}");
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert(
        REASON_HEADER.into(),
        AMQPValue::LongString(LongString::from(reason)),
    );
    headers.insert(
        QUEUE_HEADER.into(),
        AMQPValue::LongString(LongString::from(queue)),
    );
    let props = d.properties.clone().with_headers(headers);
    let confirm = ch
        .basic_publish(
            dlx.as_str().into(),
            queue.into(),
            BasicPublishOptions::default(),
            &d.data,
            props,
        )
        .await
        .map_err(|e| link.map_err(&what, &e))?;
    match tokio::time::timeout(cfg.publish_timeout, confirm).await {
        Ok(Ok(Confirmation::Ack(_))) => {}
        Ok(Ok(_)) => {
            return Err(AmqpError::Channel {
                what,
                reason: "not confirmed by the broker".to_string(),
            });
        }
        Ok(Err(e)) => return Err(link.map_err(&what, &e)),
        Err(_) => {
            return Err(AmqpError::Timeout {
                what,
                after: cfg.publish_timeout,
            });
        }
    }
    d.acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| link.map_err("acking", &e))
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
