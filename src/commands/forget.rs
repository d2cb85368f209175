//! `vaultkeeper forget NAME`: removes a consumer's cursor on the user's word, the only way
//! a cursor goes away (a consumer that is off for a run keeps its place).

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_journal::Journal;

/// Drops `consumer`'s cursor; refused while a running daemon feeds that consumer.
pub fn forget(global: &GlobalArgs, consumer: &str) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let path = ctx.paths.journal();
    if !path.exists() {
        bail!("no journal at {}: nothing to forget", path.display());
    }
    if let Some(pid) = crate::lock::holder(&ctx.paths.lock()) {
        let live = crate::status::read_status(&ctx.paths);
        let running = live.is_some_and(|l| l.consumer(consumer).is_some());
        if running {
            bail!(
                "consumer {consumer:?} runs in the daemon (pid {pid}): turn it off in the configuration and restart first"
            );
        }
    }
    let journal = Journal::open(&path)?;
    if !journal.forget_cursor(consumer)? {
        let known: Vec<String> = journal.cursors()?.into_iter().map(|c| c.consumer).collect();
        bail!(
            "no consumer {consumer:?} in {} (known: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    println!("forgot consumer {consumer}: it no longer holds back the journal");
    Ok(ExitCode::SUCCESS)
}
