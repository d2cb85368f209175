//! `[api]`: where the API listens besides its Unix socket, and the stream's heartbeat.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[api]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// A TCP address to listen on as well (`127.0.0.1:8750`); it needs the bearer token.
    pub listen: Option<String>,
    /// Accept a `listen` address that is not loopback (still with the token).
    pub allow_remote: bool,
    /// How often an idle event stream gets a comment line, so proxies and clients see it alive.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: None,
            allow_remote: false,
            heartbeat: Duration::from_secs(15),
        }
    }
}
