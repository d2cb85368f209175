//! The periodic `status.<host>` message: who is alive, with counters the daemon supplies.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::status::AmqpStatus;

/// Supplies the daemon's counters (events, lag per consumer, errors) for each heartbeat.
pub type Counters = Arc<dyn Fn() -> Value + Send + Sync>;

/// `status.<host>`, with dots in the host name turned into `_` so that `status.*`
/// matches exactly one word per host.
pub(crate) fn routing_key(host: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c == '.' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("status.{}", if host.is_empty() { "unknown" } else { &host })
}

/// The heartbeat body.
pub(crate) fn body(host: &str, status: &AmqpStatus, counters: Option<&Counters>) -> Value {
    json!({
        "type": "heartbeat",
        "host": host,
        "timestamp": Utc::now(),
        "exchange": status.exchange,
        "published": status.published,
        "connects": status.connects,
        "errors": status.errors,
        "counters": counters.map(|f| f()).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_key_is_one_word_per_host() {
        assert_eq!(routing_key("laptop.local"), "status.laptop_local");
        assert_eq!(routing_key(""), "status.unknown");
    }

    #[test]
    fn body_carries_counters() {
        let c: Counters = Arc::new(|| json!({"events": 3}));
        let b = body("h", &AmqpStatus::default(), Some(&c));
        assert_eq!(b["counters"]["events"], 3);
        assert_eq!(b["host"], "h");
    }
}
