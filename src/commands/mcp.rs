//! `vaultkeeper mcp`: find the vault, then serve MCP on stdio (see [`vaultkeeper_mcp`]).

use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cli::GlobalArgs;

/// Serves until the client closes stdin.
pub fn mcp(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    vaultkeeper_mcp::serve_stdio(&ctx.paths)?;
    Ok(ExitCode::SUCCESS)
}
