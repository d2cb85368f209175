//! The watcher under faults and races: changes during the start-up scan, a `kill -9`
//! while a writer keeps writing, unreadable folders, and slow editor saves.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::util::{BIN, Daemon, TestVault, summary, wait_until};
use vaultkeeper_core::event::Kind;
use vaultkeeper_journal::Journal;

/// The live paths of a journal, folded incrementally so a 20,000-event journal is not
/// re-read on every poll.
struct LiveJournal {
    path: PathBuf,
    after: u64,
    live: BTreeSet<String>,
    /// The hash the last event of each live path carries.
    hashes: BTreeMap<String, Option<String>>,
}

impl LiveJournal {
    fn new(path: PathBuf) -> LiveJournal {
        LiveJournal {
            path,
            after: 0,
            live: BTreeSet::new(),
            hashes: BTreeMap::new(),
        }
    }

    fn refresh(&mut self) -> &BTreeSet<String> {
        let Ok(j) = Journal::open_readonly(&self.path) else {
            return &self.live;
        };
        loop {
            let Ok(batch) = j.read_after(self.after, 5000) else {
                break;
            };
            let Some(last) = batch.last() else { break };
            self.after = last.seq;
            for e in &batch {
                match e.event {
                    Kind::Created | Kind::Modified => {
                        self.live.insert(e.file_path.clone());
                        self.hashes.insert(e.file_path.clone(), e.hash.clone());
                    }
                    Kind::Deleted => {
                        self.live.remove(&e.file_path);
                        self.hashes.remove(&e.file_path);
                    }
                    Kind::Renamed => {
                        if let Some(old) = &e.old_path {
                            self.live.remove(old);
                            self.hashes.remove(old);
                        }
                        self.live.insert(e.file_path.clone());
                        self.hashes.insert(e.file_path.clone(), e.hash.clone());
                    }
                }
            }
        }
        &self.live
    }
}

/// Waits until the journal's live paths equal the files on disk, and each one's last
/// hash its content; on timeout the panic names the paths that differ.
fn wait_journal_matches_disk(v: &TestVault, timeout: Duration) {
    let disk = v.files_on_disk();
    let mut live = LiveJournal::new(v.state_dir().join("journal.db"));
    let deadline = Instant::now() + timeout;
    loop {
        live.refresh();
        let now = &live.live;
        // Paths first; contents once they agree (a last edit may still be in its debounce).
        let wrong: Vec<&String> = if *now == disk {
            disk.iter()
                .filter(|p| {
                    let on_disk = std::fs::read(v.path(p))
                        .map(|c| blake3::hash(&c).to_hex().to_string())
                        .ok();
                    live.hashes.get(*p).cloned().flatten() != on_disk
                })
                .take(10)
                .collect()
        } else {
            Vec::new()
        };
        if *now == disk && wrong.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let stale: Vec<&String> = now.difference(&disk).take(10).collect();
            let missing: Vec<&String> = disk.difference(now).take(10).collect();
            panic!(
                "journal differs from disk after {timeout:?}: {} live in the journal but gone \
                 (e.g. {stale:?}), {} on disk but not live (e.g. {missing:?}), last hash not \
                 the content for {wrong:?}",
                now.difference(&disk).count(),
                disk.difference(now).count()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Deletes and renames generated notes at a steady pace until `stop` is set, or the
/// notes run out. Returns how many it changed.
fn churn(
    root: PathBuf,
    paths: Vec<String>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut changed = 0;
        for (k, rel) in paths.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let abs = root.join(rel);
            let ok = if k % 2 == 0 {
                std::fs::remove_file(&abs).is_ok()
            } else {
                let to = root.join(format!("{rel}-moved.md"));
                std::fs::rename(&abs, to).is_ok()
            };
            changed += usize::from(ok);
            // Pacing the writer, so its changes spread over the whole start-up.
            std::thread::sleep(Duration::from_millis(2));
        }
        changed
    })
}

#[test]
fn deletions_and_renames_during_the_first_scan_are_journaled() {
    let v = TestVault::new(BIN);
    let generated = vaultkeeper_testkit::vaultgen::generate(&v.root, 20_000, 11).expect("generate");
    // Every third note, spread over all folders, is deleted or renamed while the daemon
    // scans, places its watches and becomes ready.
    let victims: Vec<String> = generated.note_paths.iter().step_by(3).cloned().collect();
    let stop = Arc::new(AtomicBool::new(false));
    let d = v.spawn();
    let writer = churn(v.root.clone(), victims, Arc::clone(&stop));
    d.wait_ready();
    // A little past ready too: the moment the watches are complete.
    let until = Instant::now() + Duration::from_millis(500);
    wait_until("half a second past ready", Duration::from_secs(5), || {
        Instant::now() >= until
    });
    stop.store(true, Ordering::SeqCst);
    let changed = writer.join().expect("writer");
    assert!(changed > 50, "the writer changed only {changed} notes");
    wait_journal_matches_disk(&v, Duration::from_secs(90));
    d.stop_within(SLOW_STOP);
}

#[test]
fn kill_9_while_a_writer_keeps_writing_then_the_journal_matches_the_disk() {
    let v = TestVault::new(BIN);
    let generated = vaultkeeper_testkit::vaultgen::generate(&v.root, 10_000, 12).expect("generate");
    let mut d = v.start();
    let stop = Arc::new(AtomicBool::new(false));
    let root = v.root.clone();
    let stop_w = Arc::clone(&stop);
    let notes = generated.note_paths.clone();
    // Creates, edits, renames and deletes, without pause, through the kill and the restart.
    let writer = std::thread::spawn(move || {
        let mut i = 0usize;
        while !stop_w.load(Ordering::SeqCst) && i < notes.len() {
            let rel = &notes[i];
            let abs = root.join(rel);
            let _ = match i % 4 {
                0 => std::fs::remove_file(&abs),
                1 => std::fs::rename(&abs, root.join(format!("{rel}-moved.md"))),
                2 => std::fs::write(&abs, format!("edited {i}\n")),
                _ => {
                    let dir = root.join(format!("new/{:02}", i % 30));
                    std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::write(dir.join(format!("w{i}.md")), "new\n"))
                }
            };
            i += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        i
    });
    let head = v.journal().and_then(|j| j.head().ok()).unwrap_or(0);
    wait_until("the writer's first events", Duration::from_secs(60), || {
        v.journal()
            .and_then(|j| j.head().ok())
            .is_some_and(|h| h > head + 100)
    });
    d.kill9();
    let d: Daemon = v.start();
    // Keep writing a while after the restart too.
    let until = Instant::now() + Duration::from_millis(500);
    wait_until("half a second past ready", Duration::from_secs(5), || {
        Instant::now() >= until
    });
    stop.store(true, Ordering::SeqCst);
    let ops = writer.join().expect("writer");
    assert!(ops > 200, "the writer did only {ops} operations");
    wait_journal_matches_disk(&v, Duration::from_secs(90));
    d.stop_within(SLOW_STOP);
}

/// Time for the consumers to drain a 10,000-note backlog on a loaded machine at a stop.
const SLOW_STOP: Duration = Duration::from_secs(180);

/// The daemon as uid `nobody` on `v` with `config` (its own state folder, so permissions
/// bite).
fn start_as_nobody(v: &TestVault, config: &str) -> Daemon {
    v.set_config(config);
    v.start_as_nobody(&v.state_dir())
}

fn chmod_tree(dir: &Path, dirs: u32, files: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dirs)).expect("chmod");
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            chmod_tree(&p, dirs, files);
        } else {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(files)).expect("chmod");
        }
    }
}

#[test]
fn an_unreadable_folder_is_not_a_deleted_folder() {
    let v = TestVault::new(BIN);
    v.write("open.md", "open\n");
    v.write("locked/a.md", "a\n");
    v.write("locked/b.md", "b\n");
    v.write("locked/sub/c.md", "c\n");
    chmod_tree(&v.root, 0o777, 0o666);
    // A first run journals everything.
    let daemon = start_as_nobody(&v, "");
    wait_until("four notes journaled", Duration::from_secs(30), || {
        v.events().len() >= 4
    });
    daemon.stop();
    let before = v.events().len();
    // The folder cannot be listed at the next start (as a mount that is not there yet).
    std::fs::set_permissions(v.path("locked"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod");
    let daemon = start_as_nobody(&v, "[watch]\npoll_interval = \"1s\"\n");
    let events = v.events_before_sentinel();
    assert_eq!(
        summary(&events[before..]),
        Vec::<(String, String, Option<String>)>::new(),
        "nothing under the unreadable folder is deleted"
    );
    // While it is unreadable, one note goes away for real; then it becomes readable.
    std::fs::remove_file(v.path("locked/a.md")).expect("rm");
    std::fs::set_permissions(v.path("locked"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    wait_until("locked/a.md deleted", Duration::from_secs(30), || {
        v.events()
            .iter()
            .any(|e| e.event == Kind::Deleted && e.file_path == "locked/a.md")
    });
    let events = v.events_before_sentinel();
    let after: Vec<_> = summary(&events[before..])
        .into_iter()
        .filter(|(_, p, _)| !p.starts_with("zz-sentinel-"))
        .collect();
    assert_eq!(
        after,
        vec![("deleted".to_string(), "locked/a.md".to_string(), None)],
        "only the note really deleted becomes an event"
    );
    let text = daemon.log();
    let mentions = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("locked") && l.contains("Permission denied"))
        .count();
    assert_eq!(
        mentions, 1,
        "the folder is logged once with the reason:\n{text}"
    );
    daemon.stop();
}

/// An editor's slow atomic save: the temp file is written and synced, stays longer than
/// the debounce, then is renamed over the note.
fn slow_save(v: &TestVault, temp: &str, note: &str, content: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(v.path(temp)).expect("temp");
    f.write_all(content.as_bytes()).expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    // The editor is slow: the temp file outlives the debounce (this is the scenario, not a wait).
    std::thread::sleep(Duration::from_millis(150));
    std::fs::rename(v.path(temp), v.path(note)).expect("rename over");
}

#[test]
fn a_slow_atomic_save_is_one_event_of_the_note_whatever_the_temp_name() {
    let v = TestVault::new(BIN);
    v.write("Note.md", "zero\n");
    let d = v.start();
    let before = v.wait_events(1, "initial scan").len();
    let temps = [
        "Note.md.123",           // write-file-atomic style, counter
        "Note.md.3f9a1c2b",      // write-file-atomic style, murmur hex
        ".Note.md.Xk29aQ",       // hidden sibling with a random suffix
        "Note.md.tmp",           // plain .tmp
        "Note.md___jb_tmp___",   // JetBrains safe write
        ".Note.md.swp",          // a swap-looking name (ignored outright)
        "Note.md.tmp.4417.1733", // pid + counter
    ];
    for (i, temp) in temps.iter().enumerate() {
        slow_save(&v, temp, "Note.md", &format!("save {i}\n"));
        wait_until(
            &format!("the save through {temp}"),
            Duration::from_secs(20),
            || {
                v.events()
                    .last()
                    .and_then(|e| e.hash.clone())
                    .is_some_and(|h| h == crate::util::hash(&format!("save {i}\n")))
            },
        );
    }
    // A new note saved the same way is one `created`.
    slow_save(&v, "Fresh.md.456", "Fresh.md", "fresh\n");
    let events = v.events_before_sentinel();
    let mut want: Vec<(String, String, Option<String>)> = temps
        .iter()
        .map(|_| ("modified".to_string(), "Note.md".to_string(), None))
        .collect();
    want.push(("created".to_string(), "Fresh.md".to_string(), None));
    assert_eq!(summary(&events[before..]), want);
    d.stop();
}

#[test]
fn a_real_file_with_a_temp_like_name_still_appears_after_the_settle_time() {
    let v = TestVault::with_config(BIN, "[watch]\ntemp_settle = \"4s\"\n");
    let d = v.start();
    let started = Instant::now();
    v.write("Report.md.2024", "a real file that looks like a temp\n");
    let early = v.events_before_sentinel();
    if started.elapsed() < Duration::from_secs(3) {
        assert!(
            early.iter().all(|e| e.file_path != "Report.md.2024"),
            "held back during the settle time: {:?}",
            summary(&early)
        );
    }
    wait_until("Report.md.2024 created", Duration::from_secs(30), || {
        v.events()
            .iter()
            .any(|e| e.event == Kind::Created && e.file_path == "Report.md.2024")
    });
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not before the settle time"
    );
    // A note renamed to such a name is one `renamed` once it has settled, not a deletion.
    v.write("Plan.md", "plan\n");
    wait_until("Plan.md created", Duration::from_secs(20), || {
        v.events().iter().any(|e| e.file_path == "Plan.md")
    });
    let before = v.events().len();
    std::fs::rename(v.path("Plan.md"), v.path("Plan.md.1")).expect("rename");
    wait_until("the rename journaled", Duration::from_secs(30), || {
        v.events().len() > before
    });
    let events = v.events_before_sentinel();
    assert_eq!(
        summary(&events[before..]),
        vec![(
            "renamed".to_string(),
            "Plan.md.1".to_string(),
            Some("Plan.md".to_string())
        )]
    );
    d.stop();
}
