//! The daemon's live status file, and reading it back for `vaultkeeper status`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use vaultkeeper_runner::RunnerStatus;
use vaultkeeper_vaultfs::paths::VaultPaths;

/// What a running daemon reports about itself, refreshed every few seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_deserializing)]
    pub consumers: Vec<RunnerStatus>,
    /// Consumers that are off, with the reason (git in a folder that is not a repository).
    #[serde(default)]
    pub off: Vec<OffConsumer>,
    /// The latest warnings and errors the daemon logged.
    #[serde(default)]
    pub recent_problems: Vec<crate::logging::RecentProblem>,
}

/// A consumer that is not running, and why; off is not unhealthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Judges `status` (raw JSON as [`read_status`] returns it) for the lock holder `pid`.
pub fn freshness(status: Option<&serde_json::Value>, pid: u32, now: DateTime<Utc>) -> Freshness {
    let Some(status) = status else {
        return Freshness::Unknown;
    };
    if status["pid"].as_u64() != Some(u64::from(pid)) {
        return Freshness::Unknown;
    }
    let Some(updated) = status["updated_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Freshness::Unknown;
    };
    let age = now.signed_duration_since(updated.with_timezone(&Utc));
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
            if last.take().is_some() {
                tracing::info!("status {} written again", path.display());
            }
        }
    }
}

/// Reads the last status written, as raw JSON (consumers' details included).
pub fn read_status(paths: &VaultPaths) -> Option<serde_json::Value> {
    let bytes = std::fs::read(status_path(paths)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_needs_this_pid_and_a_recent_write() {
        let now = Utc::now();
        let at = |secs: i64| serde_json::json!({"pid": 7, "updated_at": (now - chrono::TimeDelta::seconds(secs)).to_rfc3339()});
        assert_eq!(freshness(Some(&at(1)), 7, now), Freshness::Fresh);
        assert!(matches!(
            freshness(Some(&at(60)), 7, now),
            Freshness::Stale { age } if age.num_seconds() == 60
        ));
        assert_eq!(freshness(Some(&at(1)), 8, now), Freshness::Unknown);
        assert_eq!(freshness(None, 7, now), Freshness::Unknown);
        let garbled = serde_json::json!({"pid": 7, "updated_at": "yesterday"});
        assert_eq!(freshness(Some(&garbled), 7, now), Freshness::Unknown);
    }
}
