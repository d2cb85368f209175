//! vaultkeeper-watch: the watcher. Kernel notifications are only hints; each debounced
//! flush compares the hinted paths with the snapshot and journals what really changed.
//! Start-up, overflow and polling run the same comparison over the whole vault.
//!
//! A tour, one concern per module:
//!
//! - [`Watcher`] (here): the thread and its loop, listing and reconciling,
//! - [`control`]: the daemon's non-blocking handle (rescan, reload),
//! - `pending`: dirty paths, the debounce window and the retry backoff,
//! - [`fswatch`]: the notify watches, one per folder,
//! - [`reconcile`]: snapshot against disk, renames paired by inode,
//! - [`settle`]: temp-looking files held back until they settle,
//! - `events`: a change turned into an event through vaultfs's one reader,
//! - `polling`: rescans on a timer; `unlistable`: folders retried until they list,
//! - `progress`: the first scan's spinner; `warned`: warnings logged once,
//! - [`error`], the watcher's [`WatcherError`].
//!
//! Listing and reading go through `vaultkeeper-vaultfs`; events land in
//! `vaultkeeper-journal`. The watcher depends on nothing else (see the boundary test).

pub mod control;
pub mod error;
mod events;
pub mod fswatch;
mod pending;
mod polling;
mod progress;
mod queue;
pub mod reconcile;
pub mod settle;
mod unlistable;
mod warned;

pub use control::Control;
pub use error::{Result, WatcherError};

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use self::control::Requests;
use self::events::{Built, EventSource};
use self::fswatch::{FsWatch, WatchError};
use self::pending::Pending;
use self::polling::Polling;
use self::progress::ScanProgress;
use self::reconcile::Diff;
use self::unlistable::Unlistable;
use self::warned::Warned;
use vaultkeeper_core::event::Origin;
use vaultkeeper_journal::{FileState, Journal, SnapshotChange};
use vaultkeeper_vaultfs::WatchConfig;
use vaultkeeper_vaultfs::ignore::IgnoreRules;
use vaultkeeper_vaultfs::paths::VaultPaths;
use vaultkeeper_vaultfs::scan;
use vaultkeeper_vaultfs::scan::{Found, Probe};

/// Events journaled per transaction when a scan finds many changes.
const CHUNK: usize = 1000;

/// The fewest new paths that make the snapshot's tree worth building again: below it the
/// half-empty nodes cost less than a few hundred KiB.
const PACK_MIN: usize = 4096;

/// A message to the watcher thread.
pub enum Msg {
    /// A notification from the kernel.
    Fs(notify::Result<notify::Event>),
    /// Compare the whole vault with the snapshot now.
    Rescan(&'static str),
    /// New settings (SIGHUP) wait in the control's slot: rebuild the ignore rules and rescan.
    Reload,
    /// Journal what is pending and stop.
    Stop,
}

/// The running watcher thread.
pub struct Watcher {
    tx: queue::Sender,
    requests: Arc<Requests>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching. The first full reconcile runs on the watcher's thread; `ready`
    /// fires when it is journaled. Every append publishes the new head on `head`.
    pub fn spawn(
        paths: &VaultPaths,
        cfg: WatchConfig,
        host: String,
        head: tokio::sync::watch::Sender<u64>,
        ready: tokio::sync::oneshot::Sender<Result<()>>,
    ) -> Result<Watcher> {
        let mut journal = Journal::open(&paths.journal())?;
        // The watcher is the one appender: its appends never wait for a checkpoint.
        if let Err(e) =
            journal.checkpoint_in_background(vaultkeeper_journal::CHECKPOINT_EVERY_BYTES)
        {
            tracing::warn!(error = %e, "journal: checkpoints stay in the appends");
        }
        let snapshot = journal.load_files()?;
        let (tx, rx) = queue::bounded(cfg.queue);
        let state_rel = paths.state_dir_in_vault();
        let (rules, warnings) = IgnoreRules::for_vault(paths, &cfg);
        for w in warnings {
            warn!("{}", w.0);
        }
        let requests = Arc::new(Requests::default());
        let mut state = WatchState {
            root: paths.root.clone(),
            source: EventSource {
                vault: paths.name.clone(),
                host,
            },
            state_rel,
            cfg,
            rules: Arc::new(rules),
            journal,
            snapshot: Arc::new(snapshot),
            grown: 0,
            fs: None,
            polling: Polling::default(),
            pending: Pending::new(),
            warned: Warned::default(),
            head,
            overflow: Arc::new(AtomicBool::new(false)),
            requests: Arc::clone(&requests),
            unlistable: Unlistable::default(),
            held: settle::Held::default(),
        };
        let tx_notify = tx.clone();
        let thread = std::thread::Builder::new()
            .name("vaultkeeper-watch".into())
            .spawn(move || state.run(rx, tx_notify, ready))
            .map_err(WatcherError::Thread)?;
        Ok(Watcher {
            tx,
            requests,
            thread: Some(thread),
        })
    }

    /// True while the watcher thread runs.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// A handle for rescans and reloads.
    pub fn control(&self) -> Control {
        Control::new(self.tx.clone(), Arc::clone(&self.requests))
    }

    /// Journals pending changes and stops; blocks until the thread has finished.
    pub fn stop(mut self) {
        let _ = self.tx.send_past_bound(Msg::Stop);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            error!("the watcher thread panicked");
        }
    }
}

/// The watcher thread's state; each concern lives in its own type (see the module tour).
struct WatchState {
    root: PathBuf,
    /// The state folder relative to the vault, when inside it (ignored).
    state_rel: Option<String>,
    cfg: WatchConfig,
    rules: Arc<IgnoreRules>,
    journal: Journal,
    snapshot: Arc<BTreeMap<String, FileState>>,
    /// Paths added to `snapshot` since its nodes were last packed (see [`Self::pack_snapshot`]).
    grown: usize,
    /// Who events are from.
    source: EventSource,
    /// The notify watches; `None` when polling only.
    fs: Option<FsWatch>,
    /// Full rescans on a timer: configured, or the fallback when watching failed.
    polling: Polling,
    /// What waits for the next flush, and when it is due.
    pending: Pending,
    warned: Warned,
    head: tokio::sync::watch::Sender<u64>,
    /// Set by notify's thread when our queue was full.
    overflow: Arc<AtomicBool>,
    /// Rescans and reloads the daemon left while our queue was full.
    requests: Arc<Requests>,
    /// Folders that could not be listed, retried every `poll_interval`.
    unlistable: Unlistable,
    /// New temp-looking files waiting out `temp_settle`.
    held: settle::Held,
}

/// What listing folders found.
#[derive(Default)]
struct Listing {
    /// Every regular file listed, probed against the snapshot.
    files: Vec<(String, Probe)>,
    /// Snapshot paths under a completely listed (or vanished) folder that are not there.
    gone: Vec<String>,
}

impl WatchState {
    fn run(
        &mut self,
        rx: queue::Receiver,
        tx: queue::Sender,
        ready: tokio::sync::oneshot::Sender<Result<()>>,
    ) {
        if self.cfg.poll {
            self.start_polling("configured with watch.poll = true");
        } else {
            match FsWatch::new(tx, Arc::clone(&self.overflow)) {
                Ok(fs) => self.fs = Some(fs),
                Err(e) => {
                    warn!("cannot start file notifications ({e}); polling instead");
                    self.start_polling("notifications unavailable");
                }
            }
        }
        // Watches are placed during the first scan, so what changes during it is seen.
        let first = self.snapshot.is_empty();
        let result = self.full_scan(
            if first { "first scan" } else { "start-up" },
            Origin::Rescan,
        );
        let failed = result.is_err();
        let _ = ready.send(result);
        if failed {
            return;
        }
        // The first scan's listing and the events it built are freed by now.
        vaultkeeper_core::memory::release_freed();
        info!(
            files = self.snapshot.len(),
            folders = self.fs.as_ref().map_or(0, FsWatch::len),
            polling = self.polling.is_on(),
            "watching {}",
            self.root.display()
        );
        loop {
            let timeout = self.next_wakeup().saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(Msg::Fs(Ok(event))) => self.note(event),
                Ok(Msg::Fs(Err(e))) => self.notify_error(e),
                Ok(Msg::Rescan(reason)) => self.want_full(reason),
                Ok(Msg::Reload) => {
                    if let Some(cfg) = self.requests.take_config() {
                        self.reload(cfg);
                    }
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.flush_now();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.overflow.swap(false, Ordering::SeqCst) {
                warn!("event queue overflowed; rescanning the vault so nothing is missed");
                self.want_full("event queue overflow");
            }
            // Left by the control while the queue was full.
            if let Some(cfg) = self.requests.take_config() {
                self.reload(cfg);
            }
            if self.requests.take_rescan() {
                self.want_full("rescan requested");
            }
            let now = Instant::now();
            if self.unlistable.is_due(now) {
                self.relist_unlistable();
            }
            let settled = self.held.take_due(self.cfg.temp_settle, now);
            if !settled.is_empty() {
                self.pending.mark_all(settled);
            }
            if self.polling.tick(now, self.cfg.poll_interval) {
                self.pending.want_full_quiet();
            }
            if self
                .pending
                .is_due(now, self.cfg.debounce, self.cfg.max_latency)
            {
                self.flush_now();
            }
        }
    }

    fn start_polling(&mut self, why: &str) {
        self.polling.start(why, self.cfg.poll_interval);
    }

    fn next_wakeup(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut t = far;
        if let Some(due) = self.pending.due_at(self.cfg.debounce, self.cfg.max_latency) {
            t = t.min(due);
        }
        if let Some(p) = self.polling.next() {
            t = t.min(p);
        }
        if let Some(r) = self.unlistable.next() {
            t = t.min(r);
        }
        if let Some(h) = self.held.next_due(self.cfg.temp_settle) {
            t = t.min(h);
        }
        t
    }

    fn want_full(&mut self, reason: &'static str) {
        self.pending.want_full(reason);
    }

    fn warn_once(&mut self, message: String) {
        self.warned.warn_once(message);
    }

    fn reload(&mut self, cfg: WatchConfig) {
        if cfg.poll && !self.polling.is_on() {
            self.start_polling("configured with watch.poll = true");
        }
        self.cfg = cfg;
        self.rebuild_rules();
        self.want_full("configuration reloaded");
    }

    fn rebuild_rules(&mut self) {
        let (rules, warnings) = IgnoreRules::new(
            &self.root,
            self.state_rel.as_deref(),
            &self.cfg.ignore,
            self.cfg.gitignore,
        );
        for w in warnings {
            self.warn_once(w.0);
        }
        self.rules = Arc::new(rules);
    }

    fn notify_error(&mut self, e: notify::Error) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            self.watch_limit();
        } else {
            warn!("file notification error ({e}); rescanning");
            self.want_full("notification error");
        }
    }

    fn watch_limit(&mut self) {
        self.warn_once(
            "the inotify watch limit is reached: raise it with \
             `sudo sysctl fs.inotify.max_user_watches=524288` (and persist it in /etc/sysctl.d); \
             until then the vault is also polled"
                .to_string(),
        );
        self.start_polling("inotify watch limit reached");
    }

    fn note(&mut self, event: notify::Event) {
        use notify::EventKind;
        if event.need_rescan() {
            warn!("the kernel dropped file events; rescanning the vault");
            self.want_full("kernel queue overflow");
            return;
        }
        if matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Open(_))
                | EventKind::Access(notify::event::AccessKind::Read)
                | EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Read
                ))
        ) {
            return;
        }
        for path in event.paths {
            let Some(rel) = scan::relative(&self.root, &path) else {
                if path.starts_with(&self.root) {
                    self.warn_once(format!(
                        "{}: name is not valid UTF-8, skipped",
                        path.display()
                    ));
                }
                continue;
            };
            if rel.is_empty() {
                continue;
            }
            if IgnoreRules::is_rule_file(&rel) {
                self.rebuild_rules();
                self.pending.want_full_keep_reason(".gitignore changed");
            }
            if self.rules.is_ignored(&rel, false) {
                continue;
            }
            tracing::trace!(path = %rel, "change noted");
            self.pending.mark(rel);
        }
    }

    fn flush_now(&mut self) {
        let (dirty, full) = self.pending.take();
        let result = match full {
            Some(reason) => {
                if reason != "poll" {
                    info!("rescanning the vault ({reason})");
                }
                self.full_scan(reason, Origin::Rescan)
            }
            None => self.incremental(dirty),
        };
        match result {
            Ok(()) => {
                self.pending.succeeded();
                self.held.forget_queued();
            }
            Err(e) => {
                // The snapshot is unchanged, so a full rescan later finds every change again.
                let delay = self.pending.failed();
                error!("cannot journal changes, retrying in {delay:?}: {e}");
            }
        }
    }

    fn add_watch(&mut self, rel: &str) {
        let abs = self.root.join(rel);
        let ino = std::fs::symlink_metadata(&abs)
            .map(|m| scan::quick_state(&m).ino)
            .unwrap_or(0);
        let Some(fs) = self.fs.as_mut() else { return };
        match fs.add(&self.root, rel, ino) {
            Ok(()) => {}
            Err(WatchError::Limit) => self.watch_limit(),
            Err(WatchError::Other(m)) => debug!("cannot watch {m}"),
        }
    }

    fn incremental(&mut self, dirty: BTreeSet<String>) -> Result<()> {
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        let mut dirs: Vec<String> = Vec::new();
        for rel in dirty {
            match std::fs::symlink_metadata(self.root.join(&rel)) {
                Ok(meta) if meta.is_dir() => {
                    let ino = scan::quick_state(&meta).ino;
                    let current = self.fs.as_ref().is_some_and(|fs| fs.is_current(&rel, ino));
                    if !current {
                        dirs.push(rel);
                    }
                }
                Ok(_) => {
                    candidates.insert(rel);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // A vanished folder takes its files and its (now stale) watches along.
                    let prefix = format!("{rel}/");
                    candidates.extend(
                        self.snapshot
                            .range(prefix.clone()..)
                            .take_while(|(k, _)| k.starts_with(&prefix))
                            .map(|(k, _)| k.clone()),
                    );
                    if let Some(fs) = self.fs.as_mut() {
                        fs.remove_under(&self.root, &rel);
                    }
                    candidates.insert(rel);
                }
                Err(e) => self.warn_once(format!("{}: {e}", self.root.join(&rel).display())),
            }
        }
        let mut present = Vec::new();
        for dir in &dirs {
            if let Some(fs) = self.fs.as_mut() {
                fs.remove_under(&self.root, dir);
            }
        }
        let listing = self.watch_and_list(dirs);
        let mut gone: BTreeSet<String> = listing.gone.into_iter().collect();
        for (rel, _) in &listing.files {
            candidates.remove(rel);
        }
        present.extend(self.present_of(listing.files));
        for rel in candidates {
            if self.rules.is_ignored(&rel, false) {
                if self.snapshot.contains_key(&rel) {
                    gone.insert(rel);
                }
                continue;
            }
            match scan::probe(&self.root, &rel, self.snapshot.get(&rel)) {
                Probe::Present(s) => present.push((rel, s)),
                Probe::Gone => {
                    if self.snapshot.contains_key(&rel) {
                        gone.insert(rel.clone());
                    }
                    let abs = self.root.join(&rel);
                    if abs.is_symlink() {
                        self.warn_once(format!("{}: symbolic link, not followed", abs.display()));
                    }
                }
                Probe::Unchanged => {
                    // Back after a listing missed it: not gone after all.
                    gone.remove(&rel);
                }
                Probe::Unreadable(m) => {
                    gone.remove(&rel);
                    self.warn_once(m);
                }
            }
        }
        self.reconcile(present, gone.into_iter().collect(), Origin::Watch)
            .map(|_| ())
    }

    /// The files of a listing that changed against the snapshot; unreadable ones are
    /// logged once.
    fn present_of(&mut self, files: Vec<(String, Probe)>) -> Vec<(String, FileState)> {
        let mut present = Vec::new();
        for (rel, probe) in files {
            match probe {
                Probe::Present(s) => present.push((rel, s)),
                Probe::Unreadable(m) => self.warn_once(m),
                Probe::Unchanged | Probe::Gone => {}
            }
        }
        present
    }

    /// Journals what a listing found changed or gone.
    fn reconcile_listing(&mut self, listing: Listing, origin: Origin) -> Result<usize> {
        let present = self.present_of(listing.files);
        if present.is_empty() && listing.gone.is_empty() {
            return Ok(0);
        }
        self.reconcile(present, listing.gone, origin)
    }

    /// Holds back settling temp files, compares with the snapshot and journals the
    /// difference; returns how many changes it journaled.
    fn reconcile(
        &mut self,
        present: Vec<(String, FileState)>,
        mut gone: Vec<String>,
        origin: Origin,
    ) -> Result<usize> {
        // What is there now wins over an earlier listing that missed it.
        let here: HashSet<&str> = present.iter().map(|(p, _)| p.as_str()).collect();
        gone.retain(|g| !here.contains(g.as_str()));
        drop(here);
        let present = self.held.filter(
            &self.snapshot,
            present,
            &mut gone,
            self.cfg.temp_settle,
            Instant::now(),
        );
        let diff = reconcile::diff(&self.snapshot, present, gone);
        let n = diff.changes.len();
        self.apply(diff, origin)?;
        Ok(n)
    }

    /// Remembers a folder that cannot be listed, logs it once with the reason, and
    /// schedules another try.
    fn mark_unlistable(&mut self, dir: &str, reason: String) {
        self.warn_once(format!(
            "{reason}; cannot list this folder, its files are kept as they were and it is \
             retried every {:?}",
            self.cfg.poll_interval
        ));
        self.unlistable.mark(dir, reason, self.cfg.poll_interval);
    }

    /// Lists the folders that could not be listed before, and reconciles what they hold.
    fn relist_unlistable(&mut self) {
        let dirs = self.unlistable.take_due();
        let listing = self.watch_and_list(dirs);
        match self.reconcile_listing(listing, Origin::Rescan) {
            Ok(n) if n > 0 => info!(
                changes = n,
                "folders that could not be listed are reconciled"
            ),
            Ok(_) => {}
            Err(e) => {
                error!("cannot journal changes, rescanning: {e}");
                self.want_full("retry after a failed flush");
            }
        }
    }

    /// The snapshot paths under a folder (`""`: all).
    fn snapshot_under(&self, dir: &str) -> Vec<String> {
        if dir.is_empty() {
            return self.snapshot.keys().cloned().collect();
        }
        let prefix = format!("{dir}/");
        self.snapshot
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Watches each folder FIRST and lists it after, folder by folder down the tree, so a
    /// file created in a new folder is either listed here or reported by the new watch:
    /// there is no window in which it can be missed. For the same reason, a snapshot path
    /// that a complete listing does not find is gone (it went before the watch was there),
    /// while a folder that cannot be listed keeps its snapshot.
    fn watch_and_list(&mut self, mut queue: Vec<String>) -> Listing {
        let mut out = Listing::default();
        let mut done: HashSet<String> = HashSet::new();
        while let Some(dir) = queue.pop() {
            if !done.insert(dir.clone()) {
                continue;
            }
            self.add_watch(&dir);
            let abs = if dir.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&dir)
            };
            let entries = match std::fs::read_dir(&abs) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_empty() => {
                    // Gone, and so is everything the snapshot had under it.
                    self.unlistable.gone(&dir);
                    out.gone.extend(self.snapshot_under(&dir));
                    continue;
                }
                Err(e) => {
                    self.mark_unlistable(&dir, format!("{}: {e}", abs.display()));
                    continue;
                }
            };
            let mut complete = true;
            // What the listing saw, so that the rest of the snapshot under `dir` is gone.
            let mut seen: HashSet<String> = HashSet::new();
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        complete = false;
                        self.mark_unlistable(&dir, format!("{}: {e}", abs.display()));
                        continue;
                    }
                };
                let path = entry.path();
                let Some(rel) = scan::relative(&self.root, &path) else {
                    self.warn_once(format!(
                        "{}: name is not valid UTF-8, skipped",
                        path.display()
                    ));
                    continue;
                };
                let Ok(ft) = entry.file_type() else {
                    // Unknown: whatever the snapshot has there stays.
                    seen.insert(rel);
                    continue;
                };
                if self.rules.is_ignored(&rel, ft.is_dir()) {
                    continue;
                }
                if ft.is_dir() {
                    let ino = entry
                        .metadata()
                        .map(|m| scan::quick_state(&m).ino)
                        .unwrap_or(0);
                    seen.insert(rel.clone());
                    if !self.fs.as_ref().is_some_and(|fs| fs.is_current(&rel, ino)) {
                        queue.push(rel);
                    }
                } else if ft.is_symlink() {
                    self.warn_once(format!("{}: symbolic link, not followed", path.display()));
                } else if ft.is_file() {
                    let probe = scan::probe(&self.root, &rel, self.snapshot.get(&rel));
                    if !matches!(probe, Probe::Gone) {
                        seen.insert(rel.clone());
                    }
                    out.files.push((rel, probe));
                }
            }
            if !complete {
                continue;
            }
            self.unlistable.listed(&dir);
            let base = if dir.is_empty() { 0 } else { dir.len() + 1 };
            for key in self.snapshot_under(&dir) {
                // The file itself, or the child folder it lies in, must have been listed.
                let child = match key[base..].find('/') {
                    Some(i) => &key[..base + i],
                    None => key.as_str(),
                };
                if !seen.contains(child) {
                    out.gone.push(key);
                }
            }
        }
        out
    }

    fn full_scan(&mut self, reason: &str, origin: Origin) -> Result<()> {
        let started = Instant::now();
        let first = self.snapshot.is_empty();
        debug!("scanning the vault ({reason})");
        let progress = ScanProgress::start(first);
        let rules = Arc::clone(&self.rules);
        let snapshot = Arc::clone(&self.snapshot);
        let mut seen: HashSet<String> = HashSet::with_capacity(snapshot.len());
        let mut present = Vec::new();
        let mut dirs = Vec::new();
        let mut skipped = Vec::new();
        let mut new_dirs = Vec::new();
        let mut unlistable: Vec<(String, String)> = Vec::new();
        // A first scan has nothing to pair new files with (no file went): each file is read
        // once, when its event is built, instead of also being hashed here.
        scan::walk(&self.root, "", &rules, &snapshot, !first, |f| match f {
            Found::File(rel, probe) => {
                progress.file();
                // Only paths the snapshot holds can be found gone below: a file new to it
                // (every file of a first scan, 100,000 paths on a large vault) is not kept.
                let known = snapshot.contains_key(&rel);
                match probe {
                    Probe::Present(s) => {
                        if known {
                            seen.insert(rel.clone());
                        }
                        present.push((rel, s));
                    }
                    Probe::Unchanged if known => {
                        seen.insert(rel);
                    }
                    Probe::Unreadable(m) => {
                        // Kept as it was: an unreadable file is not a deleted one.
                        if known {
                            seen.insert(rel);
                        }
                        skipped.push(m);
                    }
                    Probe::Unchanged | Probe::Gone => {}
                }
            }
            Found::Dir(d) => dirs.push(d),
            Found::Skipped(m) => skipped.push(m),
            Found::Unlistable(dir, m) => unlistable.push((dir, m)),
        });
        for m in skipped {
            self.warn_once(m);
        }
        // This walk is the whole truth about which folders can be listed now.
        self.unlistable.clear();
        for (dir, m) in &unlistable {
            self.mark_unlistable(dir, m.clone());
        }
        if self.fs.is_some() {
            let existing: BTreeSet<&String> = dirs.iter().collect();
            let stale: Vec<String> = self
                .fs
                .as_ref()
                .map(|fs| {
                    fs.folders()
                        .filter(|d| !existing.contains(d))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for d in stale {
                if let Some(fs) = self.fs.as_mut() {
                    fs.remove_under(&self.root, &d);
                }
            }
            for d in &dirs {
                let ino = std::fs::symlink_metadata(self.root.join(d))
                    .map(|m| scan::quick_state(&m).ino)
                    .unwrap_or(0);
                if !self.fs.as_ref().is_some_and(|fs| fs.is_current(d, ino)) {
                    new_dirs.push(d.clone());
                }
            }
        }
        // Not seen is deleted, unless it lies in a folder that could not be listed.
        let gone: Vec<String> = snapshot
            .keys()
            .filter(|k| !seen.contains(*k))
            .filter(|k| !unlistable.iter().any(|(d, _)| scan::is_under(k, d)))
            .cloned()
            .collect();
        drop(snapshot);
        progress.journaling(present.len() + gone.len());
        let mut n = self.reconcile(present, gone, origin)?;
        progress.finish();
        // Folders are watched after the parallel walk listed them: list each newly watched
        // folder once more (stat only for what is unchanged) to close that window, both
        // for what appeared or changed and for what went away meanwhile.
        let listing = self.watch_and_list(new_dirs);
        n += self.reconcile_listing(listing, origin)?;
        if n > 0 || reason != "poll" {
            debug!(
                changes = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{reason} done"
            );
        }
        Ok(())
    }

    fn apply(&mut self, diff: Diff, origin: Origin) -> Result<()> {
        let Diff { changes, silent } = diff;
        if !silent.is_empty() {
            let changes: Vec<SnapshotChange> = silent
                .iter()
                .map(|(p, s)| SnapshotChange::Put(p.clone(), s.clone()))
                .collect();
            self.journal.append(&mut [], &changes)?;
            let snap = Arc::make_mut(&mut self.snapshot);
            for (p, s) in silent {
                self.grown += usize::from(snap.insert(p, s).is_none());
            }
        }
        for chunk in changes.chunks(CHUNK) {
            let mut built = Built::default();
            for change in chunk {
                self.source.build(
                    &self.root,
                    self.cfg.max_content_bytes,
                    change,
                    origin,
                    &mut built,
                );
                if let Some(w) = built.warning.take() {
                    self.warned.warn_once(w);
                }
            }
            let Built {
                mut events,
                snapshot: snap_changes,
                ..
            } = built;
            if events.is_empty() && snap_changes.is_empty() {
                continue;
            }
            let head = self.journal.append(&mut events, &snap_changes)?;
            let snap = Arc::make_mut(&mut self.snapshot);
            for c in snap_changes {
                match c {
                    SnapshotChange::Put(p, s) => {
                        self.grown += usize::from(snap.insert(p, s).is_none());
                    }
                    SnapshotChange::Remove(p) => {
                        snap.remove(&p);
                    }
                }
            }
            for e in &events {
                debug!(seq = e.seq, kind = e.event.as_str(), path = %e.file_path, "event");
            }
            self.head.send_replace(head);
        }
        // Journaled: freed before the snapshot is packed, or both would make the peak.
        drop(changes);
        self.pack_snapshot();
        Ok(())
    }

    /// Builds the snapshot's tree again, full, once it has grown by half since it was last
    /// built. A `BTreeMap` filled one insert at a time in key order (every path of a first
    /// scan) splits each full node in two and never refills the left half, so its nodes
    /// stay about half full: 17 MB of nodes for 102,000 files, against 9 MB when built from
    /// sorted entries at once (heaptrack, live heap of a settled daemon).
    fn pack_snapshot(&mut self) {
        if self.grown < PACK_MIN.max(self.snapshot.len() / 2) {
            return;
        }
        self.grown = 0;
        let snap = Arc::make_mut(&mut self.snapshot);
        *snap = std::mem::take(snap).into_iter().collect();
    }
}

/// Makes a path relative to the vault for display.
pub fn display_rel(root: &Path, p: &Path) -> String {
    scan::relative(root, p).unwrap_or_else(|| p.display().to_string())
}
