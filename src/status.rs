//! The daemon's live status file, and reading it back for `vaultkeeper status`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consumer::RunnerStatus;
use crate::paths::VaultPaths;

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

fn status_path(paths: &VaultPaths) -> std::path::PathBuf {
    paths.state_dir.join("status.json")
}

/// Writes the status atomically (temp file, then rename); failures are logged only.
pub fn write_status(paths: &VaultPaths, status: &DaemonStatus) {
    let path = status_path(paths);
    let tmp = path.with_extension("json.tmp");
    let result = serde_json::to_vec_pretty(status)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = result {
        tracing::debug!("cannot write {}: {e}", path.display());
    }
}

/// Reads the last status written, as raw JSON (consumers' details included).
pub fn read_status(paths: &VaultPaths) -> Option<serde_json::Value> {
    let bytes = std::fs::read(status_path(paths)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
