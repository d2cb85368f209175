//! The shadow cache from the command line: queries (read-only) and `reindex`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cli::GlobalArgs;

/// Runs one query against the vault's cache, read-only (safe while the daemon runs).
pub fn query(global: &GlobalArgs, cmd: &crate::cache::QueryCommand) -> Result<ExitCode> {
    if let Some(db) = &global.cache {
        // A cache given by name (e.g. built by `consume cache --into`): no vault involved.
        if !db.is_file() {
            anyhow::bail!("no shadow cache at {}", db.display());
        }
        let mut out = std::io::stdout().lock();
        crate::cache::run_query(db, cmd, global.json, &mut out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = Context::resolve(global, None)?;
    let db = ctx.paths.cache();
    if !db.exists() {
        anyhow::bail!(
            "no shadow cache at {} yet: start the daemon (`vaultkeeper run {}`) or run `vaultkeeper reindex`",
            db.display(),
            ctx.paths.root.display()
        );
    }
    let mut out = std::io::stdout().lock();
    crate::cache::run_query(&db, cmd, global.json, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Rebuilds the cache from the files on disk, with the watcher's ignore rules.
pub fn reindex(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    ctx.paths.ensure_state_dir()?;
    let config = &ctx.loaded.config;
    let rules = std::sync::Arc::new(
        crate::watch::ignore::IgnoreRules::for_vault(&ctx.paths, &config.watch).0,
    );
    let files = crate::watch::scan::list_files(&ctx.paths.root, &rules);
    // The disk is at least as new as every journaled event, so the cache may claim the head.
    let head = crate::journal::Journal::head_of(&ctx.paths.journal())?;
    let started = std::time::Instant::now();
    let stats = crate::cache::reindex(
        &ctx.paths.cache(),
        &ctx.paths.root,
        files.into_iter(),
        head,
        &config.cache,
    )?;
    let mut out = std::io::stdout().lock();
    if global.json {
        serde_json::to_writer_pretty(&mut out, &stats)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "reindexed {} notes and {} other files ({} links, {} unresolved) in {:.2} s",
            stats.notes,
            stats.attachments,
            stats.links,
            stats.unresolved,
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
