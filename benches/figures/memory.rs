//! Memory figures of issue #15: the daemon's idle RSS on the help vault, its RSS after a
//! 100,000-note first start has settled (peak and settled), and what one huge note costs.

use std::time::{Duration, Instant};

use super::{Daemon, table};

/// RSS as the bench prints it, in MiB (the "MB" figures were measured the same way,
/// and its aims are compared in the same unit).
fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The idle row: RSS of the daemon on obsidian-help-en once its cache is complete, with how
/// much of it is the binary's own pages (file-backed) and how much is heap and stacks.
pub fn record_idle(rss_kib: u64, anon_kib: u64, file_kib: u64) {
    println!(
        "resident memory idle on obsidian-help-en: {} ({} anonymous: heap, stacks, SQLite caches; {} file-backed: the binary and libraries)",
        mib(rss_kib),
        mib(anon_kib),
        mib(file_kib)
    );
    table::record(table::Row {
        figure: "idle RSS, daemon on obsidian-help-en, cache on".into(),
        ours: mib(rss_kib),
        against: format!("{} anonymous, {} file-backed", mib(anon_kib), mib(file_kib)),
        aim: "under 20 MB".into(),
        reached: Some(rss_kib < 20 * 1024),
    });
}

/// The first-start row: peak and settled RSS of a first start on `n` notes (from the spine).
pub fn record_first_start(n: usize, peak_kib: u64, settled_kib: u64) {
    table::record(table::Row {
        figure: format!("RSS after a {n}-note first start has settled (peak)"),
        ours: format!("{} ({} peak)", mib(settled_kib), mib(peak_kib)),
        against: "-".into(),
        aim: "under 60 MB settled, peak under 120 MB".into(),
        reached: Some(settled_kib < 60 * 1024 && peak_kib < 120 * 1024),
    });
}

/// One note of a single 50 MB line beside a small one: the daemon's peak RSS through its
/// first start and full index, and what `note --json` says of the huge note.
pub fn huge_note(bin: &str) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            println!("memory (huge note): no temporary folder: {e}");
            return;
        }
    };
    let vault = dir.path().join("vault");
    let made = std::fs::create_dir_all(&vault).and_then(|()| {
        let words = ["alpha ", "lantern ", "harvest ", "compass ", "river "];
        let mut line = String::with_capacity(50_000_000 + 16);
        let mut i = 0usize;
        while line.len() < 50_000_000 {
            line.push_str(words[i % words.len()]);
            i += 1;
        }
        line.truncate(50_000_000);
        line.push('\n');
        std::fs::write(vault.join("Huge.md"), line)?;
        std::fs::write(vault.join("Small.md"), "# Small\n\nsmall note\n")
    });
    if let Err(e) = made {
        println!("memory (huge note): cannot write the vault: {e}");
        return;
    }
    let state = dir.path().join("vk");
    let d = Daemon::start(&vault, &state, "");
    d.wait_ready(Duration::from_secs(300));
    let journal = match vaultkeeper_journal::Journal::open_readonly(&state.join("state/journal.db"))
    {
        Ok(j) => j,
        Err(e) => {
            println!("memory (huge note): journal: {e}");
            d.stop();
            return;
        }
    };
    let started = Instant::now();
    loop {
        let head = journal.head().unwrap_or(u64::MAX);
        if journal
            .cursor("cache")
            .ok()
            .flatten()
            .is_some_and(|c| c >= head)
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            println!("memory (huge note): the cache did not catch up within 600 s");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak = d.rss_kib("VmHWM:");
    let rss = d.rss_kib("VmRSS:");
    let note = std::process::Command::new(bin)
        .arg("--cache")
        .arg(state.join("state/cache.db"))
        .args(["--json", "note", "Huge.md"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok());
    d.stop();
    let said = note
        .as_ref()
        .map(|j| match (&j["body_indexed"], &j["not_indexed"]) {
            (serde_json::Value::Bool(b), why) => format!("body_indexed {b}, not_indexed {why}"),
            _ => "no body_indexed field".to_string(),
        })
        .unwrap_or_else(|| "`note --json` failed".to_string());
    println!(
        "memory (huge note): one 50 MB line beside a small note: daemon peak RSS {} through the first start and index ({} after); `note --json Huge.md`: {said}",
        mib(peak),
        mib(rss)
    );
    table::record(table::Row {
        figure: "memory of one huge note (one 50 MB line), daemon peak RSS".into(),
        ours: mib(peak),
        against: said,
        aim: "bounded (metadata only above a size, and `note` says so)".into(),
        reached: Some(
            note.as_ref()
                .is_some_and(|j| j["body_indexed"] == serde_json::Value::Bool(false))
                && peak < 120 * 1024,
        ),
    });
}
