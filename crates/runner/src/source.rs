//! The `Source` contract: where a runner's events come from and where their progress,
//! failures and dead letters go (the journal, or an AMQP queue).

use std::future::Future;

use vaultkeeper_core::consumer::StartAt;
use vaultkeeper_core::event::Event;

/// A source of events for [`crate::drive`].
///
/// The runner owns the policy (batches, retries with backoff, attempts, when to give up);
/// the source owns the mechanics: reading, recording durable progress, recording a dead
/// letter, and knowing how often an event was tried before this process saw it.
pub trait Source: Send {
    /// What can go wrong reading or recording; the runner stops on it.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Prepares to serve consumer `name` and returns the position its effects are durable
    /// up to. `own` is a cursor the consumer keeps itself; `start` where a consumer with
    /// no position starts.
    fn open(
        &mut self,
        name: &str,
        start: StartAt,
        own: Option<u64>,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Up to `limit` events not yet accepted, in order, without waiting: empty when
    /// caught up. Until [`Source::accept`], the same events come again.
    fn read(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, Self::Error>> + Send;

    /// The events of the last read were handed over: the next read starts after them.
    fn accept(&mut self);

    /// The consumer's effects are durable up to `seq`; returns the durable position.
    fn durable(&mut self, seq: u64) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Attempts at `seq` made before this process saw it (a broker's delivery count that
    /// survives reconnections); 0 when the source cannot tell.
    fn prior_attempts(&self, _seq: u64) -> u32 {
        0
    }

    /// `seq` failed and will be tried again. The journal reads it again in place; a queue
    /// gives the message back to the broker, which delivers it again.
    fn retry_later(&mut self, _seq: u64) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// Gives up on `seq` after `attempts`: records it where an operator finds it (the
    /// journal's dead letters, `<queue>.dead`). The source finds the event itself, so
    /// an event held by the consumer past its batch can be dead-lettered too.
    fn dead_letter(
        &mut self,
        seq: u64,
        reason: &str,
        attempts: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Work the consumer held failed without naming an event: a queue gives the
    /// unacknowledged messages back.
    fn held_failed(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// True when so much is handled but not durable that the consumer must flush
    /// (a queue's prefetch is used up: the broker sends nothing more until an ack).
    fn wants_flush(&self) -> bool {
        false
    }

    /// Waits until [`Source::read`] may return more. Must be cancel-safe: the runner
    /// also waits for deadlines, flushes and stop.
    fn wait(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Dead letters someone asked to retry (`vaultkeeper dead-letters --retry`).
    fn retries(&mut self) -> impl Future<Output = Result<Vec<(i64, Event)>, Self::Error>> + Send {
        async { Ok(Vec::new()) }
    }

    /// The outcome of a requested retry: `None` (it worked) removes the dead letter, a
    /// failure is recorded with it.
    fn retried(
        &mut self,
        _id: i64,
        _failure: Option<String>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// On stop, true: everything up to the end is handed over first (the journal's head);
    /// false: only what the consumer holds is flushed (the rest stays in the queue).
    fn drains_on_stop(&self) -> bool {
        true
    }
}
