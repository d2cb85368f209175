//! `vaultkeeper commit`: commit pending changes now (for scripts and tests).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_journal::Journal;

/// Asks the daemon's API to commit: its reply, or `None` when it does not answer (then a
/// signal does).
fn commit_through_api(ctx: &Context) -> Result<Option<serde_json::Value>> {
    match crate::api::call_within(&ctx.paths, "POST", "/v1/commit", Duration::from_secs(130)) {
        Ok(reply) => Ok(Some(reply)),
        Err(e @ vaultkeeper_api::client::ClientError::Refused { .. }) => Err(e.into()),
        Err(e) => {
            tracing::debug!("commit without the API: {e}");
            Ok(None)
        }
    }
}

/// With a daemon running: asks its API to commit (SIGUSR1 when it does not answer) and waits until git's cursor reaches
/// the journal's head. Without one: runs git on the runner until it is caught up.
pub fn commit(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    if !ctx.paths.journal().exists() {
        bail!(
            "no journal yet: start the daemon with `vaultkeeper run {}`",
            ctx.paths.root.display()
        );
    }
    let daemon = crate::lock::holder(&ctx.paths.lock());
    if let Some(pid) = daemon
        && let Some(reply) = commit_through_api(&ctx)?
    {
        tracing::debug!("daemon {pid} committed through its API");
        // The commit the daemon made: printed as it reports it, without opening the
        // repository here (that cost a third of the command on 20,000 tracked files).
        if let (Some(id), Some(summary)) = (reply["commit"].as_str(), reply["summary"].as_str()) {
            println!("{} {summary}", id.get(..12).unwrap_or(id));
            return Ok(ExitCode::SUCCESS);
        }
        return print_head(&ctx);
    }
    let journal = Journal::open(&ctx.paths.journal())?;
    let head = journal.head()?;
    match daemon {
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
            // Never started in a daemon: nothing of the history is git's to commit.
            if journal.cursor("git")?.is_none() {
                journal.set_cursor("git", head)?;
            }
            drop(journal);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // The daemon's runner, until caught up with the head: the same retries and
            // dead letters, then a flush. Bounded like the daemon's commit.
            let settings = vaultkeeper_runner::RunnerSettings::from(&config.runner);
            let status = vaultkeeper_runner::StatusCell::default();
            let journal_path = ctx.paths.journal();
            let ran = runtime.block_on(async {
                let replay =
                    vaultkeeper_runner::catch_up(*git, journal_path, settings, status.clone());
                tokio::time::timeout(Duration::from_secs(120), replay).await
            });
            match ran {
                Ok(result) => result.context("replaying the journal into git")?,
                Err(_) => {
                    let why = status.lock().ok().and_then(|s| s.last_error.clone());
                    bail!(
                        "git did not commit within 120 s: {}",
                        why.unwrap_or_else(|| "no error reported".to_string())
                    );
                }
            }
        }
    }
    print_head(&ctx)
}

/// Prints HEAD's commit as `<id> <summary>`, as `vaultkeeper commit` reports what it did.
fn print_head(ctx: &Context) -> Result<ExitCode> {
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
