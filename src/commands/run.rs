//! `vaultkeeper run`: the daemon.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::GlobalArgs;

/// Runs the daemon until it is told to stop.
pub fn run(global: &GlobalArgs, vault: Option<&Path>) -> Result<ExitCode> {
    let ctx = Context::resolve(global, vault)?;
    let config = &ctx.loaded.config;
    crate::logging::init(
        global.log_format.unwrap_or(config.log.format),
        config.log.filter.as_deref(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vaultkeeper")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let requests = crate::daemon::signal_requests()?;
        crate::daemon::run(ctx.paths, ctx.loaded, requests).await
    })?;
    Ok(ExitCode::SUCCESS)
}
