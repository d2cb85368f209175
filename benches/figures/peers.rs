//! Peers of issue #15, whole processes on the same vaults in the same run: markdown-vault-mcp's
//! `index` and basic-memory's first index of a project (`project add`, which indexes the
//! folder; its `sync` command of earlier versions) against `vaultkeeper reindex`, on
//! obsidian-help-en and a generated 10,000-note vault. Both peers come from PyPI into a venv
//! (`VAULTKEEPER_BENCH_PEERS_VENV`, default `target/peers-venv`; made here when absent), never
//! committed. A peer run past `VAULTKEEPER_BENCH_PEER_LIMIT` seconds (default 900) is stopped
//! and reported as a lower bound.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::table;

/// How one timed run ended.
enum Outcome {
    Done(Duration),
    /// Stopped at the limit.
    Limit(Duration),
    Failed(String),
}

fn limit() -> Duration {
    let secs = std::env::var("VAULTKEEPER_BENCH_PEER_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(900u64);
    Duration::from_secs(secs)
}

/// Runs `cmd` in its own process group, killing the group at `limit`.
fn timed(mut cmd: Command, limit: Duration) -> Outcome {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start: {e}")),
    };
    // stderr is read on a thread so a chatty peer never blocks on a full pipe.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let took = t0.elapsed();
                let err = reader.join().unwrap_or_default();
                return if status.success() {
                    Outcome::Done(took)
                } else {
                    let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                    Outcome::Failed(format!("{status}: {tail}"))
                };
            }
            Ok(None) if t0.elapsed() >= limit => {
                // `--`: without it procps' kill reads `-PGID` as an option and kills nothing.
                let _ = Command::new("kill")
                    .args(["-KILL", "--"])
                    .arg(format!("-{}", child.id()))
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Limit(t0.elapsed());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Outcome::Failed(format!("wait: {e}")),
        }
    }
}

/// A Python of 3.12 or later (basic-memory needs it): on PATH, or under pyenv.
fn python() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = ["python3.13", "python3.12", "python3"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(rd) = std::fs::read_dir(&versions) {
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path().join("bin/python3")))
                .collect();
            found.sort();
            found.reverse();
            candidates.extend(found);
        }
    }
    for c in &candidates {
        let ok = Command::new(c)
            .args([
                "-c",
                "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(c.clone());
        }
    }
    Err("no Python 3.12 or later here (basic-memory needs it; tried python3.13, python3.12, python3, ~/.pyenv/versions/*)".into())
}

/// The venv with both peers, made (and the peers installed from PyPI) when absent.
fn venv() -> Result<PathBuf, String> {
    let dir = std::env::var_os("VAULTKEEPER_BENCH_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers-venv"));
    let ready = |d: &Path| {
        d.join("bin/markdown-vault-mcp").is_file() && d.join("bin/basic-memory").is_file()
    };
    if ready(&dir) {
        return Ok(dir);
    }
    let py = python()?;
    let made = Command::new(&py)
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .map_err(|e| format!("{}: {e}", py.display()))?;
    if !made.success() {
        return Err(format!(
            "`{} -m venv {}` failed",
            py.display(),
            dir.display()
        ));
    }
    let out = Command::new(dir.join("bin/pip"))
        .args(["install", "-q", "markdown-vault-mcp", "basic-memory"])
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !out.status.success() || !ready(&dir) {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(2).collect::<Vec<_>>().join(" | ");
        return Err(format!(
            "`pip install markdown-vault-mcp basic-memory` failed: {tail}"
        ));
    }
    Ok(dir)
}

fn show(o: &Outcome) -> String {
    match o {
        Outcome::Done(d) => format!("{:.2} s", d.as_secs_f64()),
        Outcome::Limit(d) => format!("over {:.0} s (stopped at the limit)", d.as_secs_f64()),
        Outcome::Failed(e) => format!("failed ({e})"),
    }
}

/// How many times faster we are; `>` for a peer stopped at the limit.
fn ratio(ours: &Outcome, theirs: &Outcome) -> String {
    match (ours, theirs) {
        (Outcome::Done(a), Outcome::Done(b)) => {
            format!("{:.1}x", b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        }
        (Outcome::Done(a), Outcome::Limit(b)) => {
            format!("> {:.1}x", b.as_secs_f64() / a.as_secs_f64().max(1e-9))
        }
        _ => "-".into(),
    }
}

/// One vault: our reindex (median of 3, a fresh state folder each), then each peer once on a
/// fresh index of its own.
fn one_vault(bin: &str, venv: &Path, name: &str, vault: &Path, work: &Path) {
    let mut ours = Vec::new();
    let mut failed = None;
    for i in 0..3 {
        let mut cmd = Command::new(bin);
        cmd.arg("--vault")
            .arg(vault)
            .arg("reindex")
            .env("VAULTKEEPER_STATE_DIR", work.join(format!("vk-state-{i}")))
            .env("VAULTKEEPER_CONFIG", work.join("none.toml"));
        match timed(cmd, limit()) {
            Outcome::Done(d) => ours.push(d),
            other => failed = Some(other),
        }
    }
    let ours = match failed {
        Some(f) => f,
        None => {
            ours.sort();
            Outcome::Done(ours[ours.len() / 2])
        }
    };
    let mut mvm = Command::new(venv.join("bin/markdown-vault-mcp"));
    mvm.arg("index")
        .arg("--source-dir")
        .arg(vault)
        .arg("--index-path")
        .arg(work.join("mvm-index.db"))
        .arg("--force")
        .env("HOME", work.join("mvm-home"));
    let mvm = timed(mvm, limit());
    let home = work.join("bm-home");
    let _ = std::fs::create_dir_all(&home);
    let mut bm = Command::new(venv.join("bin/basic-memory"));
    bm.args(["project", "add", "bench"])
        .arg(vault)
        .env("HOME", &home);
    let bm = timed(bm, limit());
    println!(
        "peers on {name}: `vaultkeeper reindex` {} (median of 3) | markdown-vault-mcp `index --force` {}: we are {} | basic-memory first index (`project add`) {}: we are {}",
        show(&ours),
        show(&mvm),
        ratio(&ours, &mvm),
        show(&bm),
        ratio(&ours, &bm)
    );
    for (peer, o) in [
        ("markdown-vault-mcp `index`", &mvm),
        ("basic-memory first index", &bm),
    ] {
        table::record(table::Row {
            figure: format!("full index of {name}: `vaultkeeper reindex` vs {peer}"),
            ours: show(&ours),
            against: format!("{} ({})", show(o), ratio(&ours, o)),
            aim: "report the ratio".into(),
            reached: None,
        });
    }
}

/// The peers section.
pub fn run(bin: &str) {
    let venv = match venv() {
        Ok(v) => v,
        Err(why) => {
            println!("peers: SKIPPED: {why}");
            return;
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            println!("peers: no temporary folder: {e}");
            return;
        }
    };
    let _ = std::fs::write(dir.path().join("none.toml"), "");
    let mut vaults: Vec<(&str, PathBuf)> = Vec::new();
    match super::help_vault() {
        Some(help) => {
            let copy = dir.path().join("help");
            let ok = Command::new("cp")
                .arg("-r")
                .arg(&help)
                .arg(&copy)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                vaults.push(("obsidian-help-en", copy));
            } else {
                println!("peers: cannot copy the help vault");
            }
        }
        None => println!("peers: the help vault is absent (VAULTKEEPER_HELP_VAULT): skipped"),
    }
    let generated = dir.path().join("generated");
    match vaultkeeper_testkit::vaultgen::generate(&generated, 10_000, 42) {
        Ok(_) => vaults.push(("a generated 10,000-note vault", generated)),
        Err(e) => println!("peers: cannot generate the vault: {e}"),
    }
    for (i, (name, vault)) in vaults.iter().enumerate() {
        let work = dir.path().join(format!("work-{i}"));
        if std::fs::create_dir_all(&work).is_err() {
            println!("peers: cannot make {}", work.display());
            continue;
        }
        let _ = std::fs::write(work.join("none.toml"), "");
        one_vault(bin, &venv, name, vault, &work);
    }
}
