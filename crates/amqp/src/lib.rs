//! RabbitMQ: the forwarder consumer, the remote queue consumer and their shared connection handling.
//!
//! One mechanism publishes events with pipelined publisher confirms ([`Forwarder`]); the
//! snapshot publisher reuses it. [`consume_queue`] runs any [`vaultkeeper_core::consumer::Consumer`]
//! from a durable quorum queue on a machine that only sees the broker.

mod config;
mod connection;
mod consume;
mod error;
mod heartbeat;
mod publish;
mod status;
mod url;

pub use config::{AmqpConfig, ForwarderStart, QueueType, SecretUrl};
pub use connection::{Login, check_login};
pub use consume::{
    ConsumeStats, QUEUE_HEADER, REASON_HEADER, consume_queue, dead_letter_exchange, dead_queue,
    validate,
};

pub use error::AmqpError;
pub use heartbeat::Counters;
pub use publish::{Forwarder, publish_snapshot};
pub use status::{AmqpStatus, StatusHandle};
pub use url::{has_password, redact};
