//! `vaultkeeper mcp`: find the vault, then serve MCP on stdio (see [`vaultkeeper_mcp`]), with
//! the write tools when `--write` or `[mcp] write` asks for them.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cli::GlobalArgs;

/// Serves until the client closes stdin.
pub fn mcp(global: &GlobalArgs, write: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let cfg = &ctx.loaded.config;
    let writer = if write || cfg.mcp.write {
        // Every assistant write must be revertible: without git the write tools refuse.
        Some(
            super::mv::writer(&ctx)?
                .require_git(true)
                .max_bytes(cfg.mcp.max_write_bytes),
        )
    } else {
        None
    };
    vaultkeeper_mcp::serve_stdio(&ctx.paths, writer)?;
    Ok(ExitCode::SUCCESS)
}
