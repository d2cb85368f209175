//! Benchmark helpers: a timed full index and search/edit latencies (vaults come from
//! [`vaultkeeper_testkit::vaultgen::generate`]).

use std::path::Path;

use vaultkeeper_cache::{CacheConfig, CacheError, ReindexStats, apply::vault_files, reindex};

/// Full index of the vault at `root` into `db`, with the default configuration.
pub fn bench_reindex(root: &Path, db: &Path) -> Result<ReindexStats, CacheError> {
    let files = vault_files(root).map_err(|source| CacheError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    reindex(db, root, files.into_iter(), 0, &CacheConfig::default())
}

/// Time of each search (one read-only connection, `limit` 20) for every term, `rounds` times.
pub fn search_latencies(
    db: &Path,
    terms: &[&str],
    rounds: usize,
) -> Result<Vec<std::time::Duration>, CacheError> {
    let conn = vaultkeeper_cache::schema::open_ro(db)?;
    let mut out = Vec::with_capacity(terms.len() * rounds);
    for _ in 0..rounds {
        for t in terms {
            let start = std::time::Instant::now();
            let r = vaultkeeper_cache::query::search(&conn, t, None, None, 20)?;
            std::hint::black_box(r);
            out.push(start.elapsed());
        }
    }
    Ok(out)
}

/// Median wall time of `runs` full indexes of `root` (a fresh cache each), and the size of
/// the last cache (database and WAL, checkpointed), in bytes.
pub fn index_time_and_size(
    root: &Path,
    dir: &Path,
    runs: usize,
) -> Result<(std::time::Duration, u64, std::path::PathBuf), CacheError> {
    let mut times = Vec::with_capacity(runs);
    let mut db = dir.join("cache-0.db");
    for i in 0..runs.max(1) {
        db = dir.join(format!("cache-{i}.db"));
        let start = std::time::Instant::now();
        bench_reindex(root, &db)?;
        times.push(start.elapsed());
    }
    // Pages still in the WAL belong to the cache as much as the main file's.
    if let Ok(c) = rusqlite::Connection::open(&db) {
        let _ = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    times.sort();
    Ok((times[times.len() / 2], size, db))
}

/// Times of `vaultkeeper --cache DB search WORD --limit 20` (the whole CLI process) for each
/// word, `rounds` times; a failed search is an error naming the word.
pub fn cli_search_times(
    bin: &str,
    db: &Path,
    words: &[&str],
    rounds: usize,
) -> Result<Vec<std::time::Duration>, String> {
    let mut out = Vec::with_capacity(words.len() * rounds);
    for _ in 0..rounds {
        for w in words {
            let start = std::time::Instant::now();
            let res = std::process::Command::new(bin)
                .arg("--cache")
                .arg(db)
                .args(["search", w, "--limit", "20"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map_err(|e| format!("{w}: {e}"))?;
            if !res.success() {
                return Err(format!("search {w:?} failed: {res}"));
            }
            out.push(start.elapsed());
        }
    }
    Ok(out)
}

/// Times of `vaultkeeper --vault VAULT reindex` as a whole process without a daemon (state in
/// `state`), `runs` times; the first run builds a new cache, the later ones rebuild it.
pub fn cli_reindex_times(
    bin: &str,
    vault: &Path,
    state: &Path,
    runs: usize,
) -> Result<Vec<std::time::Duration>, String> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let res = std::process::Command::new(bin)
            .arg("--vault")
            .arg(vault)
            .arg("reindex")
            .env("VAULTKEEPER_STATE_DIR", state)
            .env_remove("VAULTKEEPER_CONFIG")
            .env_remove("VAULTKEEPER_AMQP_URL")
            .env_remove("RABBITMQ_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| format!("reindex: {e}"))?;
        if !res.status.success() {
            return Err(format!(
                "reindex failed: {}",
                String::from_utf8_lossy(&res.stderr)
            ));
        }
        out.push(start.elapsed());
    }
    Ok(out)
}

/// Times of `rg -c -i WORD VAULT` (every file read, a count per file), `runs` times; `None`
/// when rg is not installed.
pub fn rg_count_times(vault: &Path, word: &str, runs: usize) -> Option<Vec<std::time::Duration>> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let status = std::process::Command::new("rg")
            .args(["-c", "-i", "--", word])
            .arg(vault)
            .stdout(std::process::Stdio::null())
            .status()
            .ok()?;
        // 0: matches, 1: none; both read every file.
        status.code().filter(|c| *c <= 1)?;
        out.push(start.elapsed());
    }
    Some(out)
}
