//! The runner loop: one retry, attempt and dead-letter policy over any [`Source`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::retry::Backoff;

use crate::source::Source;
use crate::{RunnerSettings, RunnerSignals, RunnerStatus, StatusCell};

/// Drives `consumer` from `source`: hands events over in batches, records progress only
/// as far as the consumer says its effect is durable, retries failures with backoff, and
/// dead-letters an event after `max_attempts` failures (attempts the source saw before
/// included). Waits for more events, the consumer's deadline, a flush or stop. On `stop`
/// it drains what the source has (the journal up to its head; a queue keeps the rest),
/// flushes and returns. A `stop` cancelled before the call makes it run until caught up.
/// The consumer is borrowed, so the caller has it back afterwards (its status, its close).
pub async fn drive<C: Consumer, S: Source>(
    consumer: &mut C,
    source: &mut S,
    settings: RunnerSettings,
    signals: RunnerSignals,
    status: StatusCell,
) -> Result<(), S::Error> {
    let name = consumer.name().to_string();
    let backoff = Backoff::new(settings.retry_min, settings.retry_max);
    let mut run = Run {
        consumer,
        source,
        settings,
        status,
        name,
        cursor: 0,
        read: 0,
        attempts: HashMap::new(),
        backoff,
        deadline_retry: None,
        since_release: 0,
        released_at: None,
    };
    run.go(&signals).await
}

struct Run<'s, C, S> {
    consumer: &'s mut C,
    source: &'s mut S,
    settings: RunnerSettings,
    status: StatusCell,
    name: String,
    cursor: u64,
    /// Last seq handed over successfully.
    read: u64,
    /// Failures per seq seen by this runner.
    attempts: HashMap<u64, u32>,
    backoff: Backoff,
    /// After a failed deadline or flush: not before this.
    deadline_retry: Option<Instant>,
    /// Events handled since freed memory was last handed back (see [`RELEASE_AFTER`]).
    since_release: usize,
    /// When freed memory was last handed back by this consumer.
    released_at: Option<Instant>,
}

/// Once this many events were handled, catching up hands freed memory back to the system:
/// a burst's parsed notes and buffers would otherwise stay mapped (see `memory::release_freed`).
const RELEASE_AFTER: usize = 1000;

/// Fewer than [`RELEASE_AFTER`] events are handed back too, on the first catch-up of a run
/// and once this long passed since the last time: an idle daemon then keeps none of what
/// its last work freed (2.5 MB on the help vault after its first index), at one trim per
/// 10 s at most.
const RELEASE_EVERY: Duration = Duration::from_secs(10);

enum Wake {
    Events,
    Deadline,
    Flush,
    Stop,
}

impl<C: Consumer, S: Source> Run<'_, C, S> {
    fn update(&self, f: impl FnOnce(&mut RunnerStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn report(&self, error: Option<String>) {
        let detail = self.consumer.status();
        let cursor = self.cursor;
        self.update(|s| {
            s.cursor = cursor;
            s.last_error = error;
            s.detail = detail;
        });
    }

    /// Makes `d` durable. The live status's cursor moves with the journal's, together with
    /// the consumer's report of what made it durable (`commit` through the API waits on both).
    async fn apply(&mut self, d: Durable) -> Result<(), S::Error> {
        if let Durable::Upto(n) = d {
            self.cursor = self.source.durable(n).await?;
            let (cursor, detail) = (self.cursor, self.consumer.status());
            self.update(|s| {
                s.cursor = cursor;
                s.detail = detail;
            });
        }
        Ok(())
    }

    /// Counts a failure of `seq`; at the limit dead-letters it and returns true.
    async fn failed(&mut self, seq: u64, message: &str) -> Result<bool, S::Error> {
        let local = self.attempts.entry(seq).or_insert(0);
        *local += 1;
        let n = (*local).max(self.source.prior_attempts(seq).saturating_add(1));
        if n < self.settings.max_attempts.max(1) {
            return Ok(false);
        }
        self.attempts.remove(&seq);
        error!(consumer = %self.name, seq, "giving up after {n} attempts, dead-lettered: {message}");
        self.source.dead_letter(seq, message, n).await?;
        self.update(|s| s.dead_letters += 1);
        let d = self.consumer.gave_up(seq);
        self.apply(d).await?;
        Ok(true)
    }

    /// Applies the outcome of work the consumer held (deadline, flush); true when it worked
    /// or the failing event was given up on.
    async fn held(&mut self, result: Result<Durable, ConsumerError>) -> Result<bool, S::Error> {
        let e = match result {
            Ok(d) => {
                self.deadline_retry = None;
                self.apply(d).await?;
                self.report(None);
                return Ok(true);
            }
            Err(e) => e,
        };
        let message = e.to_string();
        self.report(Some(message.clone()));
        match e {
            ConsumerError::Failed { seq: Some(seq), .. } => {
                if self.failed(seq, &message).await? {
                    self.deadline_retry = None;
                    self.report(None);
                    return Ok(true);
                }
            }
            ConsumerError::Failed { seq: None, .. } => self.source.held_failed().await?,
            ConsumerError::Transient { .. } => {}
        }
        let delay = self.backoff.next_delay();
        warn!(consumer = %self.name, "held work failed, retrying in {delay:?}: {message}");
        self.deadline_retry = Some(Instant::now() + delay);
        Ok(false)
    }

    async fn go(&mut self, signals: &RunnerSignals) -> Result<(), S::Error> {
        let own = match self.consumer.own_cursor() {
            Ok(c) => c,
            Err(e) => {
                error!(consumer = %self.name, "cannot read its cursor: {e}");
                None
            }
        };
        self.cursor = self
            .source
            .open(&self.name, self.consumer.start_at(), own)
            .await?;
        self.read = self.cursor;
        let (name, cursor) = (self.name.clone(), self.cursor);
        self.update(|s| {
            s.name = name;
            s.cursor = cursor;
            s.read = cursor;
        });
        let mut single_until: Option<u64> = None;
        loop {
            let stopping = signals.stop.is_cancelled();
            if stopping && !self.source.drains_on_stop() {
                return self.stop().await;
            }
            let limit = match single_until {
                Some(s) if self.read < s => 1,
                _ => {
                    single_until = None;
                    self.settings.batch_size.max(1)
                }
            };
            let batch = self.source.read(limit).await?;
            if let Some(end) = batch.last().map(|e| e.seq) {
                match self.consumer.handle(&batch).await {
                    Ok(d) => {
                        self.source.accept();
                        for e in &batch {
                            self.attempts.remove(&e.seq);
                        }
                        self.apply(d).await?;
                        self.backoff.reset();
                        self.read = end;
                        self.since_release += batch.len();
                        self.update(|s| s.read = end);
                        self.report(None);
                        if self.source.wants_flush() {
                            let r = self.consumer.flush().await;
                            self.held(r).await?;
                        }
                    }
                    Err(err) => {
                        let message = err.to_string();
                        self.report(Some(message.clone()));
                        let blamed = match err {
                            ConsumerError::Transient { .. } => None,
                            ConsumerError::Failed { seq: Some(s), .. } => Some(s),
                            ConsumerError::Failed { seq: None, .. } if batch.len() > 1 => {
                                // Find the culprit: one event at a time up to the batch's end.
                                single_until = Some(end);
                                continue;
                            }
                            ConsumerError::Failed { seq: None, .. } => Some(batch[0].seq),
                        };
                        if let Some(seq) = blamed {
                            if self.failed(seq, &message).await? {
                                continue;
                            }
                            self.source.retry_later(seq).await?;
                        }
                        let delay = self.backoff.next_delay();
                        warn!(consumer = %self.name, "retrying in {delay:?}: {message}");
                        if stopping && self.source.drains_on_stop() {
                            // Draining on shutdown: keep trying until the daemon's timeout.
                            tokio::time::sleep(delay).await;
                        } else {
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = signals.stop.cancelled() => {}
                            }
                        }
                    }
                }
                continue;
            }

            // Caught up: replay dead letters someone asked to retry.
            self.replay_retries().await?;
            let due = self
                .released_at
                .is_none_or(|at| at.elapsed() >= RELEASE_EVERY);
            if self.since_release >= RELEASE_AFTER || (self.since_release > 0 && due) {
                self.since_release = 0;
                self.released_at = Some(Instant::now());
                vaultkeeper_core::memory::release_freed();
            }
            if stopping {
                return self.stop().await;
            }
            let deadline = match (self.consumer.deadline(), self.deadline_retry) {
                (Some(d), Some(r)) => Some(d.max(r)),
                (d, _) => d,
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let wake = tokio::select! {
                more = self.source.wait() => { more?; Wake::Events }
                _ = sleep => Wake::Deadline,
                _ = signals.flush.notified() => Wake::Flush,
                _ = signals.stop.cancelled() => Wake::Stop,
            };
            let result = match wake {
                Wake::Events | Wake::Stop => continue,
                Wake::Deadline => self.consumer.on_deadline().await,
                Wake::Flush => self.consumer.flush().await,
            };
            self.held(result).await?;
        }
    }

    async fn replay_retries(&mut self) -> Result<(), S::Error> {
        for (id, event) in self.source.retries().await? {
            let seq = event.seq;
            let outcome = match self.consumer.handle(std::slice::from_ref(&event)).await {
                Ok(_) => self.consumer.flush().await.map(|_| ()),
                Err(e) => Err(e),
            };
            let failure = match outcome {
                Ok(()) => {
                    info!(consumer = %self.name, seq, path = %event.file_path, "dead letter retried successfully");
                    None
                }
                Err(e) => {
                    warn!(consumer = %self.name, seq, path = %event.file_path, "dead letter retry failed: {e}");
                    Some(e.to_string())
                }
            };
            self.source.retried(id, failure).await?;
        }
        Ok(())
    }

    /// Flushes what the consumer holds and stops it.
    async fn stop(&mut self) -> Result<(), S::Error> {
        loop {
            let r = self.consumer.flush().await;
            if self.held(r).await? {
                break;
            }
            if !self.source.drains_on_stop() {
                warn!(consumer = %self.name, "flush on stop failed; what is not durable comes again");
                break;
            }
            if let Some(at) = self.deadline_retry {
                tokio::time::sleep_until(at.into()).await;
            }
        }
        self.consumer.stop().await;
        let (cursor, detail) = (self.cursor, self.consumer.status());
        self.update(|s| {
            s.cursor = cursor;
            s.detail = detail;
        });
        info!(consumer = %self.name, cursor = self.cursor, "stopped");
        Ok(())
    }
}
