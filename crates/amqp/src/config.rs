//! `[amqp]` configuration: broker URL (with environment overrides), names, limits and timings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::url::redact;

/// The broker URL. It may hold a password, so `Debug` and `Serialize` show it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The URL with its password: only for connecting, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact(&self.0))
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact(&self.0))
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SecretUrl, D::Error> {
        String::deserialize(d).map(SecretUrl)
    }
}

/// The kind of queue `consume` declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, with a delivery limit (the default).
    Quorum,
    /// A classic durable queue (single node).
    Classic,
}

/// Where a forwarder without a cursor (turned on for the first time) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwarderStart {
    /// Every event the journal still holds, so a remote shadow cache gets every file (the
    /// default).
    Beginning,
    /// Only the events journaled from the daemon's start on (its start-up scan included).
    Head,
}

/// The `[amqp]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// Broker URL (`amqp://user:pass@host:5672/vhost`, `amqps://…`); the forwarder is on when set.
    /// `VAULTKEEPER_AMQP_URL`, then `RABBITMQ_URL`, override it.
    pub url: Option<SecretUrl>,
    /// Durable topic exchange the events go to.
    pub exchange: String,
    /// Most messages published and not yet confirmed at once.
    pub max_in_flight: usize,
    /// Interval of the `status.<host>` heartbeat message; `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// AMQP connection heartbeat (dead-peer detection); `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub connection_heartbeat: Duration,
    /// PEM file with the CA for `amqps://` brokers with a private CA; system roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for a connection (TCP, TLS and AMQP handshake).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for one publish or one confirm before the batch is retried.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// First delay before reconnecting; doubles with jitter up to `reconnect_max`.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// `consume`: unacknowledged messages the broker hands over at once.
    pub prefetch: u16,
    /// `consume`: queue type of the queues it declares.
    pub queue_type: QueueType,
    /// `consume`: deliveries of a failing message before it goes to `<queue>.dead`
    /// (also the quorum queue's `x-delivery-limit`).
    pub delivery_limit: u32,
    /// Where a new forwarder starts: `beginning` (every event the journal holds) or `head`.
    pub start: ForwarderStart,
}

impl Default for AmqpConfig {
    fn default() -> AmqpConfig {
        AmqpConfig {
            url: None,
            exchange: "vaultkeeper.events".to_string(),
            max_in_flight: 1024,
            heartbeat: Duration::from_secs(60),
            connection_heartbeat: Duration::from_secs(30),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            prefetch: 10,
            queue_type: QueueType::Quorum,
            delivery_limit: 5,
            start: ForwarderStart::Beginning,
        }
    }
}

/// Environment variables that override `[amqp] url`, first match wins.
pub const URL_ENV: [&str; 2] = ["VAULTKEEPER_AMQP_URL", "RABBITMQ_URL"];

impl AmqpConfig {
    /// The URL to use: `VAULTKEEPER_AMQP_URL`, then `RABBITMQ_URL`, then `[amqp] url`.
    /// Empty values count as unset. `None`: AMQP is off.
    pub fn effective_url(&self) -> Option<String> {
        effective_url_from(self.url.as_ref(), |k| std::env::var(k).ok())
    }

    /// The effective URL redacted, for status and logs.
    pub fn redacted_url(&self) -> Option<String> {
        self.effective_url().map(|u| redact(&u))
    }
}

fn effective_url_from(
    configured: Option<&SecretUrl>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    URL_ENV
        .iter()
        .find_map(|k| env(k).filter(|v| !v.trim().is_empty()))
        .or_else(|| configured.map(|u| u.expose().to_string()))
        .filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_in_order() {
        let cfg = Some(SecretUrl::new("amqp://cfg"));
        let none = |_: &str| None;
        assert_eq!(
            effective_url_from(cfg.as_ref(), none).as_deref(),
            Some("amqp://cfg")
        );
        let rabbit = |k: &str| (k == "RABBITMQ_URL").then(|| "amqp://rabbit".to_string());
        assert_eq!(
            effective_url_from(cfg.as_ref(), rabbit).as_deref(),
            Some("amqp://rabbit")
        );
        let both = |k: &str| {
            Some(match k {
                "VAULTKEEPER_AMQP_URL" => "amqp://vk".to_string(),
                _ => "amqp://rabbit".to_string(),
            })
        };
        assert_eq!(effective_url_from(None, both).as_deref(), Some("amqp://vk"));
        let empty = |_: &str| Some(String::new());
        assert_eq!(effective_url_from(None, empty), None);
    }

    #[test]
    fn debug_and_serialize_hide_the_password() {
        let cfg = AmqpConfig {
            url: Some(SecretUrl::new("amqp://bob:s3cr3tpw@host:5672/%2f")),
            ..AmqpConfig::default()
        };
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3tpw"), "{debug}");
        assert!(debug.contains("bob"), "{debug}");
        let toml = toml::to_string(&cfg).expect("serialize");
        assert!(!toml.contains("s3cr3tpw"), "{toml}");
    }

    #[test]
    fn parses_toml_with_defaults_and_rejects_unknown_keys() {
        let cfg: AmqpConfig = toml::from_str(
            "url = \"amqp://a:b@h/v\"\nheartbeat = \"5s\"\nqueue_type = \"classic\"\n",
        )
        .expect("parse");
        assert_eq!(cfg.heartbeat, Duration::from_secs(5));
        assert_eq!(cfg.queue_type, QueueType::Classic);
        assert_eq!(cfg.exchange, "vaultkeeper.events");
        assert_eq!(
            cfg.url.as_ref().map(SecretUrl::expose),
            Some("amqp://a:b@h/v")
        );
        assert!(toml::from_str::<AmqpConfig>("exchnage = \"x\"").is_err());
    }
}
