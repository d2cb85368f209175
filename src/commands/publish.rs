//! `vaultkeeper publish --snapshot`: one `origin: snapshot` event per current file of the
//! vault, published with confirms, so a new remote consumer can start from the whole vault.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_core::event::{Event, Kind, Origin};

/// Files read and published per round, so a large vault never sits in memory at once.
const CHUNK: usize = 4096;

/// Publishes the snapshot and prints how many messages the broker confirmed.
pub fn publish(global: &GlobalArgs, snapshot: bool) -> Result<ExitCode> {
    if !snapshot {
        anyhow::bail!("publish: say what to publish (--snapshot)");
    }
    let ctx = Context::resolve(global, None)?;
    let config = &ctx.loaded.config;
    crate::logging::init(
        global.log_format.unwrap_or(config.log.format),
        config.log.filter.as_deref(),
    );
    if config.amqp.effective_url().is_none() {
        return Err(vaultkeeper_amqp::AmqpError::NoUrl.into());
    }
    let rules = std::sync::Arc::new(
        vaultkeeper_vaultfs::ignore::IgnoreRules::for_vault(&ctx.paths, &config.watch).0,
    );
    // The journal's head before the files are read: every file is at least that new. Snapshot
    // events carry it as their seq, so a remote cache can tell them from older live events.
    let head = vaultkeeper_journal::Journal::head_of(&ctx.paths.journal())?;
    let listing = vaultkeeper_vaultfs::list_files(&ctx.paths.root, &rules);
    if !listing.unlistable.is_empty() {
        eprintln!(
            "warning: {} folder(s) could not be listed; their files are not in the snapshot",
            listing.unlistable.len()
        );
    }
    let files = listing.files;
    let host = vaultkeeper_vaultfs::host_name();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vaultkeeper-publish")
        .build()
        .context("cannot start the async runtime")?;
    let published = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let mut signals = signal_hook_tokio::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])
        .context("cannot install signal handlers")?;
        let handle = signals.handle();
        let token = shutdown.clone();
        tokio::spawn(async move {
            if signals.next().await.is_some() {
                token.cancel();
            }
        });
        let mut published = 0u64;
        for chunk in files.chunks(CHUNK) {
            let events: Vec<Event> = chunk
                .iter()
                .filter_map(|rel| snapshot_event(&ctx, rel, head, &host))
                .collect();
            published +=
                vaultkeeper_amqp::publish_snapshot(&config.amqp, &host, &events, shutdown.clone())
                    .await?;
        }
        handle.close();
        anyhow::Ok(published)
    })?;
    let mut out = std::io::stdout().lock();
    if global.json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "published": published,
                "exchange": config.amqp.exchange,
                "seq": head,
            }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "published {published} snapshot events to {}",
            config.amqp.exchange
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A `file.created` event with `origin: snapshot` for `rel` as it is now on disk; `None`
/// (logged) when it vanished or cannot be read.
fn snapshot_event(ctx: &Context, rel: &str, head: u64, host: &str) -> Option<Event> {
    let abs = ctx.paths.root.join(rel);
    let max = ctx.loaded.config.watch.max_content_bytes;
    let read = match vaultkeeper_vaultfs::read_file(&abs, max) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(file = %rel, error = %e, "snapshot: skipping a file that cannot be read");
            return None;
        }
    };
    let mut e = read
        .event(Kind::Created, rel)
        .source(&ctx.paths.name, host)
        .origin(Origin::Snapshot)
        .build();
    e.seq = head;
    Some(e)
}
