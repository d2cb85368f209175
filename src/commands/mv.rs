//! `vaultkeeper mv OLD NEW`: move or rename a note or a folder with its links kept whole (see
//! [`vaultkeeper_write::Writer::mv`]); `--dry-run` prints the plan.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use vaultkeeper_vaultfs::paths::VaultPaths;
use vaultkeeper_write::{Actor, Writer, Written};

use super::Context;
use crate::cli::GlobalArgs;
use crate::config::Config;

/// The vault's writer: its root, its cache, and git as `[git]` says.
pub fn writer(ctx: &Context) -> Result<Writer> {
    writer_for(&ctx.paths, &ctx.loaded.config)
}

/// The writer of the vault at `paths` with `config`'s git settings.
pub fn writer_for(paths: &VaultPaths, config: &Config) -> Result<Writer> {
    Ok(Writer::new(
        &paths.root,
        &paths.cache(),
        &config.git,
        &paths.name,
        &vaultkeeper_vaultfs::host_name(),
    )?)
}

/// Moves `from` to `to`, printing what moved and which links changed.
pub fn mv(global: &GlobalArgs, from: &str, to: &str, dry_run: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let actor = Actor {
        via: "vaultkeeper".into(),
        tool: "mv".into(),
        client: None,
    };
    let done = writer(&ctx)?.mv(from, to, None, dry_run, &actor)?;
    let mut out = std::io::stdout().lock();
    if global.json {
        serde_json::to_writer_pretty(&mut out, &done)?;
        writeln!(out)?;
    } else {
        human(&done, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn human(w: &Written, out: &mut dyn Write) -> std::io::Result<()> {
    let verb = if w.dry_run { "would move" } else { "moved" };
    for (a, b) in &w.moved {
        writeln!(out, "{verb} {a} -> {b}")?;
    }
    for l in &w.links {
        writeln!(out, "  {}:{}: {} -> {}", l.file_after, l.line, l.old, l.new)?;
    }
    for l in &w.links_lost {
        writeln!(out, "  not rewritten: {l}")?;
    }
    let notes: std::collections::BTreeSet<&str> =
        w.links.iter().map(|l| l.file_after.as_str()).collect();
    writeln!(
        out,
        "{} link(s) {} in {} note(s){}",
        w.links.len(),
        if w.dry_run { "to rewrite" } else { "rewritten" },
        notes.len(),
        match &w.commit {
            Some(c) => format!("; commit {}", &c[..c.len().min(12)]),
            None => String::new(),
        }
    )
}
