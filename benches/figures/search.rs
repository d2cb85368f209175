//! Search figures of issue #15: `vaultkeeper search` through the CLI (a whole process per
//! search) against `rg -l -i` on the same words and files, on a generated vault with a
//! natural (Zipf) vocabulary and on one where every word is in every note, and what a CLI
//! process costs before it searches (start-up, opening the cache).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vaultkeeper_testkit::stats::percentile;

use super::cache_figures::{bench_reindex, cli_search_times};
use super::table;

/// Our CLI search p50 and `rg -l -i` p50 on the same words, and the ratio.
pub struct Versus {
    /// `vaultkeeper --cache DB search WORD --limit 20`, p50.
    pub ours: Duration,
    /// `rg -l -i WORD VAULT`, p50; `None` when rg is not there.
    pub rg: Option<Duration>,
    /// How many runs of each.
    pub runs: usize,
}

impl Versus {
    /// rg's time over ours (how many times faster we are).
    pub fn ratio(&self) -> Option<f64> {
        self.rg
            .map(|r| r.as_secs_f64() / self.ours.as_secs_f64().max(1e-9))
    }
}

/// Times `rg -l -i WORD ROOT` for each word, `rounds` times; `None` when rg cannot run.
pub fn rg_times(root: &Path, words: &[&str], rounds: usize) -> Option<Vec<Duration>> {
    let mut out = Vec::new();
    for _ in 0..rounds {
        for w in words {
            let w = w.trim_matches(['"', '*']);
            let t0 = Instant::now();
            Command::new("rg")
                .args(["-l", "-i", "--", w])
                .arg(root)
                .stdout(Stdio::null())
                .status()
                .ok()?;
            out.push(t0.elapsed());
        }
    }
    Some(out)
}

/// CLI search against rg on the same words (`rounds` runs of each word).
pub fn cli_vs_rg(
    bin: &str,
    db: &Path,
    root: &Path,
    words: &[&str],
    rounds: usize,
) -> Result<Versus, String> {
    // One unmeasured round: the page cache holds the files and the database for both.
    cli_search_times(bin, db, words, 1)?;
    let _ = rg_times(root, words, 1);
    let mut ours = cli_search_times(bin, db, words, rounds)?;
    ours.sort();
    let rg = rg_times(root, words, rounds).map(|mut v| {
        v.sort();
        percentile(&v, 0.5)
    });
    Ok(Versus {
        ours: percentile(&ours, 0.5),
        rg,
        runs: ours.len(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// p50 of `runs` runs of `bin ARGS` (stdout and stderr dropped).
fn process_p50(bin: &str, args: &[&std::ffi::OsStr], runs: usize) -> Option<Duration> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let ok = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        t.push(t0.elapsed());
    }
    t.sort();
    Some(percentile(&t, 0.5))
}

/// What a CLI query pays before searching: the process (`--version`) and opening the cache
/// with its schema check and one trivial statement (`sql "SELECT 1"`).
pub fn print_startup(bin: &str, db: &Path) {
    let version = process_p50(bin, &["--version".as_ref()], 20);
    let open = process_p50(
        bin,
        &[
            "--cache".as_ref(),
            db.as_os_str(),
            "sql".as_ref(),
            "SELECT 1".as_ref(),
        ],
        20,
    );
    println!(
        "search: CLI process cost, p50 of 20: `vaultkeeper --version` {}, `--cache DB sql \"SELECT 1\"` (open, schema check, one statement) {}",
        version.map_or("failed".into(), ms),
        open.map_or("failed".into(), ms)
    );
}

/// Ranks of the words searched in the Zipf vault: common to rare English words, then two
/// of the long tail (a word a user remembers from one or two notes).
const ZIPF_RANKS: &[usize] = &[5, 50, 250, 2_000, 20_000];

/// The Zipf row: a generated 10,000-note vault whose words follow Zipf's law over a
/// 50,000-word vocabulary, CLI search p50 against `rg -l -i` on the same words.
pub fn zipf_row(bin: &str, dir: &Path) {
    use vaultkeeper_testkit::vaultgen::{Zipf, generate_zipf};
    let vocab = Zipf::new(50_000, 1.0);
    let root = dir.join("zipf-vault");
    if let Err(e) = generate_zipf(&root, 10_000, 42, &vocab) {
        println!("search (zipf): cannot generate the vault: {e}");
        return;
    }
    let db = dir.join("zipf-cache.db");
    let t0 = Instant::now();
    if let Err(e) = bench_reindex(&root, &db) {
        println!("search (zipf): index failed: {e}");
        return;
    }
    let indexed = t0.elapsed();
    let words: Vec<&str> = ZIPF_RANKS.iter().map(|&r| vocab.word(r)).collect();
    let shares: Vec<String> = ZIPF_RANKS
        .iter()
        .map(|&r| {
            format!(
                "{} (rank {r}, {:.4}%)",
                vocab.word(r),
                vocab.share(r) * 100.0
            )
        })
        .collect();
    print_startup(bin, &db);
    match cli_vs_rg(bin, &db, &root, &words, 5) {
        Ok(v) => {
            let ratio = v.ratio();
            println!(
                "search (zipf) on 10,000 notes, 50,000-word Zipf vocabulary (indexed in {:.2} s): CLI search p50 {} (process start included, top 20, {} runs) vs `rg -l -i WORD` {}: {} faster; words {}",
                indexed.as_secs_f64(),
                ms(v.ours),
                v.runs,
                v.rg.map_or("not available".into(), ms),
                ratio.map_or("?".into(), |r| format!("{r:.1}x")),
                shares.join(", ")
            );
            table::record(table::Row {
                figure: "`search` through the CLI, p50, 10,000 notes, Zipf vocabulary".into(),
                ours: ms(v.ours),
                against: v.rg.map_or("rg not available".into(), |r| {
                    format!("`rg -l -i` {} ({:.1}x)", ms(r), ratio.unwrap_or(0.0))
                }),
                aim: "10x faster than `rg -l -i`".into(),
                reached: ratio.map(|r| r >= 10.0),
            });
        }
        Err(e) => println!("search (zipf): CLI search failed: {e}"),
    }
}

/// The every-word row, from the measurement of `bench_search` on the fixed-vocabulary
/// generated vault (each of its 37 words is in nearly every note).
pub fn record_every_word_row(v: &Versus) {
    let ratio = v.ratio();
    table::record(table::Row {
        figure: "`search` through the CLI, p50, 10,000 notes where every word matches every note"
            .into(),
        ours: ms(v.ours),
        against: v.rg.map_or("rg not available".into(), |r| {
            format!("`rg -l -i` {} ({:.1}x)", ms(r), ratio.unwrap_or(0.0))
        }),
        aim: "10x faster than `rg -l`".into(),
        reached: ratio.map(|r| r >= 10.0),
    });
}
