//! The one runner that drives every consumer the same way: from its cursor, in batches,
//! with one retry and dead-letter policy.

use std::time::Instant;

use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable, StartAt};

/// Gives `name` its place in the journal if it has none yet, and returns its cursor.
///
/// `start_head` is the journal's head when the daemon started, read before the watcher
/// could append anything. The daemon registers every enabled consumer this way before
/// its runner starts; [`run`] does it too for a runner started on its own. A cursor once
/// registered is kept while the consumer is off (only [`Journal::forget_cursor`] removes
/// it), so a consumer that comes back resumes where it stopped.
///
/// [`Journal::forget_cursor`]: vaultkeeper_journal::Journal::forget_cursor
pub fn register(
    journal: &vaultkeeper_journal::Journal,
    name: &str,
    start: StartAt,
    start_head: u64,
) -> Result<Registered, vaultkeeper_journal::JournalError> {
    if let Some(c) = journal.cursor(name)? {
        return Ok(Registered {
            cursor: c,
            new: false,
        });
    }
    let cursor = match start {
        StartAt::Head => start_head,
        // Events appended since the start are above `start_head`, so the first held event
        // is at most one past it.
        StartAt::Beginning => journal
            .first_seq()?
            .map_or(start_head, |s| (s - 1).min(start_head)),
    };
    journal.set_cursor(name, cursor)?;
    Ok(Registered { cursor, new: true })
}

/// The outcome of [`register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The consumer's cursor.
    pub cursor: u64,
    /// True when the consumer had no cursor before.
    pub new: bool,
}

/// Settings shared by every runner.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Events handed over at once.
    pub batch_size: usize,
    /// Failures of one event before it is dead-lettered.
    pub max_attempts: u32,
    /// Backoff bounds.
    pub retry_min: std::time::Duration,
    /// Backoff bounds.
    pub retry_max: std::time::Duration,
}

/// What a runner reports about its consumer, for `status`; read back typed from the
/// daemon's status file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunnerStatus {
    /// The consumer's name.
    pub name: String,
    /// Last seq whose effect is durable.
    pub cursor: u64,
    /// Last seq handed to the consumer.
    pub read: u64,
    /// The last error, if the consumer is failing now.
    pub last_error: Option<String>,
    /// Events given up on since start.
    pub dead_letters: u64,
    /// The consumer's own report, filled from [`Consumer::status`].
    #[serde(default, deserialize_with = "vaultkeeper_core::status::lenient_report")]
    pub detail: Option<vaultkeeper_core::status::ConsumerReport>,
}

/// Shared, live view of a runner.
pub type StatusCell = std::sync::Arc<std::sync::Mutex<RunnerStatus>>;

/// Signals a runner reacts to besides new events.
#[derive(Clone, Default)]
pub struct RunnerSignals {
    /// Cancelled on shutdown: drain to the head, flush, stop.
    pub stop: tokio_util::sync::CancellationToken,
    /// Notified to flush now (`vaultkeeper commit`).
    pub flush: std::sync::Arc<tokio::sync::Notify>,
}

/// Drives one consumer: waits for new events, hands them over from its cursor in
/// batches, moves the cursor only as far as the consumer says its effect is durable,
/// retries with backoff, and dead-letters an event after `max_attempts` failures.
/// On `stop` it drains up to the head, flushes and returns.
pub async fn run<C: Consumer>(
    mut consumer: C,
    journal_path: std::path::PathBuf,
    mut head: tokio::sync::watch::Receiver<u64>,
    settings: RunnerSettings,
    signals: RunnerSignals,
    status: StatusCell,
) -> Result<(), vaultkeeper_journal::JournalError> {
    use std::collections::{BTreeSet, HashMap};
    use tracing::{error, info, warn};

    let name = consumer.name().to_string();
    let journal = vaultkeeper_journal::Journal::open(&journal_path)?;
    let own = match consumer.own_cursor() {
        Ok(c) => c,
        Err(e) => {
            error!(consumer = %name, "cannot read its cursor: {e}");
            None
        }
    };
    let mut cursor = match own {
        Some(c) => c,
        None => register(&journal, &name, consumer.start_at(), journal.head()?)?.cursor,
    };
    journal.set_cursor(&name, cursor)?;
    let mut read_pos = cursor;
    let mut skip: BTreeSet<u64> = journal
        .dead_letters()?
        .into_iter()
        .filter(|d| d.consumer == name && d.seq > cursor)
        .map(|d| d.seq)
        .collect();
    let mut attempts: HashMap<u64, u32> = HashMap::new();
    let mut single_until: Option<u64> = None;
    let mut backoff = vaultkeeper_core::retry::Backoff::new(settings.retry_min, settings.retry_max);
    let mut deadline_retry: Option<Instant> = None;
    let update = |status: &StatusCell, f: &dyn Fn(&mut RunnerStatus)| {
        if let Ok(mut s) = status.lock() {
            f(&mut s);
        }
    };
    update(&status, &|s| {
        s.name = name.clone();
        s.cursor = cursor;
        s.read = cursor;
    });

    // Applies a durable report: the cursor only moves forward and never past what was read.
    fn advance(
        journal: &vaultkeeper_journal::Journal,
        name: &str,
        d: Durable,
        cursor: &mut u64,
        read_pos: u64,
    ) -> Result<(), vaultkeeper_journal::JournalError> {
        if let Durable::Upto(n) = d {
            let n = n.min(read_pos);
            if n > *cursor {
                *cursor = n;
                if let Err(e) = journal.set_cursor(name, n) {
                    if !e.is_transient() {
                        return Err(e);
                    }
                    // The effect is durable, only its record is late (a full disk): the
                    // next move records it, and a crash meanwhile replays a little more.
                    tracing::warn!(consumer = %name, "cannot record the cursor yet: {e}");
                }
            }
        }
        Ok(())
    }

    loop {
        let stopping = signals.stop.is_cancelled();
        let limit = if single_until.is_some_and(|s| read_pos < s) {
            1
        } else {
            single_until = None;
            settings.batch_size
        };
        let mut batch = journal.read_after(read_pos, limit)?;
        let batch_end = batch.last().map(|e| e.seq);
        batch.retain(|e| !skip.contains(&e.seq));
        if let Some(end) = batch_end {
            if batch.is_empty() {
                read_pos = end;
                continue;
            }
            match consumer.handle(&batch).await {
                Ok(d) => {
                    read_pos = end;
                    advance(&journal, &name, d, &mut cursor, read_pos)?;
                    backoff.reset();
                    let detail = consumer.status();
                    update(&status, &|s| {
                        s.cursor = cursor;
                        s.read = read_pos;
                        s.last_error = None;
                        s.detail = detail.clone();
                    });
                }
                Err(err) => {
                    let message = err.to_string();
                    let detail = consumer.status();
                    update(&status, &|s| {
                        s.last_error = Some(message.clone());
                        s.detail = detail.clone();
                    });
                    let blamed = match err {
                        ConsumerError::Transient(_) => None,
                        ConsumerError::Failed { seq: Some(s), .. } => Some(s),
                        ConsumerError::Failed { seq: None, .. } if batch.len() > 1 => {
                            // Find the culprit: one event at a time up to the batch's end.
                            single_until = Some(end);
                            continue;
                        }
                        ConsumerError::Failed { seq: None, .. } => Some(batch[0].seq),
                    };
                    if let Some(seq) = blamed {
                        let n = attempts.entry(seq).or_insert(0);
                        *n += 1;
                        if *n >= settings.max_attempts {
                            let n = *n;
                            attempts.remove(&seq);
                            if let Some(event) = batch.iter().find(|e| e.seq == seq) {
                                error!(consumer = %name, seq, path = %event.file_path,
                                    "giving up after {n} attempts, dead-lettered: {message}");
                                journal.add_dead_letter(&name, event, &message, n)?;
                            }
                            skip.insert(seq);
                            update(&status, &|s| s.dead_letters += 1);
                            continue;
                        }
                    }
                    let delay = backoff.next_delay();
                    warn!(consumer = %name, "retrying in {delay:?}: {message}");
                    if stopping {
                        // Draining on shutdown: keep trying until the daemon's timeout.
                        tokio::time::sleep(delay).await;
                    } else {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = signals.stop.cancelled() => {}
                        }
                    }
                    continue;
                }
            }
            continue;
        }

        // Caught up with the journal: replay dead letters someone asked to retry.
        for (id, event) in journal.retries(&name)? {
            let seq = event.seq;
            let outcome = match consumer.handle(std::slice::from_ref(&event)).await {
                Ok(_) => consumer.flush().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    info!(consumer = %name, seq, path = %event.file_path, "dead letter retried successfully");
                    journal.remove_dead_letter(id)?;
                }
                Err(e) => {
                    warn!(consumer = %name, seq, path = %event.file_path, "dead letter retry failed: {e}");
                    journal.retry_failed(id, &e.to_string())?;
                }
            }
        }
        if stopping {
            loop {
                match consumer.flush().await {
                    Ok(d) => {
                        advance(&journal, &name, d, &mut cursor, read_pos)?;
                        break;
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        warn!(consumer = %name, "flush failed, retrying in {delay:?}: {e}");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
            consumer.stop().await;
            let detail = consumer.status();
            update(&status, &|s| {
                s.cursor = cursor;
                s.detail = detail.clone();
            });
            info!(consumer = %name, cursor, "stopped");
            return Ok(());
        }
        let deadline = match (consumer.deadline(), deadline_retry) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, _) => d,
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        enum Wake {
            Events,
            Deadline,
            Flush,
            Stop,
        }
        let wake = tokio::select! {
            changed = head.changed() => if changed.is_ok() { Wake::Events } else { Wake::Stop },
            _ = sleep => Wake::Deadline,
            _ = signals.flush.notified() => Wake::Flush,
            _ = signals.stop.cancelled() => Wake::Stop,
        };
        let result = match wake {
            Wake::Events | Wake::Stop => continue,
            Wake::Deadline => consumer.on_deadline().await,
            Wake::Flush => consumer.flush().await,
        };
        match result {
            Ok(d) => {
                deadline_retry = None;
                advance(&journal, &name, d, &mut cursor, read_pos)?;
                let detail = consumer.status();
                update(&status, &|s| {
                    s.cursor = cursor;
                    s.last_error = None;
                    s.detail = detail.clone();
                });
            }
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(consumer = %name, "retrying in {delay:?}: {e}");
                let message = e.to_string();
                let detail = consumer.status();
                update(&status, &|s| {
                    s.last_error = Some(message.clone());
                    s.detail = detail.clone();
                });
                deadline_retry = Some(Instant::now() + delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use vaultkeeper_core::event::Event;
    use vaultkeeper_journal::Journal;

    /// Records what it sees; fails as told.
    struct Probe {
        seen: Arc<Mutex<Vec<u64>>>,
        poison: Option<u64>,
        transient_left: u32,
        /// Holds events until a deadline, like git's quiet period.
        hold: Option<Duration>,
        pending: Option<(u64, Instant)>,
        flushed: Arc<Mutex<bool>>,
    }

    impl Probe {
        fn new(seen: &Arc<Mutex<Vec<u64>>>) -> Probe {
            Probe {
                seen: Arc::clone(seen),
                poison: None,
                transient_left: 0,
                hold: None,
                pending: None,
                flushed: Arc::new(Mutex::new(false)),
            }
        }
    }

    impl Consumer for Probe {
        fn name(&self) -> &str {
            "probe"
        }

        async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
            if self.transient_left > 0 {
                self.transient_left -= 1;
                return Err(ConsumerError::Transient("broker away".into()));
            }
            for e in batch {
                if Some(e.seq) == self.poison {
                    return Err(ConsumerError::failed(format!(
                        "cannot handle {}",
                        e.file_path
                    )));
                }
            }
            let mut seen = self.seen.lock().expect("lock");
            seen.extend(batch.iter().map(|e| e.seq));
            let last = batch.last().map_or(0, |e| e.seq);
            match self.hold {
                Some(d) => {
                    self.pending = Some((last, Instant::now() + d));
                    Ok(Durable::Unchanged)
                }
                None => Ok(Durable::Upto(last)),
            }
        }

        fn deadline(&self) -> Option<Instant> {
            self.pending.map(|(_, t)| t)
        }

        async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
            Ok(self
                .pending
                .take()
                .map_or(Durable::Unchanged, |(s, _)| Durable::Upto(s)))
        }

        async fn flush(&mut self) -> Result<Durable, ConsumerError> {
            *self.flushed.lock().expect("lock") = true;
            self.on_deadline().await
        }
    }

    fn append(j: &mut Journal, n: usize) -> u64 {
        let mut batch: Vec<Event> = (0..n)
            .map(|i| vaultkeeper_core::event::sample(&format!("n{i}.md")))
            .collect();
        j.append(&mut batch, &[]).expect("append")
    }

    fn settings() -> RunnerSettings {
        RunnerSettings {
            batch_size: 7,
            max_attempts: 3,
            retry_min: Duration::from_millis(5),
            retry_max: Duration::from_millis(20),
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        journal: Journal,
        head: tokio::sync::watch::Sender<u64>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.db");
        let journal = Journal::open(&path).expect("open");
        let (head, _) = tokio::sync::watch::channel(0);
        Rig {
            _dir: dir,
            path,
            journal,
            head,
        }
    }

    fn start(
        rig: &Rig,
        c: Probe,
    ) -> (
        RunnerSignals,
        StatusCell,
        tokio::task::JoinHandle<Result<(), vaultkeeper_journal::JournalError>>,
    ) {
        let signals = RunnerSignals::default();
        let status = StatusCell::default();
        let task = tokio::spawn(run(
            c,
            rig.path.clone(),
            rig.head.subscribe(),
            settings(),
            signals.clone(),
            status.clone(),
        ));
        (signals, status, task)
    }

    #[test]
    fn registration_is_decided_by_the_head_at_start_and_kept() {
        let mut rig = rig();
        append(&mut rig.journal, 3);
        // The daemon started at head 3; its first scan then appended 2 more.
        let start_head = rig.journal.head().expect("head");
        append(&mut rig.journal, 2);
        let j = &rig.journal;
        let head = register(j, "h", StartAt::Head, start_head).expect("register");
        assert_eq!(
            head,
            Registered {
                cursor: 3,
                new: true
            }
        );
        let all = register(j, "b", StartAt::Beginning, start_head).expect("register");
        assert_eq!(all.cursor, 0);
        // Registered once, a cursor stays where it is.
        j.set_cursor("h", 5).expect("cursor");
        let again = register(j, "h", StartAt::Head, 0).expect("register");
        assert_eq!(
            again,
            Registered {
                cursor: 5,
                new: false
            }
        );
        assert!(j.forget_cursor("h").expect("forget"));
        assert!(!j.forget_cursor("h").expect("forget"));
        assert_eq!(j.cursor("h").expect("cursor"), None);
    }

    #[tokio::test]
    async fn delivers_everything_in_order_and_resumes_from_the_cursor() {
        let mut rig = rig();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let head = append(&mut rig.journal, 20);
        let (signals, _, task) = start(&rig, Probe::new(&seen));
        rig.head.send_replace(head);
        wait_for("20 events", || seen.lock().expect("lock").len() == 20).await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        assert_eq!(*seen.lock().expect("lock"), (1..=20).collect::<Vec<u64>>());
        assert_eq!(rig.journal.cursor("probe").expect("cursor"), Some(20));

        // A new runner starts after the cursor: nothing is handed over twice.
        let head = append(&mut rig.journal, 5);
        let seen2 = Arc::new(Mutex::new(Vec::new()));
        let (signals, _, task) = start(&rig, Probe::new(&seen2));
        rig.head.send_replace(head);
        wait_for("5 more", || seen2.lock().expect("lock").len() == 5).await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        assert_eq!(
            *seen2.lock().expect("lock"),
            (21..=25).collect::<Vec<u64>>()
        );
    }

    #[tokio::test]
    async fn transient_errors_retry_without_dead_letters() {
        let mut rig = rig();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut probe = Probe::new(&seen);
        probe.transient_left = 5;
        let head = append(&mut rig.journal, 3);
        let (signals, _, task) = start(&rig, probe);
        rig.head.send_replace(head);
        wait_for("3 events", || seen.lock().expect("lock").len() == 3).await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        assert!(rig.journal.dead_letters().expect("dl").is_empty());
        assert_eq!(rig.journal.cursor("probe").expect("cursor"), Some(3));
    }

    #[tokio::test]
    async fn a_poison_event_is_dead_lettered_and_the_rest_flows() {
        let mut rig = rig();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut probe = Probe::new(&seen);
        probe.poison = Some(4);
        let head = append(&mut rig.journal, 10);
        let (signals, status, task) = start(&rig, probe);
        rig.head.send_replace(head);
        wait_for("9 events", || seen.lock().expect("lock").len() == 9).await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        let seen = seen.lock().expect("lock").clone();
        assert!(!seen.contains(&4), "{seen:?}");
        assert_eq!(seen.len(), 9);
        let dead = rig.journal.dead_letters().expect("dl");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].seq, 4);
        assert_eq!(dead[0].path, "n3.md");
        assert!(dead[0].reason.contains("n3.md"), "{}", dead[0].reason);
        assert_eq!(dead[0].attempts, 3);
        assert_eq!(status.lock().expect("lock").dead_letters, 1);
        assert_eq!(rig.journal.cursor("probe").expect("cursor"), Some(10));
    }

    #[tokio::test]
    async fn cursor_waits_for_the_deadline_and_shutdown_flushes() {
        let mut rig = rig();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut probe = Probe::new(&seen);
        probe.hold = Some(Duration::from_millis(200));
        let head = append(&mut rig.journal, 3);
        let (signals, _, task) = start(&rig, probe);
        rig.head.send_replace(head);
        wait_for("3 events", || seen.lock().expect("lock").len() == 3).await;
        assert_eq!(
            rig.journal.cursor("probe").expect("cursor"),
            Some(0),
            "not durable yet"
        );
        wait_for("deadline commit", || {
            rig.journal.cursor("probe").expect("cursor") == Some(3)
        })
        .await;

        // Held work at shutdown is flushed before the runner returns.
        let mut probe_seen = Probe::new(&seen);
        probe_seen.hold = Some(Duration::from_secs(3600));
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        let flushed = Arc::clone(&probe_seen.flushed);
        let head = append(&mut rig.journal, 2);
        let (signals, _, task) = start(&rig, probe_seen);
        rig.head.send_replace(head);
        wait_for("2 more", || seen.lock().expect("lock").len() == 5).await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        assert!(*flushed.lock().expect("lock"));
        assert_eq!(rig.journal.cursor("probe").expect("cursor"), Some(5));
    }
}
