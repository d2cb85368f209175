//! The rules consumer: runs the user's `[[rule]]` commands for matching events on the one runner.
//!
//! Delivery is at least once. The runner's cursor for `rules` moves only after every
//! command for the events below it succeeded (or was dead-lettered), so after a crash or
//! `kill -9` the commands for events above the cursor run again: commands should be
//! idempotent (`VAULTKEEPER_EVENT_ID` is unique per event and can be used to dedupe).
//! A failed run is retried with the runner's backoff; commands that already succeeded
//! for the same batch are not re-run in the meantime (remembered in memory only).
//!
//! Commands that write into the vault produce events of their own; give such rules a
//! `glob` that excludes their output, or they will trigger themselves.

pub mod config;
pub mod exec;
pub mod supervise;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, watch};
use tracing::{error, info, warn};

pub use config::{Rule, RuleConfig, RuleError, RuleSet, RulesSection};

use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable, StartAt};
use vaultkeeper_core::event::Event;

/// The consumer's name: its cursor key, its dead letters and its `status` entry.
pub const NAME: &str = vaultkeeper_core::status::ConsumerKind::Rules.as_str();

/// Where a [`RulesConsumer`] gets its rules: the `[[rule]]` list and the `[rules]`
/// section of whatever configuration the binary loads, followed on every reload.
pub trait RulesSource: Send + Sync + 'static {
    /// The `[[rule]]` entries.
    fn rule_list(&self) -> &[RuleConfig];
    /// The `[rules]` section.
    fn section(&self) -> &RulesSection;
}

/// The rules on their own, as a `[[rule]]`/`[rules]` TOML document gives them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RulesInput {
    /// `[[rule]]`.
    pub rule: Vec<RuleConfig>,
    /// `[rules]`.
    pub rules: RulesSection,
}

impl RulesSource for RulesInput {
    fn rule_list(&self) -> &[RuleConfig] {
        &self.rule
    }
    fn section(&self) -> &RulesSection {
        &self.rules
    }
}

/// One debounced run waiting for its quiet period to end.
#[derive(Debug)]
struct Pending {
    /// The latest event for this rule and path; the run sees this one.
    event: Event,
    /// The earliest event it stands for: the cursor may not pass it until the run succeeds.
    first_seq: u64,
    due: Instant,
}

/// Runs rules for journal events. Build it with [`RulesConsumer::new`] and hand it to
/// [`vaultkeeper_runner::run`].
pub struct RulesConsumer<S: RulesSource> {
    vault: PathBuf,
    config: watch::Receiver<Arc<S>>,
    /// What `set` was compiled from, to notice real changes on reload.
    source: (Vec<RuleConfig>, RulesSection),
    set: Arc<RuleSet>,
    permits: Arc<Semaphore>,
    /// `(seq, rule)` runs that succeeded while another run of the same batch failed:
    /// the runner hands the batch over again and these are not repeated.
    done: HashSet<(u64, String)>,
    /// Debounced runs keyed by `(rule, path)`.
    pending: BTreeMap<(String, String), Pending>,
    /// Highest seq handed over successfully.
    seen: u64,
    runs: u64,
    failures: u64,
    /// Set on a journal that was empty when the daemon started: the first scan's events are
    /// the vault's inventory, not changes, and run nothing. Holds the head at READY once known.
    inventory: Option<Arc<std::sync::OnceLock<u64>>>,
}

/// What running some commands came to.
#[derive(Default)]
struct Outcome {
    succeeded: Vec<(u64, String)>,
    /// The lowest-seq failure, which the runner is told about.
    failed: Option<(u64, String)>,
}

impl<S: RulesSource> RulesConsumer<S> {
    /// A consumer for the vault at `vault`, whose rules come from `config` and follow
    /// every configuration sent on it (SIGHUP). A debounced run that fails is reported to
    /// the runner from [`Consumer::on_deadline`], which counts it and dead-letters it.
    pub fn new(
        vault: PathBuf,
        mut config: watch::Receiver<Arc<S>>,
    ) -> Result<RulesConsumer<S>, RuleError> {
        let current = Arc::clone(&config.borrow_and_update());
        let set = RuleSet::compile(current.rule_list(), current.section(), &vault)?;
        Ok(RulesConsumer {
            permits: Arc::new(Semaphore::new(set.concurrency)),
            vault,
            config,
            source: (current.rule_list().to_vec(), current.section().clone()),
            set: Arc::new(set),
            done: HashSet::new(),
            pending: BTreeMap::new(),
            seen: 0,
            runs: 0,
            failures: 0,
            inventory: None,
        })
    }

    /// Skips the start-up scan's events up to the head `end` is set to at READY (and all of
    /// them while it is unset): used when the journal was empty, so that a first start on a
    /// vault of 10,000 notes does not run a `created` rule 10,000 times.
    pub fn skipping_inventory(mut self, end: Arc<std::sync::OnceLock<u64>>) -> Self {
        self.inventory = Some(end);
        self
    }

    fn is_inventory(&self, e: &Event) -> bool {
        self.inventory.as_ref().is_some_and(|end| {
            e.origin == vaultkeeper_core::event::Origin::Rescan
                && end.get().is_none_or(|h| e.seq <= *h)
        })
    }

    /// The rules in force now.
    pub fn rules(&self) -> &[Rule] {
        &self.set.rules
    }

    /// Picks up a configuration sent since the last call. Runs in progress are never
    /// affected: this is called between batches.
    fn refresh(&mut self) {
        if !self.config.has_changed().unwrap_or(false) {
            return;
        }
        let current = Arc::clone(&self.config.borrow_and_update());
        if (current.rule_list(), current.section()) == (self.source.0.as_slice(), &self.source.1) {
            return;
        }
        match RuleSet::compile(current.rule_list(), current.section(), &self.vault) {
            Ok(set) => {
                info!(rules = set.rules.len(), "rules reloaded");
                if set.concurrency != self.set.concurrency {
                    self.permits = Arc::new(Semaphore::new(set.concurrency));
                }
                self.set = Arc::new(set);
                self.source = (current.rule_list().to_vec(), current.section().clone());
                // Held runs of rules that no longer exist are dropped with them.
                let names: HashSet<&str> = self.set.rules.iter().map(|r| r.name.as_str()).collect();
                self.pending
                    .retain(|(rule, _), _| names.contains(rule.as_str()));
            }
            Err(e) => error!("rules not reloaded, keeping the current ones: {e}"),
        }
    }

    /// The cursor may move up to `upto`, but not past a held debounced event.
    fn durable(&self, upto: u64) -> Durable {
        match self.pending.values().map(|p| p.first_seq).min() {
            Some(first) => Durable::Upto(upto.min(first.saturating_sub(1))),
            None => Durable::Upto(upto),
        }
    }

    /// Runs `jobs` (event, rule) — in order within one path, paths in parallel up to the
    /// concurrency limit — skipping those already done; a path stops at its first failure
    /// so that its later events never run before an earlier one.
    async fn run_jobs(&self, jobs: Vec<(&Event, &Rule)>) -> Outcome {
        let mut by_path: BTreeMap<&str, Vec<(&Event, &Rule)>> = BTreeMap::new();
        for (e, r) in jobs {
            if !self.done.contains(&(e.seq, r.name.clone())) {
                by_path
                    .entry(e.file_path.as_str())
                    .or_default()
                    .push((e, r));
            }
        }
        let vault = self.vault.as_path();
        let permits = &self.permits;
        let chains = by_path.into_values().map(|chain| async move {
            let mut out = Outcome::default();
            for (event, rule) in chain {
                let Ok(_permit) = permits.acquire().await else {
                    break;
                };
                let started = Instant::now();
                match exec::run(rule, event, vault).await {
                    Ok(()) => {
                        info!(rule = %rule.name, path = %event.file_path, seq = event.seq,
                            "rule ran in {:?}", started.elapsed());
                        out.succeeded.push((event.seq, rule.name.clone()));
                    }
                    Err(e) => {
                        let reason =
                            format!("rule `{}` on {}: {e}", rule.name, event.file_path);
                        warn!(rule = %rule.name, path = %event.file_path, seq = event.seq, "{reason}");
                        out.failed = Some((event.seq, reason));
                        break;
                    }
                }
            }
            out
        });
        let mut total = Outcome::default();
        for out in futures::future::join_all(chains).await {
            total.succeeded.extend(out.succeeded);
            if let Some((seq, reason)) = out.failed
                && total.failed.as_ref().is_none_or(|(s, _)| seq < *s)
            {
                total.failed = Some((seq, reason));
            }
        }
        total
    }

    /// Runs the held runs that are due (all of them with `all`).
    async fn run_pending(&mut self, all: bool) -> Result<Durable, ConsumerError> {
        self.refresh();
        let now = Instant::now();
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| all || p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return Ok(self.durable(self.seen));
        }
        let set = Arc::clone(&self.set);
        let jobs: Vec<(Event, Rule)> = due
            .iter()
            .filter_map(|key| {
                let p = self.pending.get(key)?;
                let rule = set.rules.iter().find(|r| r.name == key.0)?;
                Some((p.event.clone(), rule.clone()))
            })
            .collect();
        let outcome = self
            .run_jobs(jobs.iter().map(|(e, r)| (e, r)).collect())
            .await;
        self.runs += outcome.succeeded.len() as u64;
        for (seq, rule) in &outcome.succeeded {
            self.pending
                .retain(|(r, _), p| !(r == rule && p.event.seq == *seq));
        }
        let Some((seq, reason)) = outcome.failed else {
            return Ok(self.durable(self.seen));
        };
        self.failures += 1;
        // The run stays held; the runner counts this failure of `seq` and, at its limit,
        // dead-letters the event and calls `gave_up`.
        Err(ConsumerError::event(seq, reason))
    }
}

impl<S: RulesSource> Consumer for RulesConsumer<S> {
    fn name(&self) -> &str {
        NAME
    }

    /// A new rules consumer reacts to what happens from now on, not to the history.
    fn start_at(&self) -> StartAt {
        StartAt::Head
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        self.refresh();
        let set = Arc::clone(&self.set);
        let mut jobs = Vec::new();
        let changes: Vec<&Event> = batch.iter().filter(|e| !self.is_inventory(e)).collect();
        for event in changes {
            for rule in set.rules.iter().filter(|r| r.matches(event)) {
                if rule.debounce.is_zero() {
                    jobs.push((event, rule));
                    continue;
                }
                let due = Instant::now() + rule.debounce;
                let key = (rule.name.clone(), event.file_path.clone());
                let p = self.pending.entry(key).or_insert_with(|| Pending {
                    event: event.clone(),
                    first_seq: event.seq,
                    due,
                });
                if event.seq >= p.event.seq {
                    p.event = event.clone();
                    p.due = due;
                }
                p.first_seq = p.first_seq.min(event.seq);
            }
        }
        let outcome = self.run_jobs(jobs).await;
        self.runs += outcome.succeeded.len() as u64;
        if let Some((seq, reason)) = outcome.failed {
            self.failures += 1;
            self.done.extend(outcome.succeeded);
            return Err(ConsumerError::event(seq, reason));
        }
        // The runner moves past this batch now; nothing of it is handed over again.
        self.done.clear();
        if let Some(last) = batch.last() {
            self.seen = self.seen.max(last.seq);
        }
        Ok(self.durable(self.seen))
    }

    fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
        self.run_pending(false).await
    }

    async fn flush(&mut self) -> Result<Durable, ConsumerError> {
        self.run_pending(true).await
    }

    fn gave_up(&mut self, seq: u64) -> Durable {
        self.pending.retain(|_, p| p.event.seq != seq);
        self.durable(self.seen)
    }

    fn status(&self) -> Option<vaultkeeper_core::status::ConsumerReport> {
        Some(vaultkeeper_core::status::ConsumerReport::Rules(
            vaultkeeper_core::status::RulesReport {
                rules: self.set.rules.len(),
                runs: self.runs,
                failures: self.failures,
                debounced: self.pending.len(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vaultkeeper_journal::Journal;
    use vaultkeeper_runner::{RunnerSettings, RunnerSignals, StatusCell, run};

    fn settings() -> RunnerSettings {
        RunnerSettings {
            batch_size: 7,
            max_attempts: 3,
            retry_min: Duration::from_millis(5),
            retry_max: Duration::from_millis(20),
        }
    }

    fn append(j: &mut Journal, paths: &[&str]) -> u64 {
        let mut batch: Vec<Event> = paths
            .iter()
            .map(|p| vaultkeeper_core::event::sample(p))
            .collect();
        j.append(&mut batch, &[]).expect("append")
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every run appends its path to `out`, then fails for paths starting with `bad`.
    fn config(out: &std::path::Path, debounce: &str) -> RulesInput {
        let script = format!(
            "printf '%s\\n' \"$VAULTKEEPER_PATH\" >> '{}'; case \"$VAULTKEEPER_PATH\" in bad*) exit 1;; esac",
            out.display()
        );
        let text = format!(
            "[[rule]]\nname = \"t\"\ndebounce = \"{debounce}\"\nrun = {}\n",
            serde_json::to_string(&["sh", "-c", &script]).expect("json")
        );
        toml::from_str(&text).expect("config")
    }

    fn lines(p: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    async fn drive(debounce: &str) -> (Vec<String>, Journal) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.db");
        let out = dir.path().join("out");
        let mut journal = Journal::open(&path).expect("open");
        let (head, _) = watch::channel(0);
        let (_config_tx, config_rx) = watch::channel(Arc::new(config(&out, debounce)));
        let consumer = RulesConsumer::new(dir.path().to_path_buf(), config_rx).expect("new");
        let signals = RunnerSignals::default();
        let task = tokio::spawn(run(
            consumer,
            path.clone(),
            head.subscribe(),
            settings(),
            signals.clone(),
            StatusCell::default(),
        ));
        // The rules start at the head: wait for the runner to take its place first.
        wait_for("cursor", || {
            journal.cursor(NAME).expect("cursor") == Some(0)
        })
        .await;
        let last = append(&mut journal, &["a.md", "bad.md", "b.md", "a.md", "c.md"]);
        head.send_replace(last);
        wait_for("cursor past everything", || {
            journal.cursor(NAME).expect("cursor") == Some(last)
        })
        .await;
        signals.stop.cancel();
        task.await.expect("join").expect("runner");
        let mut got = lines(&out);
        got.sort();
        drop(dir);
        (got, journal)
    }

    #[tokio::test]
    async fn a_failure_neither_repeats_nor_blocks_the_others() {
        let (got, journal) = drive("0s").await;
        // bad.md ran max_attempts times; everything else exactly once, despite the
        // runner handing the batch over again after each failure.
        assert_eq!(
            got,
            ["a.md", "a.md", "b.md", "bad.md", "bad.md", "bad.md", "c.md"]
        );
        let dead = journal.dead_letters().expect("dl");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].seq, dead[0].attempts), (2, 3));
        assert!(dead[0].reason.contains("bad.md"), "{}", dead[0].reason);
    }

    #[tokio::test]
    async fn debounced_runs_coalesce_and_failures_are_dead_lettered() {
        let (got, journal) = drive("50ms").await;
        // The two events of a.md made one run.
        assert_eq!(got, ["a.md", "b.md", "bad.md", "bad.md", "bad.md", "c.md"]);
        let dead = journal.dead_letters().expect("dl");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].seq, dead[0].attempts), (2, 3));
    }
}
