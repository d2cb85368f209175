//! The binary's side of the local API: the daemon's [`vaultkeeper_api::Backend`] (its
//! status, control, commit, dead letters and queries, in the CLI's JSON shapes) and the
//! CLI's calls to a running daemon.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::Request;
use crate::status::DaemonStatus;
use vaultkeeper_api::{ApiError, Backend, Control, DeadLetterAction};
use vaultkeeper_journal::{Journal, JournalReader};
use vaultkeeper_vaultfs::paths::VaultPaths;

/// How long a CLI call waits for the daemon: a daemon that does not answer in this time
/// is wedged, and the caller falls back to the files it wrote.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `commit` waits for git to catch up (as `vaultkeeper commit` always did).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Calls the daemon of `paths` (see [`vaultkeeper_api::client::call`]).
pub fn call(
    paths: &VaultPaths,
    method: &str,
    path: &str,
) -> Result<Value, vaultkeeper_api::client::ClientError> {
    call_within(paths, method, path, CALL_TIMEOUT)
}

/// [`call`] with its own timeout (a commit waits for git).
pub fn call_within(
    paths: &VaultPaths,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Value, vaultkeeper_api::client::ClientError> {
    vaultkeeper_api::client::call(&paths.socket(), method, path, timeout)
}

/// The live status the daemon reports, made on each call.
pub type LiveStatus = Arc<dyn Fn() -> DaemonStatus + Send + Sync>;

/// The daemon, as the API sees it.
pub struct DaemonApi {
    paths: VaultPaths,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
    live: LiveStatus,
    /// A stop was passed on: another would end the drain at once (a second signal does).
    stop_sent: AtomicBool,
}

impl DaemonApi {
    /// The API of the daemon on `paths`, passing requests into its loop.
    pub fn new(
        paths: VaultPaths,
        requests: tokio::sync::mpsc::UnboundedSender<Request>,
        live: LiveStatus,
    ) -> DaemonApi {
        DaemonApi {
            paths,
            requests,
            live,
            stop_sent: AtomicBool::new(false),
        }
    }

    fn send(&self, req: Request) -> Result<(), ApiError> {
        self.requests
            .send(req)
            .map_err(|_| ApiError::conflict("the daemon is stopping"))
    }

    fn journal(&self) -> Result<JournalReader, ApiError> {
        JournalReader::open(&self.paths.journal()).map_err(internal)
    }
}

/// The last commit git made in the daemon, with its summary.
fn last_commit(live: &DaemonStatus) -> Option<(String, String)> {
    match live.consumer(vaultkeeper_git::NAME)?.detail.as_ref()? {
        vaultkeeper_core::status::ConsumerReport::Git(g) => {
            Some((g.last_commit.clone()?, g.last_summary.clone()?))
        }
        _ => None,
    }
}

/// An absolute path, or one that climbs out with `..`: never a note of this vault.
fn outside_the_vault(name: &str) -> bool {
    let path = std::path::Path::new(name);
    path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{e:#}"))
}

fn to_json(v: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(internal)
}

impl Backend for DaemonApi {
    fn status(&self) -> Result<Value, ApiError> {
        let live = (self.live)();
        let report = crate::commands::status::report(&self.paths, Some(live.pid), Some(live))
            .map_err(internal)?;
        to_json(report)
    }

    fn control(&self, request: Control) -> Result<(), ApiError> {
        match request {
            Control::Reload => self.send(Request::Reload),
            Control::Stop => {
                if self.stop_sent.swap(true, Ordering::SeqCst) {
                    return Ok(());
                }
                self.send(Request::Stop)
            }
        }
    }

    fn commit(&self) -> Result<Value, ApiError> {
        let live = (self.live)();
        if live.stopping {
            return Err(ApiError::conflict(
                "the daemon is stopping: it commits what is pending as it drains",
            ));
        }
        if live.consumer(vaultkeeper_git::NAME).is_none() {
            let why = live
                .off_reason(vaultkeeper_git::NAME)
                .unwrap_or("not configured");
            return Err(ApiError::conflict(format!(
                "git auto-commit is not running in the daemon ({why}); see `vaultkeeper status`"
            )));
        }
        let head = self.journal()?.head().map_err(internal)?;
        let before = last_commit(&live);
        self.send(Request::Flush)?;
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        // A one-file commit takes milliseconds: look often at first, then every 50 ms for a
        // long one. The runner's live status, not the journal: its cursor moves only once
        // the journal's has, together with the consumer's report of the commit it made.
        let started = Instant::now();
        loop {
            let now = (self.live)();
            let git = now.consumer(vaultkeeper_git::NAME);
            let cursor = git.map_or(0, |g| g.cursor);
            if cursor >= head {
                let mut reply = serde_json::json!({ "head": head, "git_cursor": cursor });
                // The commit this flush made, if any: the caller prints it without
                // opening the repository itself.
                if let Some((id, summary)) =
                    last_commit(&now).filter(|c| Some(c) != before.as_ref())
                {
                    reply["commit"] = Value::String(id);
                    reply["summary"] = Value::String(summary);
                }
                return Ok(reply);
            }
            if Instant::now() > deadline {
                let why = git
                    .and_then(|g| g.last_error.clone())
                    .unwrap_or_else(|| "no error reported".into());
                return Err(ApiError::internal(format!(
                    "git did not commit within {} s: {why}",
                    COMMIT_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(if started.elapsed() < Duration::from_millis(250) {
                Duration::from_micros(250)
            } else {
                Duration::from_millis(50)
            });
        }
    }

    fn dead_letters(&self) -> Result<Value, ApiError> {
        to_json(self.journal()?.dead_letters().map_err(internal)?)
    }

    fn dead_letter(&self, action: DeadLetterAction) -> Result<Value, ApiError> {
        // A writer connection of its own: the API never shares the daemon's.
        let journal = Journal::open(&self.paths.journal()).map_err(internal)?;
        match action {
            DeadLetterAction::Retry(id) => {
                if !journal.request_retry(id).map_err(internal)? {
                    return Err(ApiError::not_found(format!("no dead letter with id {id}")));
                }
                // The runners replay requested retries when woken.
                self.send(Request::Flush)?;
                Ok(serde_json::json!({ "retry": id }))
            }
            DeadLetterAction::Drop(id) => {
                if !journal.remove_dead_letter(id).map_err(internal)? {
                    return Err(ApiError::not_found(format!("no dead letter with id {id}")));
                }
                Ok(serde_json::json!({ "dropped": id }))
            }
        }
    }

    fn query(&self, name: &str, params: &[(String, String)]) -> Result<Value, ApiError> {
        for (key, value) in params.iter().filter(|(k, _)| k == "note") {
            if outside_the_vault(value) {
                return Err(ApiError::bad_request(format!(
                    "{key}={value:?} is outside the vault: give a vault path or a note name"
                )));
            }
        }
        let cmd = crate::render::query::from_params(name, params)
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        let mut out = Vec::new();
        crate::render::query::run_query(&self.paths.cache(), &cmd, true, &mut out).map_err(
            |e| match e.downcast_ref::<vaultkeeper_cache::CacheError>() {
                Some(vaultkeeper_cache::CacheError::NotFound(_)) => {
                    ApiError::not_found(format!("{e:#}"))
                }
                Some(
                    vaultkeeper_cache::CacheError::BadQuery(_)
                    | vaultkeeper_cache::CacheError::Refused(_)
                    | vaultkeeper_cache::CacheError::Query { .. },
                ) => ApiError::bad_request(format!("{e:#}")),
                _ => internal(e),
            },
        )?;
        serde_json::from_slice(&out).map_err(internal)
    }
}
