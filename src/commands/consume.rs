//! `vaultkeeper consume`: runs a consumer on this machine from a RabbitMQ queue, until
//! SIGINT/SIGTERM.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Context;
use crate::cli::{ConsumeTarget, GlobalArgs};
use crate::config::Config;

/// Consumes `queue` (bound with `binds`, default `file.#`) into `target`.
///
/// With `into`, no vault is needed: the configuration comes from `--config`,
/// `$VAULTKEEPER_CONFIG` or the user's config file, and the environment. Without it, the
/// vault's state folder is the target (refused while a daemon runs for that vault).
pub fn consume(
    global: &GlobalArgs,
    target: ConsumeTarget,
    queue: &str,
    binds: &[String],
    into: Option<&Path>,
) -> Result<ExitCode> {
    let (config, dir) = target_dir(global, into)?;
    crate::logging::init(
        global.log_format.unwrap_or(config.log.format),
        config.log.filter.as_deref(),
    );
    if config.amqp.effective_url().is_none() {
        return Err(vaultkeeper_amqp::AmqpError::NoUrl.into());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("cache.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vaultkeeper-consume")
        .build()
        .context("cannot start the async runtime")?;
    let stats = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = stop_on_signals(shutdown.clone())?;
        let amqp = &config.amqp;
        let result = match target {
            ConsumeTarget::Cache => {
                // No vault root: content missing from an event (too large, binary) is indexed
                // as metadata only, and no full reindex from disk ever runs.
                let cache = vaultkeeper_cache::CacheConsumer::open(&db, None, &config.cache)
                    .with_context(|| format!("cannot open the shadow cache {}", db.display()))?;
                tracing::info!(queue, cache = %db.display(), "consume cache: building the shadow cache from the queue");
                vaultkeeper_amqp::consume_queue(amqp, queue, binds, cache, shutdown).await
            }
            ConsumeTarget::Git => {
                vaultkeeper_git::init_repo(&dir, None)?;
                let mut git_cfg = config.git.clone();
                git_cfg.enabled = Some(true);
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let git = vaultkeeper_git::GitConsumer::open(&dir, &git_cfg, &name, &vaultkeeper_vaultfs::host_name())?;
                tracing::info!(queue, repo = %dir.display(), "consume git: mirroring and committing");
                let mirror = vaultkeeper_git::mirror::MirrorConsumer::new(dir.clone(), git);
                vaultkeeper_amqp::consume_queue(amqp, queue, binds, mirror, shutdown).await
            }
            ConsumeTarget::Exec => {
                let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(config.clone()));
                let rules = vaultkeeper_rules::RulesConsumer::new(dir.clone(), rx)?;
                tracing::info!(queue, rules = rules.rules().len(), "consume exec: running rules");
                vaultkeeper_amqp::consume_queue(amqp, queue, binds, rules, shutdown).await
            }
        };
        signals.close();
        result.map_err(anyhow::Error::from)
    })?;
    tracing::info!(
        acked = stats.acked,
        dead_lettered = stats.dead_lettered,
        "consume: stopped"
    );
    let mut out = std::io::stdout().lock();
    if global.json {
        serde_json::to_writer(&mut out, &stats)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "consumed {} messages from {queue} into {} ({} dead-lettered, {} requeued)",
            stats.acked,
            dir.display(),
            stats.dead_lettered,
            stats.requeued
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The configuration and the folder to build into.
fn target_dir(global: &GlobalArgs, into: Option<&Path>) -> Result<(Config, PathBuf)> {
    if let Some(dir) = into {
        let loaded = crate::config::load(global.config.as_deref(), None)?;
        return Ok((loaded.config, dir.to_path_buf()));
    }
    let ctx = Context::resolve(global, None)?;
    if let Some(pid) = crate::lock::holder(&ctx.paths.lock()) {
        anyhow::bail!(
            "a daemon (pid {pid}) runs for {} and owns its cache: give --into DIR",
            ctx.paths.root.display()
        );
    }
    ctx.paths.ensure_state_dir()?;
    Ok((ctx.loaded.config, ctx.paths.state_dir.clone()))
}

/// Cancels `shutdown` on the first SIGINT/SIGTERM; a second one exits at once (what is
/// acked is durable, the rest comes again).
fn stop_on_signals(shutdown: CancellationToken) -> Result<signal_hook_tokio::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook_tokio::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    let handle = signals.handle();
    tokio::spawn(async move {
        if signals.next().await.is_some() {
            tracing::info!("stop requested: finishing the current message");
            shutdown.cancel();
        }
        if signals.next().await.is_some() {
            tracing::warn!("second stop signal: exiting now");
            std::process::exit(130);
        }
    });
    Ok(handle)
}
