//! Benchmark helpers: a simple generated vault and a timed full index (the lead's benches call these).

use std::path::Path;

use super::{CacheConfig, CacheError, ReindexStats, apply::walk_vault, reindex};

const WORDS: &[&str] = &[
    "vault", "note", "graph", "link", "idea", "river", "stone", "cloud", "garden", "matrix",
    "signal", "orbit", "lantern", "meadow", "copper", "harbor", "thread", "summit", "ember",
    "willow", "quartz", "falcon", "canyon", "violet", "anchor", "breeze", "cedar", "delta",
];

/// A small deterministic generator, so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }
}

/// Writes `n` notes (100 per folder, ~270 words, frontmatter, tags, 9 links (3 unresolved),
/// 6 tasks, 4 headings, fields).
pub fn generate_vault(root: &Path, n: usize) -> std::io::Result<()> {
    let mut rng = Lcg(42);
    for i in 0..n {
        let dir = root.join(format!("folder{:03}", i / 100));
        std::fs::create_dir_all(&dir)?;
        let mut s = format!(
            "---\ntags: [gen, group{}]\naliases: [alias {i}]\nstatus: {}\n---\n# Note {i}\n\n",
            i % 10,
            if i % 2 == 0 { "draft" } else { "done" }
        );
        for section in 0..3 {
            s.push_str(&format!("## Section {section}\n\n"));
            for _ in 0..80 {
                // Half common words, half from a 20,000-word tail, so terms have realistic
                // selectivity (`tok123` is in a few dozen notes, `lantern` in all).
                if rng.below(2) == 0 {
                    s.push_str(WORDS[rng.below(WORDS.len())]);
                } else {
                    s.push_str(&format!("tok{}", rng.below(20_000)));
                }
                s.push(' ');
            }
            s.push_str(&format!(
                "#topic{} [[Note {}]] and [[Note {}|shown]] [[Missing {}]].\n\n",
                rng.below(50),
                rng.below(n),
                rng.below(n),
                rng.below(n)
            ));
            s.push_str(&format!(
                "- [ ] task {section} of {i}\n- [x] done {section}\n\n"
            ));
        }
        s.push_str("priority:: high\n");
        std::fs::write(dir.join(format!("Note {i}.md")), s)?;
    }
    Ok(())
}

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
