//! The daemon's live status file: its typed contents, written by the daemon and read back
//! typed by `status`, `commit`, `reindex` and `forget`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use vaultkeeper_runner::RunnerStatus;
use vaultkeeper_vaultfs::paths::VaultPaths;

/// What a running daemon reports about itself, refreshed every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// The daemon's pid.
    pub pid: u32,
    /// Its version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When this was written.
    pub updated_at: DateTime<Utc>,
    /// The vault's name.
    pub vault: String,
    /// The vault's folder.
    pub root: String,
    /// True once the first reconcile is journaled.
    pub ready: bool,
    /// True while shutting down.
    pub stopping: bool,
    /// The journal's head when written.
    pub head: u64,
    /// Each consumer's runner.
    #[serde(default)]
    pub consumers: Vec<RunnerStatus>,
    /// Consumers that are off, with the reason (git in a folder that is not a repository).
    #[serde(default)]
    pub off: Vec<OffConsumer>,
    /// The latest warnings and errors the daemon logged.
    #[serde(default)]
    pub recent_problems: Vec<crate::logging::RecentProblem>,
}

impl DaemonStatus {
    /// The runner of the consumer `name`, when the daemon runs it.
    pub fn consumer(&self, name: &str) -> Option<&RunnerStatus> {
        self.consumers.iter().find(|c| c.name == name)
    }

    /// Why the consumer `name` is off, when the daemon left it off.
    pub fn off_reason(&self, name: &str) -> Option<&str> {
        self.off
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.reason.as_str())
    }
}

/// A consumer that is not running, and why; off is not unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffConsumer {
    /// The consumer.
    pub name: String,
    /// Why it is off.
    pub reason: String,
}

/// How often a running daemon rewrites its status file.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A status older than this was not refreshed in time: the daemon is wedged, or it cannot
/// write its state folder (disk full). Several refresh periods, so a loaded machine that
/// runs the daemon late is not taken for a wedged one.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15);

/// How far the last status written can be trusted for the daemon `pid` holding the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// Written by this daemon within [`STALE_AFTER`].
    Fresh,
    /// Written by this daemon, but not refreshed for `age`.
    Stale {
        /// Time since it was last written.
        age: chrono::TimeDelta,
    },
    /// None written by this daemon: missing, unreadable, or left by an earlier one.
    Unknown,
}

/// Judges `status` (as [`read_status`] returns it) for the lock holder `pid`.
pub fn freshness(status: Option<&DaemonStatus>, pid: u32, now: DateTime<Utc>) -> Freshness {
    let Some(status) = status.filter(|s| s.pid == pid) else {
        return Freshness::Unknown;
    };
    let age = now.signed_duration_since(status.updated_at);
    match chrono::TimeDelta::from_std(STALE_AFTER) {
        Ok(limit) if age > limit => Freshness::Stale { age },
        _ => Freshness::Fresh,
    }
}

fn status_path(paths: &VaultPaths) -> std::path::PathBuf {
    paths.state_dir.join("status.json")
}

/// The last write error logged, so a lasting cause (a full disk) is logged once, not every tick.
static LAST_WRITE_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// When the last status write succeeded.
static LAST_WRITTEN: std::sync::Mutex<Option<DateTime<Utc>>> = std::sync::Mutex::new(None);

/// The `updated_at` the daemon's live status (the API's) carries: now, unless writing the
/// status fails (a full disk, an unwritable state folder), then the last good write (or
/// `started`): a daemon that cannot write its state folder shows as stale there too.
pub fn vouched_at(started: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let failing = LAST_WRITE_ERROR
        .lock()
        .map(|e| e.is_some())
        .unwrap_or(false);
    if !failing {
        return now;
    }
    LAST_WRITTEN.lock().ok().and_then(|w| *w).unwrap_or(started)
}

/// Writes the status atomically (temp file, then rename). A failure is logged once per
/// cause; `status` then shows the file as stale, so the failure is never silent.
pub fn write_status(paths: &VaultPaths, status: &DaemonStatus) {
    let path = status_path(paths);
    let tmp = path.with_extension("json.tmp");
    let result = serde_json::to_vec_pretty(status)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    let mut last = LAST_WRITE_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match result {
        Err(e) => {
            let text = e.to_string();
            if last.as_deref() != Some(text.as_str()) {
                tracing::warn!(
                    "cannot write the status {}: {text} (`vaultkeeper status` shows it as stale)",
                    path.display()
                );
                *last = Some(text);
            }
        }
        Ok(()) => {
            if let Ok(mut written) = LAST_WRITTEN.lock() {
                *written = Some(status.updated_at);
            }
            if last.take().is_some() {
                tracing::info!("status {} written again", path.display());
            }
        }
    }
}

/// Reads the last status written, typed (consumers' reports included); `None` when there
/// is none or it cannot be read (then `status` says so rather than trusting it).
pub fn read_status(paths: &VaultPaths) -> Option<DaemonStatus> {
    let bytes = std::fs::read(status_path(paths)).ok()?;
    parse_status(&bytes)
}

/// Parses a status file's bytes.
fn parse_status(bytes: &[u8]) -> Option<DaemonStatus> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_at(pid: u32, updated_at: DateTime<Utc>) -> DaemonStatus {
        DaemonStatus {
            pid,
            version: "0.1.0".into(),
            started_at: updated_at,
            updated_at,
            vault: "v".into(),
            root: "/v".into(),
            ready: true,
            stopping: false,
            head: 3,
            consumers: Vec::new(),
            off: Vec::new(),
            recent_problems: Vec::new(),
        }
    }

    #[test]
    fn freshness_needs_this_pid_and_a_recent_write() {
        let now = Utc::now();
        let at = |secs: i64| status_at(7, now - chrono::TimeDelta::seconds(secs));
        assert_eq!(freshness(Some(&at(1)), 7, now), Freshness::Fresh);
        assert!(matches!(
            freshness(Some(&at(60)), 7, now),
            Freshness::Stale { age } if age.num_seconds() == 60
        ));
        assert_eq!(freshness(Some(&at(1)), 8, now), Freshness::Unknown);
        assert_eq!(freshness(None, 7, now), Freshness::Unknown);
        let mut garbled = serde_json::to_value(at(1)).expect("serialize");
        garbled["updated_at"] = serde_json::json!("yesterday");
        let garbled = parse_status(garbled.to_string().as_bytes());
        assert_eq!(freshness(garbled.as_ref(), 7, now), Freshness::Unknown);
    }

    #[test]
    fn the_status_file_round_trips_typed() {
        use vaultkeeper_core::status::{
            AmqpReport, CacheReport, ConsumerKind, ConsumerReport, GitReport, RulesReport,
        };
        let mut status = status_at(9, Utc::now());
        let reports = [
            ConsumerReport::Cache(CacheReport { indexed: true }),
            ConsumerReport::Git(GitReport {
                last_commit: Some("abc".into()),
                ..GitReport::default()
            }),
            ConsumerReport::GitMirror(GitReport::default()),
            ConsumerReport::Amqp(AmqpReport {
                connected: true,
                ..AmqpReport::default()
            }),
            ConsumerReport::Rules(RulesReport::default()),
        ];
        for (i, report) in reports.into_iter().enumerate() {
            status.consumers.push(RunnerStatus {
                name: report.kind().as_str().into(),
                cursor: i as u64,
                read: i as u64 + 1,
                last_error: (i == 2).then(|| "failing".into()),
                dead_letters: 1,
                detail: Some(report),
            });
        }
        status.consumers.push(RunnerStatus {
            name: "custom".into(),
            ..RunnerStatus::default()
        });
        status.off.push(OffConsumer {
            name: ConsumerKind::Git.as_str().into(),
            reason: "not a repository".into(),
        });
        status.recent_problems.push(crate::logging::RecentProblem {
            at: "2026-01-01T00:00:00.000Z".into(),
            level: "WARN".into(),
            message: "m".into(),
        });
        let bytes = serde_json::to_vec_pretty(&status).expect("serialize");
        assert_eq!(parse_status(&bytes), Some(status.clone()));
        assert!(status.consumer("git").is_some() && status.consumer("nope").is_none());
        assert_eq!(status.off_reason("git"), Some("not a repository"));
    }
}
