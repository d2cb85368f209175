//! `vaultkeeper reindex` while the daemon runs and notes keep arriving: nothing is lost.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

fn cache_paths(db: &Path) -> BTreeSet<String> {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return BTreeSet::new();
    };
    let Ok(mut st) = conn.prepare("SELECT path FROM notes") else {
        return BTreeSet::new();
    };
    st.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

#[test]
fn reindex_while_the_daemon_runs_and_notes_arrive_loses_none() {
    // A short debounce journals the writer's notes in many small batches, so some land
    // while `reindex` lists the vault.
    let tv = TestVault::with_config(BIN, "[watch]\ndebounce = \"5ms\"\nmax_latency = \"20ms\"\n");
    for i in 0..4000 {
        tv.write(
            &format!("base/{:02}/n{i}.md", i % 40),
            &format!("# Note {i}\n[[n{}]] #t{}\n", i + 1, i % 7),
        );
    }
    let daemon = tv.start();
    let db = tv.state_dir().join("cache.db");
    wait_until("the first index", Duration::from_secs(120), || {
        cache_paths(&db).len() >= 4000
    });

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let root = tv.root.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            std::fs::create_dir_all(root.join("live")).expect("mkdir");
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(root.join(format!("live/w{i}.md")), format!("# W{i}\n"))
                    .expect("write");
                i += 1;
                // Pacing only (a note every few ms), not waiting for anything.
                std::thread::sleep(Duration::from_millis(3));
            }
            i
        })
    };
    for _ in 0..4 {
        let out = tv.run(&["reindex"]);
        assert!(
            out.status.success(),
            "reindex: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(written > 0);

    tv.write("zz-last.md", "# Last\n");
    wait_until(
        "the last note in the cache",
        Duration::from_secs(60),
        || cache_paths(&db).contains("zz-last.md"),
    );
    // Events reach the cache in journal order: whatever is missing now was skipped.
    let on_disk = tv.files_on_disk();
    let cached = cache_paths(&db);
    let missing: Vec<&String> = on_disk.difference(&cached).collect();
    assert!(
        missing.is_empty(),
        "{} of {} notes missing from the cache, e.g. {:?}",
        missing.len(),
        on_disk.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    daemon.stop();
}
