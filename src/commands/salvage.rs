//! `vaultkeeper salvage`: the way out of a damaged journal. It keeps the damaged file, copies
//! every row SQLite can still read into a fresh journal, and arranges for the next start to
//! announce the whole vault again.
//!
//! SQLite's `.recover` lives in its shell, not in the library, so this copies table by table,
//! stepping over the unreadable pages: a damaged leaf loses the rows on it, never the rest.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde::Serialize;

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_journal::Journal;

/// What a salvage did, for the user.
#[derive(Debug, Default, Serialize)]
pub struct SalvageReport {
    /// Where the damaged journal was kept.
    pub kept: PathBuf,
    /// The new journal.
    pub journal: PathBuf,
    /// Rows copied, per table.
    pub copied: Vec<(String, u64)>,
    /// Row id ranges (first, last) that could not be read, per table.
    pub unreadable: Vec<(String, i64, i64)>,
    /// The sequence number new events continue after.
    pub head: u64,
    /// Files the next start re-announces (every file the journal knew of).
    pub files: usize,
}

/// Salvages the vault's journal (refused while a daemon runs).
pub fn salvage(global: &GlobalArgs, json: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let journal = ctx.paths.journal();
    if !journal.exists() {
        bail!("no journal at {}: nothing to salvage", journal.display());
    }
    // Held for the whole salvage: no daemon may start on a half-built journal.
    let _lock = crate::lock::DaemonLock::acquire(&ctx.paths.lock())
        .context("salvage needs the daemon stopped")?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let kept = with_suffix(&journal, &format!(".damaged-{stamp}"));
    let report = salvage_into(&journal, &kept, &ctx.paths.cache())?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "damaged journal kept as {}", report.kept.display())?;
        writeln!(out, "new journal {}", report.journal.display())?;
        for (table, n) in &report.copied {
            writeln!(out, "  {table}: {n} row(s) copied")?;
        }
        for (table, a, b) in &report.unreadable {
            writeln!(out, "  {table}: rows {a}..={b} unreadable, lost")?;
        }
        writeln!(
            out,
            "new events continue after seq {}; the next `vaultkeeper run` rescans the vault and announces its {} known file(s) again, so every consumer catches up with the disk",
            report.head, report.files
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves `journal` (with its `-wal` and `-shm`) to `kept`, then builds a new `journal` from
/// what can be read there. `cache` is the shadow cache, whose cursor the new head must pass.
pub fn salvage_into(journal: &Path, kept: &Path, cache: &Path) -> Result<SalvageReport> {
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(journal, suffix);
        if from.exists() {
            let to = with_suffix(kept, suffix);
            std::fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        }
    }
    let mut report = SalvageReport {
        kept: kept.to_path_buf(),
        journal: journal.to_path_buf(),
        ..SalvageReport::default()
    };
    // A fresh journal with the current schema; rows go in through a plain connection.
    drop(Journal::open(journal)?);
    let mut dst = Connection::open(journal)
        .with_context(|| format!("cannot open the new journal {}", journal.display()))?;
    let src = Connection::open_with_flags(kept, OpenFlags::SQLITE_OPEN_READ_ONLY).ok();
    let tx = dst.transaction()?;
    let mut high = 0i64;
    if let Some(src) = &src {
        for table in ["events", "cursors", "dead_letters", "meta"] {
            let (n, lost) = copy_rowid_table(src, &tx, table)?;
            report.copied.push((table.to_string(), n));
            for (a, b) in lost {
                report.unreadable.push((table.to_string(), a, b));
            }
        }
        // sqlite_sequence remembers seqs of pruned or lost events: never hand them out again.
        let seq: Option<i64> = src
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        high = high.max(seq.unwrap_or(0));
    }
    for sql in [
        "SELECT MAX(seq) FROM events",
        "SELECT MAX(seq) FROM cursors",
        "SELECT MAX(seq) FROM dead_letters",
    ] {
        let v: Option<i64> = tx.query_row(sql, [], |r| r.get(0))?;
        high = high.max(v.unwrap_or(0));
    }
    // The cache keeps its own cursor: events at or below it would be skipped there.
    if let Ok(c) = vaultkeeper_cache::schema::open_ro(cache)
        && let Ok(Some(seq)) = vaultkeeper_cache::schema::read_cursor(&c)
    {
        high = high.max(seq as i64);
    }
    let updated = tx.execute(
        "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events'",
        [high],
    )?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO sqlite_sequence(name, seq) VALUES ('events', ?1)",
            [high],
        )?;
    }
    report.head = high.max(0) as u64;

    // Every file the journal knew of, from the snapshot rows that read and from the events
    // that survived: their state is unknown, so the next start hashes each one again and
    // makes an event for it (created, modified or deleted) above the new head.
    let mut known: BTreeSet<String> = src.as_ref().map(snapshot_paths).unwrap_or_default();
    {
        let mut stmt = tx.prepare("SELECT body FROM events ORDER BY seq")?;
        let bodies = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for body in bodies.flatten() {
            if let Ok(e) = serde_json::from_str::<Event>(&body) {
                known.insert(e.file_path.clone());
                if e.event == Kind::Renamed
                    && let Some(old) = e.old_path
                {
                    known.insert(old);
                }
            }
        }
    }
    {
        let mut put = tx.prepare(
            "INSERT OR IGNORE INTO files(path, size, mtime_ns, ino, hash) VALUES (?1, -1, 0, 0, '')",
        )?;
        for path in &known {
            put.execute([path])?;
        }
    }
    report.files = known.len();
    tx.commit()?;
    let problems = vaultkeeper_journal::check_db(&dst, true)?;
    if !problems.is_empty() {
        bail!(
            "the new journal {} fails its own check: {}",
            journal.display(),
            vaultkeeper_journal::summarize(&problems)
        );
    }
    Ok(report)
}

/// The paths in the damaged snapshot: read forwards up to a damaged page, then backwards
/// down to it (the table has no row ids to step over it with).
fn snapshot_paths(src: &Connection) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for order in ["ASC", "DESC"] {
        let Ok(mut stmt) = src.prepare(&format!("SELECT path FROM files ORDER BY path {order}"))
        else {
            continue;
        };
        let Ok(mut rows) = stmt.query([]) else {
            continue;
        };
        while let Ok(Some(row)) = rows.next() {
            match row.get::<_, String>(0) {
                Ok(p) => {
                    out.insert(p);
                }
                Err(_) => break,
            }
        }
    }
    out
}

/// Rows of `table` with `rowid > after`, up to `limit`, or the error that stopped the read.
fn read_rows(
    src: &Connection,
    table: &str,
    cols: &[String],
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<(i64, Vec<Value>)>> {
    let sql = format!(
        "SELECT rowid, {} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        cols.join(", ")
    );
    let mut stmt = src.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params![after, limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let mut values = Vec::with_capacity(cols.len());
        for i in 0..cols.len() {
            values.push(row.get::<_, Value>(i + 1)?);
        }
        out.push((id, values));
    }
    Ok(out)
}

/// Copies every readable row of `table` (same schema on both sides), stepping over damaged
/// pages by row id; returns how many rows were copied and the ranges that were not.
fn copy_rowid_table(
    src: &Connection,
    dst: &Connection,
    table: &str,
) -> Result<(u64, Vec<(i64, i64)>)> {
    let cols: Vec<String> = {
        let mut stmt = dst.prepare(&format!("PRAGMA table_info({table})"))?;
        stmt.query_map([], |r| r.get::<_, String>(1))?
            .collect::<rusqlite::Result<_>>()?
    };
    let marks = vec!["?"; cols.len() + 1].join(", ");
    let mut insert = dst.prepare(&format!(
        "INSERT OR IGNORE INTO {table}(rowid, {}) VALUES ({marks})",
        cols.join(", ")
    ))?;
    let body_col = (table == "events")
        .then(|| cols.iter().position(|c| c == "body"))
        .flatten();
    let (mut copied, mut lost) = (0u64, Vec::new());
    let mut put = |id: i64, values: Vec<Value>, lost: &mut Vec<(i64, i64)>| -> Result<()> {
        // A body that no longer parses is as lost as an unreadable one.
        if let Some(i) = body_col
            && !matches!(&values[i], Value::Text(t) if serde_json::from_str::<Event>(t).is_ok())
        {
            lost.push((id, id));
            return Ok(());
        }
        let mut params = vec![Value::Integer(id)];
        params.extend(values);
        copied += insert.execute(params_from_iter(params))? as u64;
        Ok(())
    };
    let mut after = i64::MIN;
    loop {
        match read_rows(src, table, &cols, after, 256) {
            Ok(rows) if rows.is_empty() => break,
            Ok(rows) => {
                for (id, values) in rows {
                    after = id;
                    put(id, values, &mut lost)?;
                }
            }
            Err(_) => {
                // One row at a time tells whether the very next row is the bad one.
                if let Ok(rows) = read_rows(src, table, &cols, after, 1)
                    && let Some((id, values)) = rows.into_iter().next()
                {
                    after = id;
                    put(id, values, &mut lost)?;
                    continue;
                }
                match skip_damage(src, table, &cols, after) {
                    Some(next) => {
                        lost.push((after.saturating_add(1), next));
                        after = next;
                    }
                    None => {
                        lost.push((after.saturating_add(1), i64::MAX));
                        break;
                    }
                }
            }
        }
    }
    Ok((copied, lost))
}

/// From a failing `after`, the smallest row id past which reading works again (`None` when
/// nothing past it reads): doubling steps to get past the damage, then a binary search back.
fn skip_damage(src: &Connection, table: &str, cols: &[String], after: i64) -> Option<i64> {
    let reads = |from: i64| read_rows(src, table, cols, from, 1).is_ok();
    let mut step: i64 = 1;
    let ok = loop {
        let probe = after.checked_add(step)?;
        if reads(probe) {
            break probe;
        }
        step = step.checked_mul(2)?;
    };
    let (mut bad, mut good) = (after, ok);
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if reads(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Some(good)
}
