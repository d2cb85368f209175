//! `vaultkeeper reindex`: rebuild the cache from the files on disk, in the daemon when one runs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::GlobalArgs;

/// Rebuilds the cache from the files on disk, with the watcher's ignore rules.
///
/// While a daemon runs with its cache consumer, the rebuild is done by that consumer, in its
/// runner (asked for through the cache database and SIGUSR2), so no live event can fall
/// between the rebuild and the updates after it. Without one, the journal's head is read
/// before the files are listed: the listing then includes every event up to it.
pub fn reindex(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    ctx.paths.ensure_state_dir()?;
    let config = &ctx.loaded.config;
    let started = std::time::Instant::now();
    let stats = match daemon_with_cache(&ctx) {
        Some(pid) => reindex_in_daemon(&ctx, pid)?,
        None => {
            let head = vaultkeeper_journal::Journal::head_of(&ctx.paths.journal())?;
            let rules = std::sync::Arc::new(
                vaultkeeper_vaultfs::ignore::IgnoreRules::for_vault(&ctx.paths, &config.watch).0,
            );
            let listing = vaultkeeper_vaultfs::list_files(&ctx.paths.root, &rules);
            if !listing.unlistable.is_empty() {
                eprintln!(
                    "warning: {} folder(s) could not be listed; their files are not indexed",
                    listing.unlistable.len()
                );
            }
            let files = listing.files;
            vaultkeeper_cache::reindex(
                &ctx.paths.cache(),
                &ctx.paths.root,
                files.into_iter(),
                head,
                &config.cache,
            )?
        }
    };
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

/// The pid of a daemon running for the vault with its cache consumer, if there is one. A
/// daemon still starting has not written its status yet: that is waited for, so the rebuild
/// never runs beside a live cache consumer.
fn daemon_with_cache(ctx: &Context) -> Option<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let pid = crate::lock::holder(&ctx.paths.lock())?;
        let live = crate::status::read_status(&ctx.paths).filter(|l| l.pid == pid);
        if let Some(live) = live {
            return live.consumer(vaultkeeper_cache::NAME).map(|_| pid);
        }
        if std::time::Instant::now() > deadline {
            tracing::warn!(
                pid,
                "the daemon has not reported its consumers; rebuilding here"
            );
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Asks the daemon's cache consumer for the rebuild and waits until it is served.
fn reindex_in_daemon(ctx: &Context, pid: u32) -> Result<vaultkeeper_cache::ReindexStats> {
    use vaultkeeper_cache::ReindexState;
    let db = ctx.paths.cache();
    let token = uuid::Uuid::now_v7().to_string();
    vaultkeeper_cache::request_reindex(&db, &token, &ctx.loaded.config.cache)?;
    let signalled = std::process::Command::new("kill")
        .args(["-USR2", &pid.to_string()])
        .status()
        .context("cannot signal the daemon")?;
    if !signalled.success() {
        anyhow::bail!("cannot signal the daemon (pid {pid})");
    }
    // Generous: a rebuild of 100,000 notes takes about 15 s on two cores.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1800);
    loop {
        match vaultkeeper_cache::reindex_state(&db)? {
            ReindexState::Done(stats) => return Ok(stats),
            ReindexState::Unknown => anyhow::bail!(
                "the cache {} was rebuilt, but without figures",
                db.display()
            ),
            ReindexState::Pending => {}
        }
        if crate::lock::holder(&ctx.paths.lock()).is_none() {
            anyhow::bail!(
                "the daemon (pid {pid}) stopped before rebuilding the cache; it does so on its next batch, or run `vaultkeeper reindex` again"
            );
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the daemon (pid {pid}) has not rebuilt the cache within 30 minutes; see `vaultkeeper status`"
            );
        }
        // The daemon's rebuild takes as long as the vault needs; this only polls for it.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
