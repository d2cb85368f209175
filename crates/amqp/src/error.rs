//! The AMQP error type; every message is built from redacted URLs and scrubbed broker text.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to RabbitMQ. No variant ever holds a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AmqpError {
    /// Neither `[amqp] url` nor `VAULTKEEPER_AMQP_URL` / `RABBITMQ_URL` is set.
    #[error("amqp: no broker URL (set [amqp] url, VAULTKEEPER_AMQP_URL or RABBITMQ_URL)")]
    NoUrl,
    /// The URL does not parse; `url` is already redacted.
    #[error("amqp: invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The redacted URL.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// `[amqp] ca_file` cannot be read.
    #[error("amqp: cannot read ca_file {}: {reason}", path.display())]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The broker refused the user name or password.
    #[error(
        "amqp: access refused by {url}: wrong user name or password, or no access to the vhost"
    )]
    AccessRefused {
        /// The redacted URL.
        url: String,
    },
    /// The broker is unreachable or the connection broke.
    #[error("amqp: connection to {url} failed: {reason}")]
    Connection {
        /// The redacted URL.
        url: String,
        /// What happened (scrubbed).
        reason: String,
    },
    /// A channel-level failure (declaration refused, channel closed by the broker).
    #[error("amqp: {what} failed: {reason}")]
    Channel {
        /// The operation, naming the exchange or queue.
        what: String,
        /// The broker's reason (scrubbed).
        reason: String,
    },
    /// A declaration conflicts with what exists on the broker (different arguments or type).
    /// Retrying does not help: fix the configuration or delete the old queue.
    #[error("amqp: {what} refused by the broker: {reason}")]
    Precondition {
        /// The declaration, naming the exchange or queue.
        what: String,
        /// The broker's reason.
        reason: String,
    },
    /// The broker answered a publish with a nack.
    #[error("amqp: broker nacked the message for {file_path} (seq {seq})")]
    Nack {
        /// The event's sequence number.
        seq: u64,
        /// The event's file.
        file_path: String,
    },
    /// No answer in time.
    #[error("amqp: {what} timed out after {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
    /// Stopped by the shutdown token.
    #[error("amqp: cancelled")]
    Cancelled,
}

impl AmqpError {
    /// True for errors that retrying can fix (the broker is down, a connection broke, a nack).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AmqpError::AccessRefused { .. }
                | AmqpError::Connection { .. }
                | AmqpError::Channel { .. }
                | AmqpError::Nack { .. }
                | AmqpError::Timeout { .. }
        )
    }
}
