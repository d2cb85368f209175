//! vaultkeeper-core: the types every other crate speaks, and nothing that does I/O.
//!
//! A tour, in the order an event travels:
//!
//! - [`file`]: what the watcher last saw of a file,
//! - [`event`]: the event envelope (journal row, AMQP body, `events --json`) and its builder,
//! - [`consumer`]: the consumer contract the one runner drives (durability, failure, status),
//! - [`retry`]: the one retry policy (jittered exponential backoff),
//! - [`status`]: the consumer names ([`status::ConsumerKind`], the cursor keys) and the typed
//!   report each consumer gives for `vaultkeeper status` ([`status::ConsumerReport`]),
//! - [`blocking`]: blocking work (SQLite, git2) off the async executor,
//! - [`child`]: how child processes are started without the daemon's secrets.
//!
//! Every crate may depend on core; core depends on none of them, so a type two crates must
//! share (a consumer's report read by the binary) is defined here as data only.

pub mod blocking;
pub mod child;
pub mod consumer;
pub mod event;
pub mod file;
pub mod memory;
pub mod retry;
pub mod status;
