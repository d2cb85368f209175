//! RabbitMQ: the forwarder consumer, the remote queue consumer and their shared connection handling.
//!
//! One mechanism publishes events with pipelined publisher confirms ([`Forwarder`]); the
//! snapshot publisher reuses it. [`consume_queue`] runs any [`vaultkeeper_core::consumer::Consumer`]
//! from a durable quorum queue on a machine that only sees the broker, on the one runner
//! (`vaultkeeper_runner`) with the queue as its source (queue_source.rs); declare.rs holds
//! the broker objects it needs, validate.rs what a message must be.

mod config;
mod connection;
mod consume;
mod declare;
mod error;
mod heartbeat;
mod publish;
mod queue_source;
mod status;
mod url;
mod validate;

pub use config::{AmqpConfig, ForwarderStart, QueueType, SecretUrl};
pub use connection::{Login, check_login};
pub use consume::{ConsumeStats, QUEUE_HEADER, REASON_HEADER, consume_queue};
pub use declare::{dead_letter_exchange, dead_queue};
pub use validate::{InvalidEvent, validate};

pub use error::AmqpError;
pub use heartbeat::Counters;
pub use publish::{Forwarder, publish_snapshot};
pub use status::{AmqpStatus, StatusHandle};
pub use url::{has_password, redact};
