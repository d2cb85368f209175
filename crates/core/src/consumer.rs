//! The consumer contract: what a consumer is, how it reports durability and failure.

use std::future::Future;
use std::time::Instant;

use crate::event::Event;

/// How far a consumer's effects are durable after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Every event with `seq <= n` has a durable effect; the cursor may move to `n`.
    Upto(u64),
    /// Nothing new is durable yet (the consumer holds work, e.g. waiting for a quiet period).
    Unchanged,
}

/// The error underneath a [`ConsumerError`], kept so the chain reaches the logs.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A consumer's failure, telling the runner what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Something outside is unavailable (a broker, a locked git index): retry the
    /// same work later with backoff, never dead-letter.
    #[error("{reason}")]
    Transient {
        /// What is unavailable, naming the file, queue or repository.
        reason: String,
        /// The error that said so, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// Handling failed. With `seq`, that event is to blame and counts towards its
    /// dead letter; without, the runner retries the events one at a time to find it.
    #[error("{reason}")]
    Failed {
        /// The event at fault, when known.
        seq: Option<u64>,
        /// What went wrong, naming the file where there is one.
        reason: String,
        /// The error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
}

impl ConsumerError {
    /// A transient failure described by `reason` alone.
    pub fn transient(reason: impl Into<String>) -> Self {
        ConsumerError::Transient {
            reason: reason.into(),
            source: None,
        }
    }

    /// A transient failure caused by `source`; its text is the reason.
    pub fn transient_from(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        ConsumerError::Transient {
            reason: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A failure caused by one event.
    pub fn event(seq: u64, reason: impl Into<String>) -> Self {
        ConsumerError::Failed {
            seq: Some(seq),
            reason: reason.into(),
            source: None,
        }
    }

    /// A failure not (yet) tied to one event.
    pub fn failed(reason: impl Into<String>) -> Self {
        ConsumerError::Failed {
            seq: None,
            reason: reason.into(),
            source: None,
        }
    }

    /// Adds the error underneath to a `Failed` or `Transient` failure.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        match &mut self {
            ConsumerError::Transient { source, .. } | ConsumerError::Failed { source, .. } => {
                *source = Some(Box::new(cause));
            }
        }
        self
    }
}

/// Where a consumer without a cursor starts reading. Both are decided against the journal
/// as it was when the daemon started, before its first scan, so where a new consumer
/// starts never depends on how fast that scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// From the first event the journal still holds.
    Beginning,
    /// From the journal's head when the daemon started: the events of this run (its
    /// start-up scan included) and later ones, not the history.
    Head,
}

/// Something that applies journal events: the cache, git, the AMQP forwarder, rules.
///
/// Handling must be idempotent: after a crash the runner hands over again every
/// event above the durable cursor.
pub trait Consumer: Send + 'static {
    /// Stable name, used as the cursor key and in status output.
    fn name(&self) -> &str;

    /// Where to start when the journal has no cursor for this consumer.
    fn start_at(&self) -> StartAt {
        StartAt::Beginning
    }

    /// A cursor the consumer keeps itself, in the same transaction as its effect
    /// (the cache does this). `None`: the runner's cursor in the journal is used.
    fn own_cursor(&mut self) -> Result<Option<u64>, ConsumerError> {
        Ok(None)
    }

    /// Handles events in `seq` order and says how far effects are durable.
    fn handle(
        &mut self,
        batch: &[Event],
    ) -> impl Future<Output = Result<Durable, ConsumerError>> + Send;

    /// When the consumer wants [`Consumer::on_deadline`] called without new events.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Called at [`Consumer::deadline`] (a quiet period ended, confirms are due).
    fn on_deadline(&mut self) -> impl Future<Output = Result<Durable, ConsumerError>> + Send {
        async { Ok(Durable::Unchanged) }
    }

    /// The runner gave up on `seq` (dead-lettered it) after it failed outside a batch, in
    /// [`Consumer::on_deadline`] or [`Consumer::flush`]: drop the work held for it and say
    /// how far effects are durable now.
    fn gave_up(&mut self, _seq: u64) -> Durable {
        Durable::Unchanged
    }

    /// Makes everything handled so far durable: on shutdown and on an explicit flush.
    fn flush(&mut self) -> impl Future<Output = Result<Durable, ConsumerError>> + Send {
        async { Ok(Durable::Unchanged) }
    }

    /// Called once on shutdown, after the last flush: finishes work that runs beside the
    /// consumer (git's push in flight). The daemon's shutdown timeout bounds it.
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A consumer-specific report for `status` (last commit, connection state, ...);
    /// `None` for consumers that have nothing to report (tests' consumers).
    fn status(&self) -> Option<crate::status::ConsumerReport> {
        None
    }
}
