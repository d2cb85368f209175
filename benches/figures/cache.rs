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
