//! `vaultkeeper dead-letters`: events consumers gave up on; retry or drop them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_journal::Journal;

/// Lists dead letters, or retries or drops one.
pub fn dead_letters(
    global: &GlobalArgs,
    retry: Option<i64>,
    drop: Option<i64>,
    json: bool,
) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    if !ctx.paths.journal().exists() {
        bail!("no journal at {} yet", ctx.paths.journal().display());
    }
    let journal = Journal::open(&ctx.paths.journal())?;
    let mut out = std::io::stdout().lock();
    if let Some(id) = drop {
        if !journal.remove_dead_letter(id)? {
            bail!("no dead letter with id {id}");
        }
        writeln!(out, "dropped dead letter {id}")?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = retry
        && crate::lock::holder(&ctx.paths.lock()).is_some()
    {
        // The daemon's API marks it and wakes the runners; a signal when it does not answer.
        match crate::api::call(&ctx.paths, "POST", &format!("/v1/dead-letters/{id}/retry")) {
            Ok(_) => {
                writeln!(out, "retry of dead letter {id} handed to the daemon")?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(e @ vaultkeeper_api::client::ClientError::Refused { .. }) => return Err(e.into()),
            Err(e) => tracing::debug!("retry without the API: {e}"),
        }
    }
    if let Some(id) = retry {
        if !journal.request_retry(id)? {
            bail!("no dead letter with id {id}");
        }
        match crate::lock::holder(&ctx.paths.lock()) {
            Some(pid) => {
                // SIGUSR1 wakes the runners, which replay requested retries first.
                let _ = std::process::Command::new("kill")
                    .args(["-USR1", &pid.to_string()])
                    .status();
                writeln!(
                    out,
                    "retry of dead letter {id} handed to the daemon (pid {pid})"
                )?;
            }
            None => writeln!(
                out,
                "dead letter {id} will be retried when the daemon starts"
            )?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let letters = journal.dead_letters()?;
    if json {
        serde_json::to_writer_pretty(&mut out, &letters)?;
        writeln!(out)?;
    } else if letters.is_empty() {
        writeln!(out, "no dead letters")?;
    } else {
        for d in &letters {
            writeln!(
                out,
                "{:>5}  {:<8} seq {:<8} {}  attempts {}{}\n       {}",
                d.id,
                d.consumer,
                d.seq,
                d.path,
                d.attempts,
                if d.retry_requested {
                    "  (retry pending)"
                } else {
                    ""
                },
                d.reason
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
