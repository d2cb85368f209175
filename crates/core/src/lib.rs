//! vaultkeeper-core: the types every other crate speaks.
//!
//! - [`event`]: the event envelope (journal row, AMQP body, `events --json`) and its builder,
//! - [`file`]: what the watcher last saw of a file,
//! - [`consumer`]: the consumer contract the one runner drives,
//! - [`retry`]: the one retry policy (jittered exponential backoff),
//! - [`child`]: how child processes are started without the daemon's secrets.

pub mod child;
pub mod consumer;
pub mod event;
pub mod file;
pub mod retry;
