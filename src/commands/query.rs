//! The shadow cache from the command line: queries (read-only) and `reindex`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cli::GlobalArgs;

/// Runs one query against the vault's cache, read-only (safe while the daemon runs).
pub fn query(global: &GlobalArgs, cmd: &crate::render::query::QueryCommand) -> Result<ExitCode> {
    if let Some(db) = &global.cache {
        // A cache given by name (e.g. built by `consume cache --into`): no vault involved.
        if !db.is_file() {
            anyhow::bail!("no shadow cache at {}", db.display());
        }
        let mut out = std::io::stdout().lock();
        crate::render::query::run_query(db, cmd, global.json, &mut out)?;
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
    crate::render::query::run_query(&db, cmd, global.json, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
