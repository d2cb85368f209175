//! `vaultkeeper status`: is a daemon running, and how far is each consumer.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_journal::Journal;

/// Prints the status; exit code 0 when a daemon runs and no consumer is failing.
pub fn status(global: &GlobalArgs, as_json: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let pid = crate::lock::holder(&ctx.paths.lock());
    let (head, cursors, dead) = match Journal::open_readonly(&ctx.paths.journal()) {
        Ok(j) if ctx.paths.journal().exists() => (j.head()?, j.cursors()?, j.dead_letters()?),
        _ => (0, Vec::new(), Vec::new()),
    };
    let written = pid.and_then(|_| crate::status::read_status(&ctx.paths));
    let freshness = pid.map(|p| crate::status::freshness(written.as_ref(), p, chrono::Utc::now()));
    // A file some earlier daemon left says nothing about this one.
    let live = written.filter(|_| freshness != Some(crate::status::Freshness::Unknown));
    let stale = matches!(
        freshness,
        Some(crate::status::Freshness::Stale { .. } | crate::status::Freshness::Unknown)
    );
    let age_secs = match &freshness {
        Some(crate::status::Freshness::Stale { age }) => Some(age.num_seconds().max(0)),
        _ => None,
    };
    // Every consumer with a cursor is listed, running or not: one that is off keeps its
    // place, and its lag says how much it will catch up on when it is back.
    let consumers: Vec<serde_json::Value> = cursors
        .iter()
        .map(|c| {
            let live_entry = live
                .as_ref()
                .and_then(|l| l["consumers"].as_array())
                .and_then(|a| a.iter().find(|x| x["name"] == c.consumer.as_str()))
                .cloned();
            let off_reason = live
                .as_ref()
                .and_then(|l| l["off"].as_array())
                .and_then(|a| a.iter().find(|x| x["name"] == c.consumer.as_str()))
                .and_then(|o| o["reason"].as_str())
                .unwrap_or("not configured")
                .to_string();
            let state = match (&live, &live_entry) {
                (Some(_), Some(_)) => "running",
                (Some(_), None) => "off",
                (None, _) => "daemon not running",
            };
            json!({
                "name": c.consumer,
                "state": state,
                "off_reason": (state == "off").then_some(off_reason),
                "cursor": c.seq,
                "lag": head.saturating_sub(c.seq),
                "updated_at": c.updated_at,
                "last_error": live_entry.as_ref().and_then(|l| l.get("last_error")).cloned(),
                "detail": live_entry.as_ref().and_then(|l| l.get("detail")).cloned(),
            })
        })
        .collect();
    // Healthy: a daemon runs, no consumer is failing right now, and nothing was given up
    // on. Lag alone is not a fault (git waits for its quiet period by design).
    let failing = consumers.iter().any(|c| !c["last_error"].is_null());
    // A status the daemon did not refresh cannot vouch for it (wedged, or a full disk).
    let healthy = pid.is_some() && !stale && !failing && dead.is_empty();
    let report = json!({
        "healthy": healthy,
        "vault": ctx.paths.name,
        "root": ctx.paths.root.display().to_string(),
        "state_dir": ctx.paths.state_dir.display().to_string(),
        "daemon": pid.map(|p| json!({
            "pid": p,
            "started_at": live.as_ref().map(|l| l["started_at"].clone()),
            "version": live.as_ref().map(|l| l["version"].clone()),
            "ready": live.as_ref().map(|l| l["ready"].clone()),
            "stale": stale,
            "status_updated_at": live.as_ref().map(|l| l["updated_at"].clone()),
            "status_age_secs": age_secs,
        })),
        "journal": {"head": head},
        "consumers": consumers,
        "dead_letters": dead,
        "off": live.as_ref().map(|l| l["off"].clone()).unwrap_or(serde_json::Value::Array(vec![])),
        "recent_problems": live.as_ref().map(|l| l["recent_problems"].clone()).unwrap_or(serde_json::Value::Array(vec![])),
    });
    let mut out = std::io::stdout().lock();
    if as_json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        match pid {
            Some(p) => writeln!(out, "daemon: running (pid {p})")?,
            None => writeln!(out, "daemon: not running")?,
        }
        match (&freshness, age_secs) {
            (Some(crate::status::Freshness::Stale { .. }), Some(age)) => writeln!(
                out,
                "status: stale, last refreshed {age}s ago (the daemon is wedged or cannot write {}); what follows may be out of date",
                ctx.paths.state_dir.display()
            )?,
            (Some(crate::status::Freshness::Unknown), _) => writeln!(
                out,
                "status: stale, this daemon has not written its status (see its log)"
            )?,
            _ => {}
        }
        writeln!(
            out,
            "vault: {} ({})",
            ctx.paths.name,
            ctx.paths.root.display()
        )?;
        writeln!(out, "journal head: {head}")?;
        for c in &consumers {
            if c["state"] == "off" {
                let name = c["name"].as_str().unwrap_or("?");
                writeln!(
                    out,
                    "consumer {name}: off ({}), cursor {} lag {}; its place is kept (`vaultkeeper forget {name}` drops it)",
                    c["off_reason"].as_str().unwrap_or(""),
                    c["cursor"],
                    c["lag"],
                )?;
                continue;
            }
            writeln!(
                out,
                "consumer {}: cursor {} lag {}{}",
                c["name"].as_str().unwrap_or("?"),
                c["cursor"],
                c["lag"],
                c["last_error"]
                    .as_str()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default()
            )?;
            if let Some(d) = c["detail"].as_object() {
                if let Some(commit) = d.get("last_commit").and_then(|v| v.as_str()) {
                    let at = d
                        .get("last_commit_at")
                        .and_then(|v| v.as_str())
                        .unwrap_or("?");
                    writeln!(out, "  last commit {commit} at {at}")?;
                }
                if let Some(connected) = d.get("connected").and_then(|v| v.as_bool()) {
                    let url = d.get("url").and_then(|v| v.as_str()).unwrap_or("");
                    let state = if connected {
                        "connected"
                    } else {
                        "disconnected"
                    };
                    writeln!(out, "  broker {url} {state}")?;
                }
            }
        }
        if let Some(off) = report["off"].as_array() {
            // Those with a cursor were listed above, with their lag.
            let listed = |o: &serde_json::Value| consumers.iter().any(|c| c["name"] == o["name"]);
            for o in off.iter().filter(|o| !listed(o)) {
                writeln!(
                    out,
                    "consumer {}: off ({})",
                    o["name"].as_str().unwrap_or("?"),
                    o["reason"].as_str().unwrap_or("")
                )?;
            }
        }
        if !dead.is_empty() {
            writeln!(
                out,
                "dead letters: {} (see `vaultkeeper dead-letters`)",
                dead.len()
            )?;
            for d in dead.iter().take(5) {
                writeln!(
                    out,
                    "  {} {} seq {} {}: {}",
                    d.id, d.consumer, d.seq, d.path, d.reason
                )?;
            }
        }
        if let Some(problems) = report["recent_problems"]
            .as_array()
            .filter(|p| !p.is_empty())
        {
            writeln!(out, "recent problems:")?;
            for p in problems.iter().rev().take(5) {
                writeln!(
                    out,
                    "  {} {} {}",
                    p["at"].as_str().unwrap_or(""),
                    p["level"].as_str().unwrap_or(""),
                    p["message"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
