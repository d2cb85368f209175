//! The API's event stream under load: 100 SSE clients (plus one that never reads) during a
//! 10,000-file burst, each must receive every event in order; the delivery time is set
//! against the journaling time of the same burst, the memory against the idle daemon's.
//! And write-to-client latency over SSE against write-to-journal on the same writes, and
//! what one client that never reads costs the daemon, measured alone.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vaultkeeper_journal::Journal;
use vaultkeeper_testkit::stats::percentile;

/// Connects an SSE client from `since`; returns the reader past the response headers.
fn connect(socket: &Path, since: u64) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(socket).expect("connect to the API socket");
    write!(
        s,
        "GET /v1/events?since={since} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("headers");
        if line == "\r\n" || line.is_empty() {
            return r;
        }
    }
}

/// Reads `id:` lines (the body is chunked; ids are whole lines inside chunks) until `n`
/// events arrived; checks they are consecutive from `since + 1`.
fn read_n(mut r: BufReader<UnixStream>, since: u64, n: u64) -> Result<Instant, String> {
    let mut next = since + 1;
    let mut line = String::new();
    while next <= since + n {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("stream ended at {next}"));
        }
        if let Some(id) = line.trim_end().strip_prefix("id: ") {
            let id: u64 = id.parse().map_err(|e| format!("id {id:?}: {e}"))?;
            if id != next {
                return Err(format!("expected id {next}, got {id}"));
            }
            next += 1;
        }
    }
    Ok(Instant::now())
}

/// The daemon's socket, as `vaultkeeper open --json` names it in the same environment.
pub fn socket_of(bin: &str, vault: &Path, state: &Path) -> PathBuf {
    let out = std::process::Command::new(bin)
        .args(["open", "--json"])
        .arg("--vault")
        .arg(vault)
        .env("VAULTKEEPER_STATE_DIR", state.join("state"))
        .env("VAULTKEEPER_CONFIG", state.join("config.toml"))
        .output()
        .expect("open --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("open --json");
    PathBuf::from(doc["socket"].as_str().expect("socket"))
}

/// Waits until the journal holds `head`.
fn journaled(journal: &Journal, head: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while journal.head().expect("head") < head {
        assert!(Instant::now() < deadline, "burst not journaled");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One client that connects and never reads, alone, during a 10,000-file burst: the daemon's
/// memory after it, set against the same burst with no client (run first, so the daemon's
/// own high water from a burst is already in the baseline).
pub fn stalled_alone(vault: &Path, socket: &Path, journal: &Journal, rss: impl Fn() -> u64) {
    let burst = |name: &str, seed: u64| {
        let head = journal.head().expect("head");
        let g = vaultkeeper_testkit::vaultgen::generate(&vault.join(name), 10_000, seed)
            .expect("burst");
        journaled(journal, head + (g.notes + g.attachments) as u64);
        // The last events reach the stalled client's stream (if it reads at all) meanwhile.
        std::thread::sleep(Duration::from_millis(500));
    };
    let before = rss();
    burst("quiet-a", 11);
    let without = rss();
    let stalled = connect(socket, journal.head().expect("head"));
    burst("quiet-b", 12);
    let with = rss();
    drop(stalled);
    println!(
        "api stalled client alone: RSS {:.1} MiB idle, {:.1} MiB after a 10,000-file burst with no client, {:.1} MiB after a second burst with one client that never reads: +{:.1} MiB for it (bound: one batch of 256 events queued, the shared window of at most 4,096 events / 32 MiB, socket buffers)",
        before as f64 / 1024.0,
        without as f64 / 1024.0,
        with as f64 / 1024.0,
        with.saturating_sub(without) as f64 / 1024.0,
    );
}

/// 100 readers and one that never reads, during a burst of `files` files.
pub fn fan_out(
    socket: &Path,
    vault: &Path,
    journal: &Journal,
    rss: impl Fn() -> u64,
    clients: usize,
) {
    let head = journal.head().expect("head");
    let idle = rss();
    let stalled = connect(socket, head);
    let readers: Vec<BufReader<UnixStream>> = (0..clients).map(|_| connect(socket, head)).collect();
    // Connected and waiting: what each costs at rest.
    std::thread::sleep(Duration::from_millis(500));
    let connected = rss();
    let started = Instant::now();
    let generated =
        vaultkeeper_testkit::vaultgen::generate(&vault.join("burst"), 10_000, 9).expect("burst");
    let n = (generated.notes + generated.attachments) as u64;
    let threads: Vec<_> = readers
        .into_iter()
        .map(|r| std::thread::spawn(move || read_n(r, head, n)))
        .collect();
    let mut journaled = None;
    while journaled.is_none() {
        if journal.head().expect("head") >= head + n {
            journaled = Some(started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "burst not journaled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut last = started;
    let mut peak_during = rss();
    for t in threads {
        match t.join().expect("client thread") {
            Ok(done) => last = last.max(done),
            Err(e) => panic!("a client lost events: {e}"),
        }
        peak_during = peak_during.max(rss());
    }
    let delivered = last.duration_since(started);
    let journaled = journaled.unwrap_or_default();
    let after = rss();
    drop(stalled);
    println!(
        "api fan-out: {clients} SSE clients + 1 that never reads, {n}-file burst: every client got all {n} in order; \
         delivered to all in {:.2} s ({:.0} events/s summed over clients) vs journaled in {:.2} s ({:.2}x)",
        delivered.as_secs_f64(),
        (n as f64 * clients as f64) / delivered.as_secs_f64(),
        journaled.as_secs_f64(),
        delivered.as_secs_f64() / journaled.as_secs_f64().max(1e-9)
    );
    println!(
        "api memory: idle {:.1} MiB; with {} connected clients {:.1} MiB ({:.0} KiB per client); after the burst with the stalled client still connected {:.1} MiB",
        idle as f64 / 1024.0,
        clients + 1,
        connected as f64 / 1024.0,
        connected.saturating_sub(idle) as f64 / (clients + 1) as f64,
        after.max(peak_during) as f64 / 1024.0,
    );
}

/// Write-to-client over SSE and write-to-journal, on the same single-file writes.
pub fn latency(socket: &Path, vault: &Path, journal: &Journal, debounce: Duration) {
    let mut client = connect(socket, journal.head().expect("head"));
    let mut to_client = Vec::new();
    let mut to_journal = Vec::new();
    let mut line = String::new();
    for i in 0..100 {
        let head = journal.head().expect("head");
        let t0 = Instant::now();
        std::fs::write(
            vault.join(format!("api-lat{i}.md")),
            format!("latency {i}\n"),
        )
        .expect("write");
        let mut journaled = None;
        // The client blocks on its socket; the journal is read by the reader thread below.
        let (tx, rx) = std::sync::mpsc::channel();
        let j = journal.path().to_path_buf();
        std::thread::spawn(move || {
            let j = Journal::open_readonly(&j).expect("journal");
            while j.head().unwrap_or(0) <= head {
                std::thread::sleep(Duration::from_micros(500));
            }
            let _ = tx.send(Instant::now());
        });
        loop {
            line.clear();
            if client.read_line(&mut line).expect("stream") == 0 {
                panic!("stream ended");
            }
            if line.starts_with("id: ") {
                break;
            }
        }
        let got = t0.elapsed();
        if let Ok(at) = rx.recv_timeout(Duration::from_secs(10)) {
            journaled = Some(at.duration_since(t0));
        }
        to_client.push(got.saturating_sub(debounce));
        to_journal.push(journaled.unwrap_or(got).saturating_sub(debounce));
    }
    to_client.sort();
    to_journal.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "api latency beyond the {} ms debounce: write-to-SSE-client p50 {:.1} ms, p95 {:.1} ms; write-to-journal on the same writes p50 {:.1} ms, p95 {:.1} ms",
        debounce.as_millis(),
        ms(percentile(&to_client, 0.5)),
        ms(percentile(&to_client, 0.95)),
        ms(percentile(&to_journal, 0.5)),
        ms(percentile(&to_journal, 0.95)),
    );
}
