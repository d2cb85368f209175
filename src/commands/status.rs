//! `vaultkeeper status`: is a daemon running, and how far is each consumer. The report is
//! gathered once, typed ([`StatusReport`]), then rendered by [`render_json`] or [`render_text`].

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::Context;
use crate::cli::GlobalArgs;
use crate::logging::RecentProblem;
use crate::status::{DaemonStatus, Freshness, OffConsumer};
use vaultkeeper_core::status::ConsumerReport;
use vaultkeeper_journal::{DeadLetter, Journal};
use vaultkeeper_vaultfs::paths::VaultPaths;

/// Prints the status; exit code 0 when a daemon runs and no consumer is failing.
pub fn status(global: &GlobalArgs, as_json: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let report = gather(&ctx)?;
    let mut out = std::io::stdout().lock();
    if as_json {
        render_json(&report, &mut out)?;
    } else {
        render_text(&report, &mut out)?;
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Everything `status` shows, in the shape `status --json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReport {
    /// A daemon runs, its status is fresh, no consumer fails, no dead letters.
    pub healthy: bool,
    /// The vault's name.
    pub vault: String,
    /// The vault's folder.
    pub root: String,
    /// The state folder.
    pub state_dir: String,
    /// The daemon holding the lock, if any.
    pub daemon: Option<DaemonView>,
    /// The journal.
    pub journal: JournalView,
    /// Every consumer with a cursor, running or not.
    pub consumers: Vec<ConsumerView>,
    /// Events given up on.
    pub dead_letters: Vec<DeadLetter>,
    /// Consumers the daemon left off, and why.
    pub off: Vec<OffConsumer>,
    /// The daemon's latest warnings and errors.
    pub recent_problems: Vec<RecentProblem>,
    /// How far the status file can be trusted (shown in text only).
    #[serde(skip)]
    pub freshness: Option<Freshness>,
}

/// The daemon part of [`StatusReport`].
#[derive(Debug, Serialize, Deserialize)]
pub struct DaemonView {
    /// The lock holder's pid.
    pub pid: u32,
    /// When it started (from a status file it wrote).
    pub started_at: Option<DateTime<Utc>>,
    /// Its version.
    pub version: Option<String>,
    /// Whether its first scan is done.
    pub ready: Option<bool>,
    /// Its status file is not fresh (wedged, a full disk, or not written yet).
    pub stale: bool,
    /// When its status file was written.
    pub status_updated_at: Option<DateTime<Utc>>,
    /// How old that is, when stale.
    pub status_age_secs: Option<i64>,
}

/// The journal part of [`StatusReport`].
#[derive(Debug, Serialize, Deserialize)]
pub struct JournalView {
    /// The last seq appended.
    pub head: u64,
}

/// Whether a consumer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsumerState {
    /// The daemon runs it.
    #[serde(rename = "running")]
    Running,
    /// The daemon runs, this consumer not.
    #[serde(rename = "off")]
    Off,
    /// No daemon (or none whose status can be trusted).
    #[serde(rename = "daemon not running")]
    DaemonNotRunning,
}

/// One consumer in [`StatusReport`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsumerView {
    /// Its name (cursor key).
    pub name: String,
    /// Whether it runs.
    pub state: ConsumerState,
    /// Why it is off, when it is.
    pub off_reason: Option<String>,
    /// Its durable cursor.
    pub cursor: u64,
    /// Events it has not applied yet.
    pub lag: u64,
    /// When its cursor last moved.
    pub updated_at: String,
    /// Its failure right now.
    pub last_error: Option<String>,
    /// Its own report.
    pub detail: Option<ConsumerReport>,
}

/// The report: from the daemon's API when one answers (live), else from the journal and
/// the status file it last wrote (a wedged daemon does not answer; its file shows its age).
fn gather(ctx: &Context) -> Result<StatusReport> {
    let pid = crate::lock::holder(&ctx.paths.lock());
    if pid.is_some() {
        match crate::api::call(&ctx.paths, "GET", "/v1/status") {
            Ok(json) => {
                if let Ok(report) = serde_json::from_value::<StatusReport>(json) {
                    return Ok(report);
                }
            }
            Err(e) => tracing::debug!("status without the API: {e}"),
        }
    }
    let written = pid.and_then(|_| crate::status::read_status(&ctx.paths));
    report(&ctx.paths, pid, written)
}

/// The report for the lock holder `pid` whose status is `written` (the file it wrote, or
/// the daemon's own live status), with the journal's head, cursors and dead letters.
pub fn report(
    paths: &VaultPaths,
    pid: Option<u32>,
    written: Option<DaemonStatus>,
) -> Result<StatusReport> {
    let (head, cursors, dead) = match Journal::open_readonly(&paths.journal()) {
        Ok(j) if paths.journal().exists() => (j.head()?, j.cursors()?, j.dead_letters()?),
        _ => (0, Vec::new(), Vec::new()),
    };
    let freshness = pid.map(|p| crate::status::freshness(written.as_ref(), p, Utc::now()));
    // A file some earlier daemon left says nothing about this one.
    let live: Option<DaemonStatus> = written.filter(|_| freshness != Some(Freshness::Unknown));
    let stale = matches!(
        freshness,
        Some(Freshness::Stale { .. } | Freshness::Unknown)
    );
    let age_secs = match &freshness {
        Some(Freshness::Stale { age }) => Some(age.num_seconds().max(0)),
        _ => None,
    };
    // Every consumer with a cursor is listed, running or not: one that is off keeps its
    // place, and its lag says how much it will catch up on when it is back.
    let consumers: Vec<ConsumerView> = cursors
        .into_iter()
        .map(|c| {
            let entry = live.as_ref().and_then(|l| l.consumer(&c.consumer));
            let state = match (&live, entry) {
                (Some(_), Some(_)) => ConsumerState::Running,
                (Some(_), None) => ConsumerState::Off,
                (None, _) => ConsumerState::DaemonNotRunning,
            };
            let off_reason = (state == ConsumerState::Off).then(|| {
                live.as_ref()
                    .and_then(|l| l.off_reason(&c.consumer))
                    .unwrap_or("not configured")
                    .to_string()
            });
            ConsumerView {
                state,
                off_reason,
                cursor: c.seq,
                lag: head.saturating_sub(c.seq),
                updated_at: c.updated_at,
                last_error: entry.and_then(|e| e.last_error.clone()),
                detail: entry.and_then(|e| e.detail.clone()),
                name: c.consumer,
            }
        })
        .collect();
    // Healthy: a daemon runs, no consumer is failing right now, and nothing was given up
    // on. Lag alone is not a fault (git waits for its quiet period by design).
    let failing = consumers.iter().any(|c| c.last_error.is_some());
    // A status the daemon did not refresh cannot vouch for it (wedged, or a full disk).
    let healthy = pid.is_some() && !stale && !failing && dead.is_empty();
    let daemon = pid.map(|pid| DaemonView {
        pid,
        started_at: live.as_ref().map(|l| l.started_at),
        version: live.as_ref().map(|l| l.version.clone()),
        ready: live.as_ref().map(|l| l.ready),
        stale,
        status_updated_at: live.as_ref().map(|l| l.updated_at),
        status_age_secs: age_secs,
    });
    let (off, recent_problems) = match live {
        Some(l) => (l.off, l.recent_problems),
        None => (Vec::new(), Vec::new()),
    };
    Ok(StatusReport {
        healthy,
        vault: paths.name.clone(),
        root: paths.root.display().to_string(),
        state_dir: paths.state_dir.display().to_string(),
        daemon,
        journal: JournalView { head },
        consumers,
        dead_letters: dead,
        off,
        recent_problems,
        freshness,
    })
}

/// `status --json`: the report as pretty JSON.
pub fn render_json(report: &StatusReport, out: &mut impl Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)?;
    Ok(())
}

/// `status`: the report as lines for a person.
pub fn render_text(report: &StatusReport, out: &mut impl Write) -> Result<()> {
    match &report.daemon {
        Some(d) => writeln!(out, "daemon: running (pid {})", d.pid)?,
        None => writeln!(out, "daemon: not running")?,
    }
    let age_secs = report.daemon.as_ref().and_then(|d| d.status_age_secs);
    match (&report.freshness, age_secs) {
        (Some(Freshness::Stale { .. }), Some(age)) => writeln!(
            out,
            "status: stale, last refreshed {age}s ago (the daemon is wedged or cannot write {}); what follows may be out of date",
            report.state_dir
        )?,
        (Some(Freshness::Unknown), _) => writeln!(
            out,
            "status: stale, this daemon has not written its status (see its log)"
        )?,
        _ => {}
    }
    writeln!(out, "vault: {} ({})", report.vault, report.root)?;
    writeln!(out, "journal head: {}", report.journal.head)?;
    for c in &report.consumers {
        if c.state == ConsumerState::Off {
            let name = &c.name;
            writeln!(
                out,
                "consumer {name}: off ({}), cursor {} lag {}; its place is kept (`vaultkeeper forget {name}` drops it)",
                c.off_reason.as_deref().unwrap_or(""),
                c.cursor,
                c.lag,
            )?;
            continue;
        }
        writeln!(
            out,
            "consumer {}: cursor {} lag {}{}",
            c.name,
            c.cursor,
            c.lag,
            c.last_error
                .as_deref()
                .map(|e| format!(" error: {e}"))
                .unwrap_or_default()
        )?;
        render_detail(c.detail.as_ref(), out)?;
    }
    // Those with a cursor were listed above, with their lag.
    let listed = |o: &OffConsumer| report.consumers.iter().any(|c| c.name == o.name);
    for o in report.off.iter().filter(|o| !listed(o)) {
        writeln!(out, "consumer {}: off ({})", o.name, o.reason)?;
    }
    if !report.dead_letters.is_empty() {
        writeln!(
            out,
            "dead letters: {} (see `vaultkeeper dead-letters`)",
            report.dead_letters.len()
        )?;
        for d in report.dead_letters.iter().take(5) {
            writeln!(
                out,
                "  {} {} seq {} {}: {}",
                d.id, d.consumer, d.seq, d.path, d.reason
            )?;
        }
    }
    if !report.recent_problems.is_empty() {
        writeln!(out, "recent problems:")?;
        for p in report.recent_problems.iter().rev().take(5) {
            writeln!(out, "  {} {} {}", p.at, p.level, p.message)?;
        }
    }
    Ok(())
}

/// The lines a consumer's own report adds under it.
fn render_detail(detail: Option<&ConsumerReport>, out: &mut impl Write) -> Result<()> {
    match detail {
        Some(ConsumerReport::Git(g) | ConsumerReport::GitMirror(g)) => {
            if let Some(commit) = &g.last_commit {
                let at = g
                    .last_commit_at
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                    .unwrap_or_else(|| "?".into());
                writeln!(out, "  last commit {commit} at {at}")?;
            }
        }
        Some(ConsumerReport::Amqp(a)) => {
            let state = if a.connected {
                "connected"
            } else {
                "disconnected"
            };
            writeln!(out, "  broker {} {state}", a.url)?;
        }
        Some(ConsumerReport::Cache(_) | ConsumerReport::Rules(_)) | None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultkeeper_core::status::{AmqpReport, GitReport};

    fn view(name: &str, state: ConsumerState, detail: Option<ConsumerReport>) -> ConsumerView {
        ConsumerView {
            name: name.into(),
            state,
            off_reason: (state == ConsumerState::Off).then(|| "not configured".into()),
            cursor: 4,
            lag: 1,
            updated_at: "2026-01-01T00:00:00Z".into(),
            last_error: None,
            detail,
        }
    }

    fn report() -> StatusReport {
        let at = DateTime::from_timestamp(1_700_000_000, 0);
        StatusReport {
            healthy: true,
            vault: "v".into(),
            root: "/v".into(),
            state_dir: "/s".into(),
            daemon: Some(DaemonView {
                pid: 7,
                started_at: at,
                version: Some("0.1.0".into()),
                ready: Some(true),
                stale: false,
                status_updated_at: at,
                status_age_secs: None,
            }),
            journal: JournalView { head: 5 },
            consumers: vec![
                view(
                    "git",
                    ConsumerState::Running,
                    Some(ConsumerReport::Git(GitReport {
                        last_commit: Some("abc".into()),
                        last_commit_at: at,
                        ..GitReport::default()
                    })),
                ),
                view(
                    "amqp",
                    ConsumerState::Running,
                    Some(ConsumerReport::Amqp(AmqpReport {
                        connected: true,
                        url: "amqp://guest:***@h/".into(),
                        ..AmqpReport::default()
                    })),
                ),
                view("rules", ConsumerState::Off, None),
            ],
            dead_letters: Vec::new(),
            off: vec![OffConsumer {
                name: "cache".into(),
                reason: "disabled".into(),
            }],
            recent_problems: Vec::new(),
            freshness: Some(Freshness::Fresh),
        }
    }

    #[test]
    fn text_shows_each_consumer_and_its_report() {
        let mut out = Vec::new();
        render_text(&report(), &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("daemon: running (pid 7)"), "{text}");
        assert!(
            text.contains(
                "consumer git: cursor 4 lag 1\n  last commit abc at 2023-11-14T22:13:20Z"
            ),
            "{text}"
        );
        assert!(
            text.contains("  broker amqp://guest:***@h/ connected"),
            "{text}"
        );
        assert!(
            text.contains("consumer rules: off (not configured), cursor 4 lag 1"),
            "{text}"
        );
        assert!(text.contains("consumer cache: off (disabled)"), "{text}");
    }

    #[test]
    fn json_keeps_the_shape_scripts_read() {
        let mut out = Vec::new();
        render_json(&report(), &mut out).expect("render");
        let json: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(json["daemon"]["pid"], 7);
        assert_eq!(json["journal"]["head"], 5);
        assert_eq!(json["consumers"][0]["state"], "running");
        assert_eq!(json["consumers"][0]["detail"]["last_commit"], "abc");
        assert_eq!(json["consumers"][1]["detail"]["connected"], true);
        assert_eq!(json["consumers"][2]["off_reason"], "not configured");
        assert!(json["consumers"][2]["detail"].is_null());
        assert_eq!(json["off"][0]["name"], "cache");
        assert!(json.get("freshness").is_none());
    }
}
