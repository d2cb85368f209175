//! The remote consumer: runs any [`Consumer`] from a durable (quorum) queue bound to the
//! events exchange, on the one runner with the queue as its source (queue_source.rs).

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::AmqpConfig;
use crate::error::AmqpError;
use crate::queue_source::QueueSource;
use vaultkeeper_core::consumer::Consumer;
use vaultkeeper_runner::{RunnerSettings, RunnerSignals, StatusCell};

/// Header on dead-lettered messages saying why vaultkeeper gave up on them.
pub const REASON_HEADER: &str = "x-vaultkeeper-reason";
/// Header on dead-lettered messages naming the queue they came from.
pub const QUEUE_HEADER: &str = "x-vaultkeeper-queue";

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
/// The consumer runs on the one runner ([`vaultkeeper_runner::drive`]) with the queue as
/// its source: one event per batch, `delivery_limit` as the attempt limit (the broker's
/// delivery count included), `reconnect_min`/`reconnect_max` as the retry backoff.
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
    let keys: Vec<String> = if binds.is_empty() {
        vec!["file.#".to_string()]
    } else {
        binds.to_vec()
    };
    let mut source = QueueSource::new(cfg, queue, keys)?;
    let settings = RunnerSettings {
        // One message at a time: a failure blames exactly it.
        batch_size: 1,
        max_attempts: cfg.delivery_limit.max(1),
        retry_min: cfg.reconnect_min,
        retry_max: cfg.reconnect_max,
    };
    let signals = RunnerSignals {
        stop: shutdown,
        flush: Default::default(),
    };
    let ran = vaultkeeper_runner::drive(
        &mut consumer,
        &mut source,
        settings,
        signals,
        StatusCell::default(),
    )
    .await;
    source.close().await;
    ran.map(|()| source.stats)
}
