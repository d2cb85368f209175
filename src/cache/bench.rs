//! Benchmark helpers: a timed full index and search/edit latencies (vaults come from
//! [`crate::vaultgen::generate`]).

use std::path::Path;

use super::{CacheConfig, CacheError, ReindexStats, apply::walk_vault, reindex};

/// Full index of the vault at `root` into `db`, with the default configuration.
pub fn bench_reindex(root: &Path, db: &Path) -> Result<ReindexStats, CacheError> {
    let files = walk_vault(root).map_err(|source| CacheError::Io {
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
    let conn = super::schema::open_ro(db)?;
    let mut out = Vec::with_capacity(terms.len() * rounds);
    for _ in 0..rounds {
        for t in terms {
            let start = std::time::Instant::now();
            let r = super::query::search(&conn, t, None, None, 20)?;
            std::hint::black_box(r);
            out.push(start.elapsed());
        }
    }
    Ok(out)
}

/// Save-to-queryable time for `n` edits: each one a `modified` event with content applied by
/// the consumer (parse, index, re-resolve, commit with the cursor), on the cache at `db`.
pub fn edit_latencies(
    db: &Path,
    n: usize,
    first_seq: u64,
) -> Result<Vec<std::time::Duration>, CacheError> {
    use crate::consumer::Durable;
    use crate::event::{Event, Kind, Origin};
    let mut consumer = super::CacheConsumer::open(db, None, &CacheConfig::default())?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let path = format!("folder{:03}/Note {}.md", i % 100, i);
        let text = format!(
            "# Note {i}\n\nedited {i} with [[Note {}]] #edited\n- [ ] new task\n",
            i + 1
        );
        let mut e = Event::new(
            Kind::Modified,
            path,
            None,
            text.len() as u64,
            None,
            Some(blake3::hash(text.as_bytes()).to_hex().to_string()),
            Some(text),
            "bench",
            "bench",
            Origin::Watch,
        );
        e.seq = first_seq + i as u64;
        let start = std::time::Instant::now();
        match consumer.apply(std::slice::from_ref(&e)) {
            Ok(Durable::Upto(_)) | Ok(Durable::Unchanged) => {}
            Err(err) => return Err(CacheError::BadQuery(err.to_string())),
        }
        out.push(start.elapsed());
    }
    Ok(out)
}
