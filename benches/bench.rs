//! The benchmark harness: `cargo bench --bench bench [-- SECTION...]` prints each figure
//! with what it was compared against in the same run. Sections: journal, scan, latency, memory, cache,
//! search, peers, git, amqp, spine, api.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_journal::Journal;
use vaultkeeper_testkit::stats::percentile;

#[path = "figures/amqp.rs"]
mod amqp_figures;
#[path = "figures/api.rs"]
mod api_figures;
#[path = "figures/cache.rs"]
mod cache_figures;
#[path = "figures/git.rs"]
mod git_figures;
#[path = "figures/memory.rs"]
mod memory_figures;
#[path = "figures/peers.rs"]
mod peers_figures;
#[path = "figures/search.rs"]
mod search_figures;
#[path = "figures/table.rs"]
mod table;

const BIN: &str = env!("CARGO_BIN_EXE_vaultkeeper");

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!(
        "vaultkeeper benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if want("journal") {
        bench_journal();
    }
    if want("scan") {
        bench_scan(10_000);
        if std::env::var_os("VAULTKEEPER_BENCH_LARGE").is_some() {
            bench_scan(100_000);
        }
    }
    if want("latency") {
        bench_latency();
    }
    if want("memory") {
        bench_memory();
    }
    if want("cache") {
        bench_cache_index(10_000, true);
        if std::env::var_os("VAULTKEEPER_BENCH_LARGE").is_some() {
            bench_cache_index(100_000, false);
        }
        bench_cache_latency();
    }
    if want("search") {
        bench_search();
    }
    if want("peers") {
        peers_figures::run(BIN);
    }
    if want("git") {
        bench_git();
    }
    if want("amqp") {
        println!(
            "amqp: the forwarder vs a bare lapin publisher and pika, same run (RabbitMQ on 127.0.0.1:5672)"
        );
        amqp_figures::run();
    }
    if want("api") {
        bench_api();
    }
    if want("spine") {
        bench_spine(10_000);
        if std::env::var_os("VAULTKEEPER_BENCH_LARGE").is_some() {
            bench_spine(100_000);
        }
    }
    table::print();
}

/// CPU time (user + system) of this process so far, from /proc/self/stat (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Full index of a generated vault (library call, the same code as `vaultkeeper reindex`), and
/// with `search`, search p50 on it next to `rg -l` over the same files.
fn bench_cache_index(n: usize, search: bool) {
    use cache_figures::{bench_reindex, search_latencies};
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    let generated = vaultkeeper_testkit::vaultgen::generate(&vault, n, 42).expect("generate");
    let db = dir.path().join("cache.db");
    let cpu0 = cpu_time();
    let started = Instant::now();
    let stats = bench_reindex(&vault, &db).expect("reindex");
    let wall = started.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    println!(
        "cache full index of {n} notes + {} attachments: {:.2} s wall, {} CPU ({} links, {} unresolved; aim: {})",
        generated.attachments,
        wall.as_secs_f64(),
        cpu.map_or("?".to_string(), |c| format!("{:.2} s", c.as_secs_f64())),
        stats.links,
        stats.unresolved,
        if n <= 10_000 {
            "under 1 s"
        } else {
            "under 15 s"
        }
    );
    if n <= 10_000 {
        cli_reindex_row(n, &vault, dir.path());
    }
    if !search {
        return;
    }
    // Words of the generator's vocabulary: search for each, read-only connection, limit 20.
    let terms = ["lantern", "harvest", "compass", "meeting", "quartz"];
    let mut ours = search_latencies(&db, &terms, 5).expect("search");
    ours.sort();
    let mut rg = Vec::new();
    for _ in 0..3 {
        for t in &terms {
            let t0 = Instant::now();
            let out = Command::new("rg")
                .args(["-l", "-i", "--", t])
                .arg(&vault)
                .stdout(Stdio::null())
                .status();
            match out {
                Ok(_) => rg.push(t0.elapsed()),
                Err(e) => {
                    println!("cache search: rg not available ({e}); no comparison");
                    return;
                }
            }
        }
    }
    rg.sort();
    let (a, b) = (percentile(&ours, 0.5), percentile(&rg, 0.5));
    println!(
        "cache search p50 on {n} notes: {:.2} ms (FTS5 bm25 + snippets, top 20) vs `rg -l -i WORD` {:.1} ms over the same files: {:.0}x faster ({} and {} runs)",
        a.as_secs_f64() * 1000.0,
        b.as_secs_f64() * 1000.0,
        b.as_secs_f64() / a.as_secs_f64().max(1e-9),
        ours.len(),
        rg.len()
    );
}

/// `vaultkeeper reindex` through the CLI (whole process, no daemon) next to `rg -c` over the
/// same files, alternating so both see the same machine load; records the table's row.
fn cli_reindex_row(n: usize, vault: &Path, dir: &Path) {
    use cache_figures::{cli_reindex_times, rg_count_times};
    let state = dir.join("cli-state");
    let rounds = 5;
    let mut first = None;
    let (mut ours, mut rg) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        match cli_reindex_times(BIN, vault, &state, 1) {
            Ok(t) => match first {
                // The first run makes a new cache; the others rebuild it, as users do.
                None => first = t.first().copied(),
                Some(_) => ours.extend(t),
            },
            Err(e) => {
                println!("cli reindex: {e}");
                return;
            }
        }
        match rg_count_times(vault, "note", 3) {
            Some(t) => rg.extend(t),
            None => {
                println!("cli reindex: rg not available; no comparison");
                return;
            }
        }
    }
    ours.sort();
    rg.sort();
    let (a, b) = (percentile(&ours, 0.5), percentile(&rg, 0.5));
    let ratio = a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "cli `vaultkeeper reindex` of {n} notes (whole process, no daemon): p50 {:.2} s over {} rebuilds (first, new cache: {:.2} s) vs `rg -c -i note` {:.0} ms over the same files: {ratio:.1}x rg",
        a.as_secs_f64(),
        ours.len(),
        first.map_or(0.0, |f| f.as_secs_f64()),
        b.as_secs_f64() * 1000.0,
    );
    table::record(table::Row {
        figure: format!("full `reindex` of a generated {n}-note vault (CLI, whole process)"),
        ours: format!("{:.2} s", a.as_secs_f64()),
        against: format!("`rg -c` {:.0} ms ({ratio:.1}x)", b.as_secs_f64() * 1000.0),
        aim: "under 1 s, 10x `rg -c` or better".into(),
        reached: Some(a < Duration::from_secs(1) && ratio <= 10.0),
    });
}

/// Save-to-queryable with the real daemon: write a note with a unique word, poll the cache
/// (read-only) until a search finds it; the debounce is subtracted.
fn bench_cache_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    vaultkeeper_testkit::vaultgen::generate(&vault, 1000, 7).expect("generate");
    let state = dir.path().join("vk");
    let debounce = Duration::from_millis(100);
    let d = Daemon::start(&vault, &state, "[watch]\ndebounce = \"100ms\"\n");
    d.wait_ready(Duration::from_secs(120));
    let db = state.join("state/cache.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    let conn = loop {
        if let Ok(c) = vaultkeeper_cache::schema::open_ro(&db)
            && vaultkeeper_cache::schema::read_cursor(&c)
                .ok()
                .flatten()
                .is_some()
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no cache");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut samples = Vec::new();
    for i in 0..50 {
        let word = format!("uniqueword{i}zz");
        let t0 = Instant::now();
        std::fs::write(
            vault.join(format!("lat{i}.md")),
            format!("# L{i}\n\n{word}\n"),
        )
        .expect("write");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = vaultkeeper_cache::query::search(&conn, &word, None, None, 1)
                .map(|r| !r.hits.is_empty())
                .unwrap_or(false);
            if found {
                break;
            }
            assert!(Instant::now() < deadline, "{word} never searchable");
            std::thread::sleep(Duration::from_micros(500));
        }
        samples.push(t0.elapsed().saturating_sub(debounce));
    }
    d.stop();
    samples.sort();
    println!(
        "cache save-to-queryable beyond the {} ms debounce (daemon, 1000-note vault, search polled read-only): p50 {:.1} ms, p95 {:.1} ms ({} writes; aim under 50 ms)",
        debounce.as_millis(),
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.95).as_secs_f64() * 1000.0,
        samples.len()
    );
}

/// Git consumer vs `git add -A && git commit -q` on the same repositories in the same run
/// (10,000 tracked files; also 100,000 with VAULTKEEPER_BENCH_LARGE), a 10,000-file burst
/// and the resident memory around it. The figures come from `git_figures::run`.
fn bench_git() {
    let mut sizes = vec![10_000];
    if std::env::var_os("VAULTKEEPER_BENCH_LARGE").is_some() {
        sizes.push(100_000);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    println!("git: vaultkeeper commit vs git add -A && git commit -q (median of 5)");
    if let Err(e) = git_figures::run(dir.path(), &sizes, 10_000, 5) {
        println!("git: benchmark failed: {e}");
    }
    if let Err(e) = git_figures::run_cli(dir.path(), BIN, 20_000, 7) {
        println!("git: `vaultkeeper commit` benchmark failed: {e}");
    }
}

fn bench_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut journal = Journal::open(&dir.path().join("journal.db")).expect("journal");
    // As the daemon's watcher appends: checkpoints on their own thread (the work is still
    // done, on the other core, beside the appends).
    journal
        .checkpoint_in_background(vaultkeeper_journal::CHECKPOINT_EVERY_BYTES)
        .expect("checkpoint thread");
    let body = "lorem ipsum ".repeat(40);
    let total = 100_000;
    let batch = 1000;
    // The events are made first: the figure is the journal's, not the hashing and the
    // UUIDs of the builder (a tenth of the time when they were made inside the loop).
    let mut batches: Vec<Vec<Event>> = (0..(total / batch))
        .map(|b| {
            (0..batch)
                .map(|i| {
                    Event::builder(Kind::Modified, format!("notes/n{}.md", b * batch + i))
                        .read(
                            body.len() as u64,
                            Some(blake3::hash(body.as_bytes()).to_hex().to_string()),
                            Some(body.clone()),
                        )
                        .source("bench", "host")
                        .origin(Origin::Watch)
                        .build()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for events in &mut batches {
        journal.append(events, &[]).expect("append");
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = total as f64 / secs;
    println!(
        "journal append: {total} events ({}-byte content) in batches of {batch}: {rate:.0} events/s ({secs:.2} s, synchronous=FULL, checkpoints on their own thread)",
        body.len(),
    );
    table::record(table::Row {
        figure: format!("journal append, batches of {batch}"),
        ours: format!("{rate:.0} events/s"),
        against: "-".into(),
        aim: "200,000 events/s in batches".into(),
        reached: Some(rate >= 200_000.0),
    });
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(vault: &Path, state: &Path, config: &str) -> Daemon {
        let log = state.join("daemon.log");
        let cfg = state.join("config.toml");
        std::fs::create_dir_all(state).expect("state");
        std::fs::write(&cfg, config).expect("config");
        let child = Command::new(BIN)
            .args(["run"])
            .arg(vault)
            .env("VAULTKEEPER_STATE_DIR", state.join("state"))
            .env("VAULTKEEPER_CONFIG", &cfg)
            .env("VAULTKEEPER_LOG", "info")
            .env_remove("VAULTKEEPER_AMQP_URL")
            .env_remove("RABBITMQ_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn");
        Daemon { child, log }
    }

    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(" ready") {
                return;
            }
            assert!(Instant::now() < deadline, "daemon not ready:\n{log}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn rss_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn bench_scan(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    let generated = vaultkeeper_testkit::vaultgen::generate(&vault, n, 42).expect("generate");
    let files = generated.notes + generated.attachments;
    // Drop caches are not available; both sides read the same warm files.
    let state = dir.path().join("vk");
    let started = Instant::now();
    let d = Daemon::start(&vault, &state, "");
    d.wait_ready(Duration::from_secs(600));
    let ours = started.elapsed();
    d.stop();

    let copy = dir.path().join("gitcopy");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&vault)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&copy)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("git")
    };
    git(&["init", "-q"]);
    let started = Instant::now();
    git(&["add", "-A"]);
    let theirs = started.elapsed();
    println!(
        "first scan of a {n}-note vault ({files} files): vaultkeeper run to ready {:.2} s (walk, hash, journal every file) vs `git add -A` {:.2} s on the same files: ratio {:.2}x",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

fn bench_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    vaultkeeper_testkit::vaultgen::generate(&vault, 200, 1).expect("generate");
    let state = dir.path().join("vk");
    let debounce = Duration::from_millis(100);
    let d = Daemon::start(&vault, &state, "[watch]\ndebounce = \"100ms\"\n");
    d.wait_ready(Duration::from_secs(60));
    let journal = Journal::open_readonly(&state.join("state/journal.db")).expect("journal");
    let mut samples = Vec::new();
    for i in 0..100 {
        let head = journal.head().expect("head");
        let t0 = Instant::now();
        std::fs::write(vault.join(format!("lat{i}.md")), format!("latency {i}\n")).expect("write");
        loop {
            if journal.head().expect("head") > head {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        samples.push(t0.elapsed().saturating_sub(debounce));
    }
    d.stop();
    samples.sort();
    println!(
        "write-to-journal latency beyond the {} ms debounce: p50 {:.1} ms, p95 {:.1} ms ({} single-file writes)",
        debounce.as_millis(),
        percentile(&samples, 0.5).as_secs_f64() * 1000.0,
        percentile(&samples, 0.95).as_secs_f64() * 1000.0,
        samples.len()
    );
}

/// The search index: index time (median of 3) and cache size on the help vault and a
/// generated 10,000-note vault, and search p50 through the CLI (a whole process per search)
/// next to `rg -l -i WORD` on the same files.
fn bench_search() {
    use cache_figures::index_time_and_size;
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = dir.path().join("generated");
    vaultkeeper_testkit::vaultgen::generate(&generated, 10_000, 42).expect("generate");
    let mut vaults = vec![(
        "generated 10,000 notes",
        generated,
        vec!["lantern", "harvest", "compass", "meeting", "quartz"],
    )];
    match help_vault() {
        Some(p) => vaults.insert(
            0,
            (
                "obsidian-help-en",
                p,
                vec![
                    "attachment",
                    "embed*",
                    "\"command palette\"",
                    "canvas",
                    "sync",
                ],
            ),
        ),
        None => println!("search: the help vault is absent (VAULTKEEPER_HELP_VAULT): skipped"),
    }
    for (name, root, words) in vaults {
        let sub = dir.path().join(name.replace([' ', ','], "_"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        let (t, size, db) = index_time_and_size(&root, &sub, 3).expect("index");
        let v = match search_figures::cli_vs_rg(BIN, &db, &root, &words, 5) {
            Ok(v) => v,
            Err(e) => {
                println!("search on {name}: CLI search failed: {e}");
                continue;
            }
        };
        let rg_part = match (v.rg, v.ratio()) {
            (Some(r), Some(x)) => format!(
                "`rg -l -i WORD` {:.1} ms: {x:.1}x",
                r.as_secs_f64() * 1000.0
            ),
            _ => "rg not available".to_string(),
        };
        println!(
            "search on {name}: full index {:.2} s (median of 3), cache {:.1} MiB; CLI search p50 {:.1} ms (process start included, top 20, {} runs) vs {rg_part}",
            t.as_secs_f64(),
            size as f64 / (1024.0 * 1024.0),
            v.ours.as_secs_f64() * 1000.0,
            v.runs
        );
        if name.starts_with("generated") {
            search_figures::record_every_word_row(&v);
        }
    }
    search_figures::zipf_row(BIN, dir.path());
}

fn help_vault() -> Option<PathBuf> {
    let p = std::env::var_os("VAULTKEEPER_HELP_VAULT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vaults/obsidian-help-en")
        });
    p.is_dir().then_some(p)
}

fn bench_memory() {
    let Some(help) = help_vault() else {
        println!("memory: SKIPPED, obsidian-help-en is absent (set VAULTKEEPER_HELP_VAULT)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&help)
        .arg(&vault)
        .status()
        .expect("cp");
    assert!(status.success());
    let state = dir.path().join("vk");
    let d = Daemon::start(&vault, &state, "");
    d.wait_ready(Duration::from_secs(60));
    let journal = Journal::open_readonly(&state.join("state/journal.db")).expect("journal");
    // Idle means the cache has indexed the vault, and a few seconds more.
    wait_journal(
        &journal,
        Duration::from_secs(120),
        "help vault indexed",
        |j| {
            let head = j.head().unwrap_or(u64::MAX);
            j.cursor("cache").ok().flatten().is_some_and(|c| c >= head)
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let idle = d.rss_kib("VmRSS:");
    memory_figures::record_idle(idle, d.rss_kib("RssAnon:"), d.rss_kib("RssFile:"));
    let head = journal.head().expect("head");
    let started = Instant::now();
    let burst = vault.join("burst");
    let generated = vaultkeeper_testkit::vaultgen::generate(&burst, 10_000, 9).expect("burst");
    let expected = head + (generated.notes + generated.attachments) as u64;
    while journal.head().expect("head") < expected {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "burst not journaled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let burst_time = started.elapsed();
    let after = d.rss_kib("VmRSS:");
    let peak = d.rss_kib("VmHWM:");
    d.stop();
    println!(
        "resident memory: idle on obsidian-help-en {:.1} MiB; after a 10,000-file burst {:.1} MiB (peak {:.1} MiB); burst written and journaled in {:.2} s",
        idle as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0,
        burst_time.as_secs_f64()
    );
    memory_figures::huge_note(BIN);
}

/// The API: 100 SSE clients during a 10,000-file burst, memory per client, latency.
fn bench_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).expect("vault");
    let state = dir.path().join("vk");
    let debounce = Duration::from_millis(100);
    // The cache off: the figures are the API's and the journal's, not the indexer's.
    let config = "[watch]\ndebounce = \"100ms\"\n[cache]\nenabled = false\n";
    let d = Daemon::start(&vault, &state, config);
    d.wait_ready(Duration::from_secs(60));
    let socket = api_figures::socket_of(BIN, &vault, &state);
    let journal = Journal::open_readonly(&state.join("state/journal.db")).expect("journal");
    api_figures::latency(&socket, &vault, &journal, debounce);
    api_figures::stalled_alone(&vault, &socket, &journal, || d.rss_kib("VmRSS:"));
    api_figures::fan_out(&socket, &vault, &journal, || d.rss_kib("VmRSS:"), 100);
    d.stop();
}

/// Waits until `cond` holds on the daemon's journal, or panics after `limit`; returns the wait.
fn wait_journal(
    journal: &Journal,
    limit: Duration,
    what: &str,
    cond: impl Fn(&Journal) -> bool,
) -> Duration {
    let started = Instant::now();
    while !cond(journal) {
        assert!(
            started.elapsed() < limit,
            "{what}: not reached within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

/// The whole daemon on an `n`-note vault, cache on (the default): first start to READY and
/// to a complete cache, with peak and settled RSS; the cache catching up after a 10,000-edit
/// burst; SIGTERM to exit once idle.
fn bench_spine(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = dir.path().join("vault");
    let generated = vaultkeeper_testkit::vaultgen::generate(&vault, n, 42).expect("generate");
    let state = dir.path().join("vk");
    let started = Instant::now();
    let mut d = Daemon::start(&vault, &state, "");
    d.wait_ready(Duration::from_secs(600));
    let ready = started.elapsed();
    let peak_ready = d.rss_kib("VmHWM:");
    let journal = Journal::open_readonly(&state.join("state/journal.db")).expect("journal");
    let caught_up = |j: &Journal| {
        let head = j.head().unwrap_or(u64::MAX);
        j.cursor("cache").ok().flatten().is_some_and(|c| c >= head)
    };
    // Complete: the cursor at the head and every file of the vault in the cache.
    let cache_db = state.join("state/cache.db");
    let files = generated.notes + generated.attachments;
    let started_wait = Instant::now();
    loop {
        wait_journal(&journal, Duration::from_secs(600), "first index", caught_up);
        if cache_files(&cache_db).is_some_and(|n| n >= files) {
            break;
        }
        assert!(
            started_wait.elapsed() < Duration::from_secs(600),
            "first index: the cache never held every file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let complete = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let settled = d.rss_kib("VmRSS:");
    let peak_first = d.rss_kib("VmHWM:");
    if n >= 100_000 {
        memory_figures::record_first_start(n, peak_first, settled);
    }

    // 10,000 edits (or every note of a smaller vault), each appending a line.
    let edits = generated.note_paths.len().min(10_000);
    let head0 = journal.head().expect("head");
    let burst_started = Instant::now();
    for rel in generated.note_paths.iter().take(edits) {
        let path = vault.join(rel);
        let mut text = std::fs::read_to_string(&path).expect("read note");
        text.push_str("\nedited in the burst\n");
        std::fs::write(&path, text).expect("write note");
    }
    let written = burst_started.elapsed();
    let target = head0 + edits as u64;
    wait_journal(&journal, Duration::from_secs(600), "burst journaled", |j| {
        j.head().unwrap_or(0) >= target
    });
    let journaled = burst_started.elapsed();
    wait_journal(
        &journal,
        Duration::from_secs(600),
        "burst indexed",
        caught_up,
    );
    let indexed = burst_started.elapsed();
    let peak_burst = d.rss_kib("VmHWM:");

    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(d.child.id().to_string())
        .status();
    let exit = d.child.wait().expect("wait");
    let stop = t0.elapsed();
    println!(
        "spine on {n} notes: first start READY {:.2} s, cache complete {:.2} s; peak RSS {:.1} MiB at READY, {:.1} MiB after the first index, settled {:.1} MiB",
        ready.as_secs_f64(),
        complete.as_secs_f64(),
        peak_ready as f64 / 1024.0,
        peak_first as f64 / 1024.0,
        settled as f64 / 1024.0
    );
    println!(
        "spine on {n} notes: {edits}-edit burst written in {:.2} s, journaled {:.2} s, cache caught up {:.2} s after the first write ({:.2} s after the last; peak RSS {:.1} MiB)",
        written.as_secs_f64(),
        journaled.as_secs_f64(),
        indexed.as_secs_f64(),
        (indexed.saturating_sub(written)).as_secs_f64(),
        peak_burst as f64 / 1024.0
    );
    println!(
        "spine on {n} notes: SIGTERM to exit when idle {:.0} ms ({exit})",
        stop.as_secs_f64() * 1000.0
    );
    if n >= 100_000 {
        table::record(table::Row {
            figure: format!("first start on {n} notes: READY / cache complete (daemon)"),
            ours: format!(
                "{:.1} s / {:.1} s",
                ready.as_secs_f64(),
                complete.as_secs_f64()
            ),
            against: "-".into(),
            aim: "under 6 s / under 10 s".into(),
            reached: Some(ready < Duration::from_secs(6) && complete < Duration::from_secs(10)),
        });
        let after_last = indexed.saturating_sub(written);
        table::record(table::Row {
            figure: format!("cache catching up after a {edits}-edit burst on {n} notes"),
            ours: format!(
                "{:.1} s after the last write ({:.1} s after the first; journaled {:.1} s)",
                after_last.as_secs_f64(),
                indexed.as_secs_f64(),
                journaled.as_secs_f64()
            ),
            against: "-".into(),
            aim: "under 2 s".into(),
            reached: Some(indexed < Duration::from_secs(2)),
        });
    }
}

/// How many files the cache at `db` holds (None while it cannot be read).
fn cache_files(db: &Path) -> Option<usize> {
    let conn = vaultkeeper_cache::schema::open_ro(db).ok()?;
    let n: i64 = conn
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .ok()?;
    usize::try_from(n).ok()
}
