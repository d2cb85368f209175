//! `vaultkeeper mcp`: find the vault, then serve MCP on stdio (see [`vaultkeeper_mcp`]), with
//! the write tools when `--write` or `[mcp] write` asks for them.

use std::process::ExitCode;

use anyhow::Result;

use vaultkeeper_vaultfs::paths::VaultPaths;
use vaultkeeper_write::Writer;

use super::Context;
use crate::cli::GlobalArgs;
use crate::config::Config;

/// Serves until the client closes stdin.
pub fn mcp(global: &GlobalArgs, write: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let writer = writer(&ctx.paths, &ctx.loaded.config, write)?;
    vaultkeeper_mcp::serve_stdio(&ctx.paths, writer)?;
    Ok(ExitCode::SUCCESS)
}

/// The write tools' writer when `--write` or `[mcp] write` asks for them: one rule for stdio
/// and for the daemon's MCP over HTTP.
pub fn writer(paths: &VaultPaths, config: &Config, write: bool) -> Result<Option<Writer>> {
    if !(write || config.mcp.write) {
        return Ok(None);
    }
    // Every assistant write must be revertible: without git the write tools refuse.
    Ok(Some(
        super::mv::writer_for(paths, config)?
            .require_git(true)
            .max_bytes(config.mcp.max_write_bytes),
    ))
}
