//! The forwarder: publishes journal events to the topic exchange with pipelined publisher
//! confirms and a cap on messages in flight; also the snapshot publisher, on the same path.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind, PublisherConfirm};
use tokio_util::sync::CancellationToken;

use super::config::AmqpConfig;
use super::connection::Link;
use super::error::AmqpError;
use super::heartbeat::{self, Counters};
use super::status::{AmqpStatus, StatusHandle};
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable, StartAt};
use vaultkeeper_core::event::Event;
use vaultkeeper_core::retry::Backoff;

/// Routing keys and message ids are AMQP short strings.
const SHORT_STRING_MAX: usize = 255;

/// The `amqp` consumer: every journal event becomes one persistent JSON message on
/// `[amqp] exchange`, routing key `event.routing_key`. Its cursor moves only on confirms.
///
/// Each [`Consumer::handle`] call publishes its batch (up to `max_in_flight` unconfirmed at
/// a time) and returns `Durable::Upto(last seq)` once every message of the batch is
/// confirmed, or `ConsumerError::Transient` (broker down, link lost, nack, timeout), after
/// which the runner hands the same batch again: re-published messages keep their
/// `message_id` (the event id), so receivers can drop duplicates.
pub struct Forwarder {
    link: Link,
    exchange: String,
    max_in_flight: usize,
    publish_timeout: Duration,
    host: String,
    heartbeat_every: Option<Duration>,
    next_heartbeat: Option<Instant>,
    counters: Option<Counters>,
    start: StartAt,
    /// False until the first connection attempt, made at start (see [`Consumer::deadline`]).
    tried: bool,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("link", &self.link)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder for `cfg` on machine `host` (used in the heartbeat's routing key).
    /// Checks the URL and reads `ca_file`; connects on first use, not here.
    pub fn new(cfg: &AmqpConfig, host: &str) -> Result<Forwarder, AmqpError> {
        let link = Link::new(cfg, &format!("vaultkeeper forwarder {host}"))?;
        let heartbeat_every = (!cfg.heartbeat.is_zero()).then_some(cfg.heartbeat);
        Ok(Forwarder {
            link,
            exchange: cfg.exchange.clone(),
            max_in_flight: cfg.max_in_flight.max(1),
            publish_timeout: cfg.publish_timeout,
            host: host.to_string(),
            heartbeat_every,
            next_heartbeat: heartbeat_every.map(|d| Instant::now() + d),
            counters: None,
            start: match cfg.start {
                super::config::ForwarderStart::Beginning => StartAt::Beginning,
                super::config::ForwarderStart::Head => StartAt::Head,
            },
            tried: false,
        })
    }

    /// Counters to put in every heartbeat message (events, lag per consumer, errors).
    pub fn with_counters(mut self, counters: Counters) -> Forwarder {
        self.counters = Some(counters);
        self
    }

    /// The link's state for `vaultkeeper status`.
    pub fn status(&self) -> AmqpStatus {
        self.link.status.get()
    }

    /// A reader of [`Forwarder::status`] that stays usable after the forwarder moved into the runner.
    pub fn status_handle(&self) -> StatusHandle {
        self.link.status.clone()
    }

    /// Publishes `events` in order and waits for all their confirms. One attempt: on error
    /// the link is reset and the next call reconnects (paced by the reconnect backoff).
    pub async fn publish_events(&mut self, events: &[Event]) -> Result<(), AmqpError> {
        if events.is_empty() {
            return Ok(());
        }
        let ch = self.ready_channel().await?;
        match self.publish_on(&ch, events).await {
            Ok(()) => {
                let n = events.len() as u64;
                self.link.status.update(|s| {
                    s.published += n;
                    s.last_confirm_at = Some(Utc::now());
                });
                Ok(())
            }
            Err(e @ AmqpError::Nack { .. }) => {
                // The link is fine; the broker could not take the message (e.g. a queue limit).
                self.link.status.error(&e.to_string());
                Err(e)
            }
            Err(e) => {
                self.link.broken(&e).await;
                Err(e)
            }
        }
    }

    /// Publishes one `status.<host>` heartbeat now and waits for its confirm.
    pub async fn send_heartbeat(&mut self) -> Result<(), AmqpError> {
        let ch = self.ready_channel().await?;
        let body = heartbeat::body(&self.host, &self.link.status.get(), self.counters.as_ref());
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(1)
            .with_timestamp(Utc::now().timestamp().max(0) as u64)
            .with_app_id("vaultkeeper".into())
            .with_type("heartbeat".into());
        let key = heartbeat::routing_key(&self.host);
        let sent = async {
            let confirm = self
                .timed(
                    "publishing the heartbeat",
                    ch.basic_publish(
                        self.exchange.as_str().into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        &payload,
                        props,
                    ),
                )
                .await?;
            match self
                .timed("waiting for the heartbeat's confirm", confirm)
                .await?
            {
                Confirmation::Nack(_) => Err(AmqpError::Channel {
                    what: format!("heartbeat on {}", self.exchange),
                    reason: "nacked by the broker".to_string(),
                }),
                _ => Ok(()),
            }
        }
        .await;
        match sent {
            Ok(()) => {
                self.link.status.update(|s| s.heartbeats += 1);
                Ok(())
            }
            Err(e) => {
                self.link.broken(&e).await;
                Err(e)
            }
        }
    }

    /// Closes the connection (shutdown). Nothing is in flight between calls.
    pub async fn close(&mut self) {
        self.link.close().await;
    }

    /// The channel, with confirm mode and the exchange declared when it is new.
    async fn ready_channel(&mut self) -> Result<Channel, AmqpError> {
        let (ch, fresh) = self.link.channel().await?;
        if fresh && let Err(e) = self.prepare(&ch).await {
            self.link.broken(&e).await;
            return Err(e);
        }
        Ok(ch)
    }

    async fn prepare(&self, ch: &Channel) -> Result<(), AmqpError> {
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.link.map_err("enabling publisher confirms", &e))?;
        declare_exchange(&self.link, ch, &self.exchange, ExchangeKind::Topic).await
    }

    async fn timed<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = lapin::Result<T>>,
    ) -> Result<T, AmqpError> {
        match tokio::time::timeout(self.publish_timeout, fut).await {
            Ok(r) => r.map_err(|e| self.link.map_err(what, &e)),
            Err(_) => Err(AmqpError::Timeout {
                what: what.to_string(),
                after: self.publish_timeout,
            }),
        }
    }

    async fn settle(&self, event: &Event, inflight: InFlight) -> Result<(), AmqpError> {
        let confirm = match inflight {
            InFlight::Confirming(c) => c,
            InFlight::Sending(f) => self.timed("publishing", f).await?,
        };
        match self.timed("waiting for confirms", confirm).await? {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) => Err(AmqpError::Nack {
                seq: event.seq,
                file_path: event.file_path.clone(),
            }),
            Confirmation::NotRequested => Err(AmqpError::Channel {
                what: "publishing".to_string(),
                reason: "the channel is not in confirm mode".to_string(),
            }),
        }
    }

    /// Pipelined publishing: up to `max_in_flight` messages wait for their confirms while
    /// the next ones go out. Confirms are awaited in publishing order, so every success
    /// covers a contiguous prefix.
    ///
    /// lapin's `basic_publish` queues its frames synchronously on its first poll, then
    /// waits for the I/O thread to write them. Awaiting that write for each message costs
    /// two thread hand-offs per message, so each publish is polled once here (which fixes
    /// its place in the stream and its delivery tag, in order) and only awaited later.
    async fn publish_on(&self, ch: &Channel, events: &[Event]) -> Result<(), AmqpError> {
        let mut window: VecDeque<(&Event, InFlight)> =
            VecDeque::with_capacity(self.max_in_flight.min(events.len()));
        for ev in events {
            if window.len() >= self.max_in_flight
                && let Some((old, inflight)) = window.pop_front()
            {
                self.settle(old, inflight).await?;
            }
            let payload = serde_json::to_vec(ev).map_err(|e| AmqpError::Channel {
                what: format!("encoding {}", ev.file_path),
                reason: e.to_string(),
            })?;
            let ch = ch.clone();
            let exchange = self.exchange.clone();
            let key = ev.routing_key();
            let props = properties(ev);
            let mut sending: Sending = Box::pin(async move {
                ch.basic_publish(
                    exchange.into(),
                    key.into(),
                    // Not mandatory: an event nobody has bound a queue for is not an error.
                    BasicPublishOptions::default(),
                    &payload,
                    props,
                )
                .await
            });
            let inflight = match futures::poll!(sending.as_mut()) {
                std::task::Poll::Ready(r) => {
                    InFlight::Confirming(r.map_err(|e| self.link.map_err("publishing", &e))?)
                }
                std::task::Poll::Pending => InFlight::Sending(sending),
            };
            window.push_back((ev, inflight));
        }
        while let Some((ev, inflight)) = window.pop_front() {
            self.settle(ev, inflight).await?;
        }
        Ok(())
    }
}

type Sending = std::pin::Pin<
    Box<dyn std::future::Future<Output = lapin::Result<PublisherConfirm>> + Send + 'static>,
>;

/// A published message: its frames still being written, or waiting for its confirm.
enum InFlight {
    Sending(Sending),
    Confirming(PublisherConfirm),
}

/// The AMQP properties of an event message.
fn properties(ev: &Event) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(ev.id.as_str().into())
        .with_timestamp(ev.timestamp.timestamp().max(0) as u64)
        .with_app_id("vaultkeeper".into())
        .with_type(format!("file.{}", ev.event.as_str()).into())
}

/// Declares a durable exchange of `kind`.
pub(crate) async fn declare_exchange(
    link: &Link,
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), AmqpError> {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| link.map_err(&format!("declaring exchange {name}"), &e))
}

/// An event the broker can never take (its routing key or id is longer than AMQP allows).
fn unpublishable(ev: &Event) -> Option<String> {
    if ev.routing_key().len() > SHORT_STRING_MAX {
        return Some(format!(
            "{}: routing key longer than {SHORT_STRING_MAX} bytes",
            ev.file_path
        ));
    }
    if ev.id.len() > SHORT_STRING_MAX {
        return Some(format!("{}: event id too long", ev.file_path));
    }
    None
}

impl Consumer for Forwarder {
    fn name(&self) -> &str {
        vaultkeeper_core::status::ConsumerKind::Amqp.as_str()
    }

    fn status(&self) -> Option<vaultkeeper_core::status::ConsumerReport> {
        Some(vaultkeeper_core::status::ConsumerReport::Amqp(
            Forwarder::status(self),
        ))
    }

    /// `[amqp] start`: from the journal's first event by default, so a remote shadow cache
    /// gets every file; decided against the journal as it was when the daemon started.
    fn start_at(&self) -> StartAt {
        self.start
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let Some(last) = batch.last() else {
            return Ok(Durable::Unchanged);
        };
        if let Some((ev, reason)) = batch.iter().find_map(|e| unpublishable(e).map(|r| (e, r))) {
            return Err(ConsumerError::event(ev.seq, reason));
        }
        match self.publish_events(batch).await {
            Ok(()) => Ok(Durable::Upto(last.seq)),
            Err(e) => Err(ConsumerError::transient_from(e)),
        }
    }

    /// Due at once until the first connection attempt: a broker that refuses the login
    /// (or cannot be reached) is reported at start, not at the first change.
    fn deadline(&self) -> Option<Instant> {
        if !self.tried {
            return Some(Instant::now());
        }
        self.next_heartbeat
    }

    async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
        if !self.tried {
            self.tried = true;
            // The first heartbeat goes out at start (it connects); without heartbeats, just
            // the connection. Either way a refused login is reported now.
            let first = if let Some(every) = self.heartbeat_every {
                self.next_heartbeat = Some(Instant::now() + every);
                self.send_heartbeat().await
            } else {
                self.ready_channel().await.map(|_| ())
            };
            match first {
                Ok(()) => {}
                Err(e @ AmqpError::AccessRefused { .. }) => {
                    tracing::error!(error = %e, "amqp: the broker refused the login at start; events wait in the journal until [amqp] url is fixed");
                }
                // Logged by the link; it retries with backoff when events come.
                Err(e) => tracing::warn!(error = %e, "amqp: not connected at start"),
            }
            return Ok(Durable::Unchanged);
        }
        let (Some(at), Some(every)) = (self.next_heartbeat, self.heartbeat_every) else {
            return Ok(Durable::Unchanged);
        };
        if Instant::now() >= at {
            self.next_heartbeat = Some(Instant::now() + every);
            // A missed heartbeat must not hold up events: log it, the status shows it.
            if let Err(e) = self.send_heartbeat().await {
                tracing::warn!(error = %e, "amqp: heartbeat not sent");
            }
        }
        Ok(Durable::Unchanged)
    }
}

/// Publishes `events` (e.g. `origin: snapshot` events for every current file) with
/// confirms, through the forwarder's own machinery, in chunks of `4 × max_in_flight`.
/// Retries with backoff across broker outages until all are confirmed or `shutdown` is
/// cancelled (then `AmqpError::Cancelled`); a declaration the broker refuses ends it.
/// Returns how many messages were confirmed.
pub async fn publish_snapshot(
    cfg: &AmqpConfig,
    host: &str,
    events: &[Event],
    shutdown: CancellationToken,
) -> Result<u64, AmqpError> {
    let mut fwd = Forwarder::new(
        &AmqpConfig {
            heartbeat: Duration::ZERO,
            ..cfg.clone()
        },
        host,
    )?;
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let chunk = cfg.max_in_flight.max(1).saturating_mul(4);
    let mut done = 0usize;
    while done < events.len() {
        let part = &events[done..(done + chunk).min(events.len())];
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => Err(AmqpError::Cancelled),
            r = fwd.publish_events(part) => r,
        };
        match attempt {
            Ok(()) => {
                done += part.len();
                backoff.reset();
            }
            Err(e) if e.is_transient() => {
                let delay = fwd
                    .link
                    .wait_before_connect()
                    .unwrap_or_else(|| backoff.next_delay());
                tracing::warn!(error = %e, retry_in = ?delay, confirmed = done, "amqp: snapshot publishing paused");
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        fwd.close().await;
                        return Err(AmqpError::Cancelled);
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => {
                fwd.close().await;
                return Err(e);
            }
        }
    }
    fwd.close().await;
    Ok(done as u64)
}
