//! `vaultkeeper commit`: commit pending changes now (for scripts and tests).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_core::consumer::{Consumer, Durable};
use vaultkeeper_journal::Journal;

/// With a daemon running: asks it to flush (SIGUSR1) and waits until git's cursor reaches
/// the journal's head. Without one: applies the journal's pending events itself.
pub fn commit(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    if !ctx.paths.journal().exists() {
        bail!(
            "no journal yet: start the daemon with `vaultkeeper run {}`",
            ctx.paths.root.display()
        );
    }
    let journal = Journal::open(&ctx.paths.journal())?;
    let head = journal.head()?;
    match crate::lock::holder(&ctx.paths.lock()) {
        Some(pid) => {
            // A cursor alone does not mean git runs: cursors outlive a consumer turned off.
            let running = crate::status::read_status(&ctx.paths)
                .is_some_and(|l| l.consumer(vaultkeeper_git::NAME).is_some());
            if !running {
                bail!(
                    "git auto-commit is not running in the daemon (pid {pid}); see `vaultkeeper status`"
                );
            }
            let status = std::process::Command::new("kill")
                .args(["-USR1", &pid.to_string()])
                .status()
                .context("cannot signal the daemon")?;
            if !status.success() {
                bail!("cannot signal the daemon (pid {pid})");
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if journal.cursor(vaultkeeper_git::NAME)?.unwrap_or(0) >= head {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the daemon did not commit within 120 s; see `vaultkeeper status` for why"
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        None => {
            let config = &ctx.loaded.config;
            let git = match vaultkeeper_git::start(
                &ctx.paths.root,
                &config.git,
                &ctx.paths.name,
                &vaultkeeper_vaultfs::host_name(),
            )? {
                vaultkeeper_git::GitStart::On(g) => g,
                vaultkeeper_git::GitStart::Off(reason) => bail!("git auto-commit is off: {reason}"),
            };
            let mut git = *git;
            let from = journal.cursor("git")?.unwrap_or(head);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let durable = runtime.block_on(async {
                let mut pos = from;
                loop {
                    let batch = journal.read_after(pos, 1000)?;
                    let Some(last) = batch.last() else { break };
                    pos = last.seq;
                    git.handle(&batch)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                git.flush().await.map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            if let Durable::Upto(n) = durable {
                journal.set_cursor("git", n)?;
            }
        }
    }
    let repo = git2::Repository::discover(&ctx.paths.root).context("opening the repository")?;
    match repo.head().ok().and_then(|h| h.peel_to_commit().ok()) {
        Some(c) => println!(
            "{} {}",
            &c.id().to_string()[..12],
            c.summary().unwrap_or("")
        ),
        None => println!("nothing committed yet"),
    }
    Ok(ExitCode::SUCCESS)
}
