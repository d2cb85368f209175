//! `vaultkeeper events`: the journal, printed or followed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_core::event::Event;
use vaultkeeper_journal::Journal;

/// Prints events after `since`; with `follow`, keeps polling the journal for more.
pub fn events(
    global: &GlobalArgs,
    since: u64,
    follow: bool,
    json: bool,
    limit: Option<u64>,
) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let path = ctx.paths.journal();
    if !path.exists() && !follow {
        bail!(
            "no journal at {} yet: start the daemon with `vaultkeeper run {}`",
            path.display(),
            ctx.paths.root.display()
        );
    }
    let mut journal = None;
    let mut pos = since;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let mut last_try: Option<std::time::Instant> = None;
    loop {
        if journal.is_none() && path.exists() {
            journal = Some(Journal::open_readonly(&path)?);
        }
        let batch = match &journal {
            Some(j) => j.read_after(pos, 1000)?,
            None => Vec::new(),
        };
        let mut out = stdout.lock();
        for event in &batch {
            print_event(&mut out, event, json)?;
            pos = event.seq;
            printed += 1;
            if limit.is_some_and(|l| printed >= l) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        out.flush()?;
        drop(out);
        if batch.is_empty() {
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            // Caught up: a running daemon pushes the rest over its API; without one (or
            // once it stops) the journal is polled.
            if last_try.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                && crate::lock::holder(&ctx.paths.lock()).is_some()
            {
                last_try = Some(std::time::Instant::now());
                if follow_api(&ctx, &mut pos, &mut printed, limit, json)? {
                    return Ok(ExitCode::SUCCESS);
                }
                continue;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Prints the daemon's SSE stream from `pos` until it ends; true once `limit` is reached.
fn follow_api(
    ctx: &Context,
    pos: &mut u64,
    printed: &mut u64,
    limit: Option<u64>,
    json: bool,
) -> Result<bool> {
    let mut done = false;
    let path = format!("/v1/events?since={pos}");
    let followed = vaultkeeper_api::client::follow_sse(&ctx.paths.socket(), &path, |m| {
        let mut out = std::io::stdout().lock();
        if m.event.as_deref() == Some("reset") {
            eprintln!(
                "vaultkeeper: events were pruned from the journal: {}",
                m.data
            );
        } else {
            let event: Event = serde_json::from_str(&m.data).map_err(std::io::Error::other)?;
            print_event(&mut out, &event, json)?;
            *printed += 1;
        }
        out.flush()?;
        if let Some(id) = m.id.as_deref().and_then(|i| i.parse().ok()) {
            *pos = id;
        }
        done = limit.is_some_and(|l| *printed >= l);
        Ok(!done)
    });
    match followed {
        Ok(()) => Ok(done),
        Err(e) if e.is_not_listening() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn print_event(out: &mut impl Write, e: &Event, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, e)?;
        writeln!(out)
    } else {
        let ts = e.timestamp.format("%Y-%m-%d %H:%M:%S%.3f");
        match &e.old_path {
            Some(old) => writeln!(
                out,
                "{:>8}  {ts}  {:<8}  {} <- {old}",
                e.seq,
                e.event.as_str(),
                e.file_path
            ),
            None => writeln!(
                out,
                "{:>8}  {ts}  {:<8}  {}",
                e.seq,
                e.event.as_str(),
                e.file_path
            ),
        }
    }
}
