//! The one runner that drives every consumer the same way, wherever its events come from.
//!
//! A tour:
//! - [`drive`] (drive.rs) is the loop: batches from a [`Source`], progress recorded only as
//!   far as the consumer's [`Durable`] says, one retry policy (core's
//!   [`Backoff`](vaultkeeper_core::retry::Backoff)) and one attempt and dead-letter policy
//!   (`max_attempts`, counting the attempts a source saw before), deadlines, flushes, stop.
//! - [`Source`] (source.rs) is where events come from and where progress and dead letters
//!   go. [`JournalSource`] (journal_source.rs) is the daemon's: the journal's cursor and
//!   dead-letter table, every SQLite call on the blocking pool. The AMQP queue source lives
//!   in the amqp crate.
//! - [`run`] drives a consumer from the journal until stop (the daemon, one per consumer);
//!   [`catch_up`] drives it until the journal's head, flushes and returns (`vaultkeeper
//!   commit` without a daemon).
//! - [`register`] (register.rs) gives a new consumer its first cursor.
//!
//! [`Durable`]: vaultkeeper_core::consumer::Durable

mod drive;
mod journal_source;
mod register;
mod source;

pub use drive::drive;
pub use journal_source::{JournalSource, JournalSourceError};
pub use register::{Registered, register};
pub use source::Source;

use vaultkeeper_core::consumer::Consumer;

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

impl RunnerSignals {
    /// Signals with stop already given: the runner drains, flushes and returns.
    pub fn stopped() -> RunnerSignals {
        let signals = RunnerSignals::default();
        signals.stop.cancel();
        signals
    }
}

/// Drives one consumer from the journal at `journal_path` (see [`drive`]); `head` tells
/// when the journal grew. Returns on `stop`, once drained up to the head and flushed.
pub async fn run<C: Consumer>(
    mut consumer: C,
    journal_path: std::path::PathBuf,
    head: tokio::sync::watch::Receiver<u64>,
    settings: RunnerSettings,
    signals: RunnerSignals,
    status: StatusCell,
) -> Result<(), JournalSourceError> {
    let mut source = JournalSource::open(journal_path, head)?;
    drive(&mut consumer, &mut source, settings, signals, status).await
}

/// Drives one consumer from the journal at `journal_path` until it is caught up with the
/// head, then flushes and returns, with the same retries and dead letters as [`run`].
pub async fn catch_up<C: Consumer>(
    consumer: C,
    journal_path: std::path::PathBuf,
    settings: RunnerSettings,
    status: StatusCell,
) -> Result<(), JournalSourceError> {
    let (_, head) = tokio::sync::watch::channel(0);
    run(
        consumer,
        journal_path,
        head,
        settings,
        RunnerSignals::stopped(),
        status,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use std::time::Instant;
    use vaultkeeper_core::consumer::{ConsumerError, Durable, StartAt};
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
        /// On its first batch, claims its effect up to this seq (as a full rebuild does).
        claim: Option<u64>,
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
                claim: None,
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
                return Err(ConsumerError::transient("broker away"));
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
            if let Some(claim) = self.claim.take() {
                return Ok(Durable::Upto(claim.max(last)));
            }
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
        tokio::task::JoinHandle<Result<(), JournalSourceError>>,
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
    async fn a_consumer_claiming_past_its_batch_is_not_handed_those_events() {
        // A full rebuild includes every event up to the seq it settled on: reading and
        // handing over those events again would only cost (100,000 of them on a first start).
        let mut rig = rig();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let head = append(&mut rig.journal, 20);
        let mut probe = Probe::new(&seen);
        probe.claim = Some(15);
        let (signals, _, task) = start(&rig, probe);
        rig.head.send_replace(head);
        wait_for("the events after the claim", || {
            seen.lock().expect("lock").last() == Some(&20)
        })
        .await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        let mut want: Vec<u64> = (1..=7).collect();
        want.extend(16..=20);
        assert_eq!(*seen.lock().expect("lock"), want);
        assert_eq!(rig.journal.cursor("probe").expect("cursor"), Some(20));
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

    /// A broker-like source: a message that fails goes to the back with its delivery
    /// count raised, as a requeued message comes again.
    #[derive(Default)]
    struct FakeQueue {
        messages: std::collections::VecDeque<(Event, u32)>,
        handed: usize,
        requeued: u32,
        acked: Vec<u64>,
        held: Vec<u64>,
        dead: Vec<(u64, u32, String)>,
    }

    impl Source for FakeQueue {
        type Error = std::io::Error;

        async fn open(&mut self, _: &str, _: StartAt, _: Option<u64>) -> std::io::Result<u64> {
            Ok(0)
        }

        async fn read(&mut self, limit: usize) -> std::io::Result<Vec<Event>> {
            self.handed = limit.min(self.messages.len());
            Ok(self
                .messages
                .iter()
                .take(self.handed)
                .map(|(e, _)| e.clone())
                .collect())
        }

        fn accept(&mut self) {
            for _ in 0..self.handed {
                if let Some((e, _)) = self.messages.pop_front() {
                    self.held.push(e.seq);
                }
            }
            self.handed = 0;
        }

        async fn durable(&mut self, seq: u64) -> std::io::Result<u64> {
            let (done, held) = self.held.iter().partition(|s| **s <= seq);
            self.acked.extend::<Vec<u64>>(done);
            self.held = held;
            Ok(seq)
        }

        fn prior_attempts(&self, seq: u64) -> u32 {
            self.messages
                .iter()
                .find(|(e, _)| e.seq == seq)
                .map_or(0, |(_, n)| *n)
        }

        async fn retry_later(&mut self, seq: u64) -> std::io::Result<()> {
            if let Some(i) = self.messages.iter().position(|(e, _)| e.seq == seq)
                && let Some((e, n)) = self.messages.remove(i)
            {
                self.messages.push_back((e, n + 1));
                self.requeued += 1;
            }
            Ok(())
        }

        async fn dead_letter(
            &mut self,
            seq: u64,
            reason: &str,
            attempts: u32,
        ) -> std::io::Result<()> {
            self.messages.retain(|(e, _)| e.seq != seq);
            self.dead.push((seq, attempts, reason.to_string()));
            Ok(())
        }

        async fn wait(&mut self) -> std::io::Result<()> {
            std::future::pending().await
        }

        fn drains_on_stop(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_queue_source_counts_earlier_deliveries_and_gives_failures_back() {
        let mut queue = FakeQueue::default();
        for seq in 1..=3 {
            let mut e = vaultkeeper_core::event::sample(&format!("q{seq}.md"));
            e.seq = seq;
            // Message 2 was delivered once before, to a session that broke.
            queue.messages.push_back((e, u32::from(seq == 2)));
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut probe = Probe::new(&seen);
        probe.poison = Some(2);
        let status = StatusCell::default();
        let signals = RunnerSignals::default();
        let settings = RunnerSettings {
            batch_size: 1,
            ..settings()
        };
        let stop = signals.stop.clone();
        let waiter = async {
            wait_for("messages settled", || {
                seen.lock().expect("lock").len() == 2
                    && status.lock().expect("lock").dead_letters == 1
            })
            .await;
            stop.cancel();
        };
        let (ran, ()) = tokio::join!(
            drive(
                &mut probe,
                &mut queue,
                settings,
                signals.clone(),
                status.clone()
            ),
            waiter
        );
        ran.expect("runner");
        // One failure here plus the earlier delivery: given back once, then given up on at 3.
        assert_eq!(queue.requeued, 1);
        assert_eq!(queue.dead.len(), 1);
        assert_eq!((queue.dead[0].0, queue.dead[0].1), (2, 3));
        assert!(queue.dead[0].2.contains("q2.md"), "{}", queue.dead[0].2);
        assert_eq!(queue.acked, vec![1, 3]);
        assert_eq!(*seen.lock().expect("lock"), vec![1, 3]);
    }

    /// Holds every event and fails it at its deadline, like a debounced rule.
    struct FailsLater {
        held: Option<u64>,
        gave_up: Arc<Mutex<Vec<u64>>>,
    }

    impl Consumer for FailsLater {
        fn name(&self) -> &str {
            "later"
        }

        async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
            self.held = batch.last().map(|e| e.seq);
            Ok(Durable::Unchanged)
        }

        fn deadline(&self) -> Option<Instant> {
            self.held.map(|_| Instant::now())
        }

        async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
            match self.held {
                Some(seq) => Err(ConsumerError::event(seq, format!("run for {seq} failed"))),
                None => Ok(Durable::Unchanged),
            }
        }

        fn gave_up(&mut self, seq: u64) -> Durable {
            self.gave_up.lock().expect("lock").push(seq);
            self.held = None;
            Durable::Upto(seq)
        }
    }

    #[tokio::test]
    async fn a_failure_outside_a_batch_is_counted_and_dead_lettered_by_the_runner() {
        let mut rig = rig();
        let head = append(&mut rig.journal, 1);
        let gave_up = Arc::new(Mutex::new(Vec::new()));
        let consumer = FailsLater {
            held: None,
            gave_up: Arc::clone(&gave_up),
        };
        let signals = RunnerSignals::default();
        let status = StatusCell::default();
        let task = tokio::spawn(run(
            consumer,
            rig.path.clone(),
            rig.head.subscribe(),
            settings(),
            signals.clone(),
            status.clone(),
        ));
        rig.head.send_replace(head);
        wait_for("cursor past the failed event", || {
            rig.journal.cursor("later").expect("cursor") == Some(1)
        })
        .await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        let dead = rig.journal.dead_letters().expect("dl");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].seq, dead[0].attempts), (1, 3));
        assert!(dead[0].reason.contains("run for 1"), "{}", dead[0].reason);
        assert_eq!(*gave_up.lock().expect("lock"), vec![1]);
        assert_eq!(status.lock().expect("lock").dead_letters, 1);
    }
}
