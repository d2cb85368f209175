//! [`Backend`]: what the daemon answers through the API. Its methods block (they read
//! SQLite or wait for a commit); the API calls them off the executor.

use serde_json::Value;

use crate::error::ApiError;

/// A request that changes what the daemon does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Reread the configuration.
    Reload,
    /// Stop gracefully (pending changes are journaled and committed first).
    Stop,
}

/// What to do with one dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Hand it to its consumer again.
    Retry(i64),
    /// Forget it.
    Drop(i64),
}

/// The daemon side of the API.
pub trait Backend: Send + Sync + 'static {
    /// The status report, in the shape `vaultkeeper status --json` prints.
    fn status(&self) -> Result<Value, ApiError>;
    /// Passes a control request to the daemon's loop.
    fn control(&self, request: Control) -> Result<(), ApiError>;
    /// Commits pending changes now and waits until git has; returns what it committed.
    fn commit(&self) -> Result<Value, ApiError>;
    /// The dead letters, in the shape `vaultkeeper dead-letters --json` prints.
    fn dead_letters(&self) -> Result<Value, ApiError>;
    /// Retries or drops one dead letter.
    fn dead_letter(&self, action: DeadLetterAction) -> Result<Value, ApiError>;
    /// Runs the cache query `name` (`search`, `note`, ...) with the request's parameters,
    /// returning the JSON `vaultkeeper <name> --json` prints.
    fn query(&self, name: &str, params: &[(String, String)]) -> Result<Value, ApiError>;
}
