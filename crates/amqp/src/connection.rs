//! One broker link: connect with timeout, heartbeats and TLS, reopen a channel closed by the
//! broker, pace reconnection attempts with [`Backoff`], and turn lapin errors into [`AmqpError`].

use std::time::{Duration, Instant};

use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};

use super::config::AmqpConfig;
use super::error::AmqpError;
use super::status::StatusHandle;
use super::url::BrokerUrl;
use vaultkeeper_core::retry::Backoff;

/// A connection with one channel, opened lazily and reopened after any failure.
pub(crate) struct Link {
    url: BrokerUrl,
    tls: OwnedTLSConfig,
    name: String,
    connect_timeout: Duration,
    conn: Option<Connection>,
    chan: Option<Channel>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    pub(crate) status: StatusHandle,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("url", &self.url)
            .field("name", &self.name)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Link {
    /// Checks the URL and reads the CA file; does not connect yet.
    pub(crate) fn new(cfg: &AmqpConfig, name: &str) -> Result<Link, AmqpError> {
        let raw = cfg.effective_url().ok_or(AmqpError::NoUrl)?;
        let mut url = BrokerUrl::parse(&raw)?;
        if url.uri.query.heartbeat.is_none() {
            let secs = cfg.connection_heartbeat.as_secs().min(u64::from(u16::MAX));
            url.uri.query.heartbeat = Some(secs as u16);
        }
        let cert_chain = match &cfg.ca_file {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| AmqpError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            ),
        };
        let status = StatusHandle::new(&url.redacted, &cfg.exchange);
        Ok(Link {
            url,
            tls: OwnedTLSConfig {
                identity: None,
                cert_chain,
            },
            name: name.to_string(),
            connect_timeout: cfg.connect_timeout,
            conn: None,
            chan: None,
            backoff: Backoff::new(cfg.reconnect_min, cfg.reconnect_max),
            retry_at: None,
            status,
        })
    }

    /// The URL without its password.
    pub(crate) fn redacted_url(&self) -> &str {
        &self.url.redacted
    }

    /// True when the connection and the channel are both usable.
    pub(crate) fn is_open(&self) -> bool {
        matches!((&self.conn, &self.chan), (Some(c), Some(ch)) if c.status().connected() && ch.status().connected())
    }

    /// How long until the next connection attempt is allowed (after a failed attempt).
    pub(crate) fn wait_before_connect(&self) -> Option<Duration> {
        self.retry_at
            .and_then(|at| at.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// The open channel; connects or reopens first when needed. `true` in the result means
    /// the channel is new, so the caller must (re)do its declarations and confirm mode.
    /// Refuses without trying while a failed attempt's backoff delay runs.
    pub(crate) async fn channel(&mut self) -> Result<(Channel, bool), AmqpError> {
        if self.is_open()
            && let Some(ch) = &self.chan
        {
            return Ok((ch.clone(), false));
        }
        let conn_ok = self.conn.as_ref().is_some_and(|c| c.status().connected());
        if conn_ok {
            // The broker closed only the channel (e.g. a declaration it refused): reopen it.
            tracing::info!(url = %self.url.redacted, "amqp: reopening a channel closed by the broker");
            let opened = match &self.conn {
                Some(c) => c.create_channel().await,
                None => unreachable_conn(),
            };
            match opened {
                Ok(ch) => {
                    self.chan = Some(ch.clone());
                    self.status.update(|s| s.connected = true);
                    return Ok((ch, true));
                }
                Err(e) => {
                    let err = self.map_err("opening a channel", &e);
                    tracing::warn!(error = %err, "amqp: cannot reopen a channel; reconnecting");
                    self.status.error(&err.to_string());
                    self.drop_connection().await;
                    return Err(err);
                }
            }
        }
        if let Some(wait) = self.wait_before_connect() {
            let last = self.status.get().last_error.unwrap_or_default();
            return Err(AmqpError::Connection {
                url: self.url.redacted.clone(),
                reason: format!("next attempt in {wait:.1?} (last error: {last})"),
            });
        }
        self.drop_connection().await;
        match self.connect().await {
            Ok((conn, ch)) => {
                self.backoff.reset();
                self.retry_at = None;
                self.conn = Some(conn);
                self.chan = Some(ch.clone());
                self.status.update(|s| {
                    s.connected = true;
                    s.connects += 1;
                });
                tracing::info!(url = %self.url.redacted, name = %self.name, "amqp: connected");
                Ok((ch, true))
            }
            Err(err) => {
                let delay = self.backoff.next_delay();
                self.retry_at = Some(Instant::now() + delay);
                tracing::warn!(error = %err, retry_in = ?delay, "amqp: cannot connect");
                self.status.error(&err.to_string());
                self.status.update(|s| s.connected = false);
                Err(err)
            }
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel), AmqpError> {
        let props = ConnectionProperties::default().with_connection_name(self.name.clone().into());
        let attempt = async {
            let conn = Connection::connect_uri_with_config(
                self.url.uri.clone(),
                props,
                self.tls.clone(),
                lapin::runtime::default_runtime()?,
            )
            .await?;
            let ch = conn.create_channel().await?;
            Ok::<_, lapin::Error>((conn, ch))
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(self.map_err("connecting", &e)),
            Err(_) => Err(AmqpError::Connection {
                url: self.url.redacted.clone(),
                reason: format!("no answer within {:?}", self.connect_timeout),
            }),
        }
    }

    /// Records a failure of the open link. While the connection is still up (the broker
    /// closed only the channel, e.g. a missing exchange) just the channel is dropped, to be
    /// reopened with its declarations; otherwise the connection goes too. The next
    /// [`Link::channel`] reconnects at once (pacing applies only to failed attempts).
    pub(crate) async fn broken(&mut self, err: &AmqpError) {
        tracing::warn!(error = %err, url = %self.url.redacted, "amqp: link failed");
        self.status.error(&err.to_string());
        let conn_up = self.conn.as_ref().is_some_and(|c| c.status().connected());
        // A timeout may mean a stuck connection (e.g. blocked by a broker alarm): start over.
        if conn_up && !matches!(err, AmqpError::Timeout { .. }) {
            if let Some(ch) = self.chan.take()
                && ch.status().connected()
            {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    ch.close(200, "vaultkeeper reopening".into()),
                )
                .await;
            }
            self.status.update(|s| s.connected = false);
        } else {
            self.drop_connection().await;
        }
    }

    async fn drop_connection(&mut self) {
        self.chan = None;
        self.status.update(|s| s.connected = false);
        if let Some(conn) = self.conn.take()
            && conn.status().connected()
        {
            // A bounded, best-effort close so that the broker frees the old connection now.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                conn.close(200, "vaultkeeper reconnecting".into()),
            )
            .await;
        }
    }

    /// Closes the connection cleanly (shutdown).
    pub(crate) async fn close(&mut self) {
        self.chan = None;
        if let Some(conn) = self.conn.take()
            && conn.status().connected()
        {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                conn.close(200, "vaultkeeper shutting down".into()),
            )
            .await;
        }
        self.status.update(|s| s.connected = false);
    }

    /// Turns a lapin error into an [`AmqpError`], scrubbed of the password.
    pub(crate) fn map_err(&self, what: &str, e: &lapin::Error) -> AmqpError {
        let url = self.url.redacted.clone();
        let reason = self.url.scrub(&e.to_string());
        match e.kind() {
            ErrorKind::ProtocolError(amqp) => match amqp.get_id() {
                403 if what == "connecting" => AmqpError::AccessRefused { url },
                403 => AmqpError::Channel {
                    what: what.to_string(),
                    reason: format!("access refused: {reason}"),
                },
                406 => AmqpError::Precondition {
                    what: what.to_string(),
                    reason,
                },
                _ if amqp.get_id() >= 500 || what == "connecting" => AmqpError::Connection {
                    url,
                    reason: format!("{what}: {reason}"),
                },
                _ => AmqpError::Channel {
                    what: what.to_string(),
                    reason,
                },
            },
            _ => AmqpError::Connection {
                url,
                reason: format!("{what}: {reason}"),
            },
        }
    }
}

/// Who [`check_login`] logged in as, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The broker URL, redacted.
    pub url: String,
    /// The user name the broker accepted.
    pub user: String,
    /// The vhost.
    pub vhost: String,
}

/// Connects to the broker of `cfg`, logs in and opens a channel (the AMQP handshake, so a
/// wrong password is [`AmqpError::AccessRefused`], not "reachable"), then closes again.
pub async fn check_login(cfg: &AmqpConfig) -> Result<Login, AmqpError> {
    let link = Link::new(cfg, "vaultkeeper doctor")?;
    let (conn, _ch) = link.connect().await?;
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        conn.close(200, "vaultkeeper doctor done".into()),
    )
    .await;
    Ok(Login {
        url: link.url.redacted.clone(),
        user: link.url.uri.authority.userinfo.username.clone(),
        vhost: link.url.uri.vhost.clone(),
    })
}

fn unreachable_conn() -> Result<Channel, lapin::Error> {
    Err(lapin::Error::from(ErrorKind::InvalidConnectionState(
        lapin::ConnectionState::Closed,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretUrl;

    #[test]
    fn a_missing_ca_file_is_named_and_no_url_is_an_error() {
        let cfg = AmqpConfig {
            url: Some(SecretUrl::new("amqps://u:secretpw@rabbit.example/")),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..AmqpConfig::default()
        };
        if cfg.effective_url().as_deref() != Some("amqps://u:secretpw@rabbit.example/") {
            return; // an AMQP URL in the environment overrides the configured one
        }
        let e = Link::new(&cfg, "t").expect_err("missing CA").to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let none = AmqpConfig::default();
        if none.effective_url().is_none() {
            assert!(matches!(Link::new(&none, "t"), Err(AmqpError::NoUrl)));
        }
    }

    #[test]
    fn heartbeat_comes_from_config_unless_the_url_sets_it() {
        let mut cfg = AmqpConfig {
            url: Some(SecretUrl::new("amqp://h/")),
            connection_heartbeat: Duration::from_secs(17),
            ..AmqpConfig::default()
        };
        if cfg.effective_url().as_deref() != Some("amqp://h/") {
            return;
        }
        let link = Link::new(&cfg, "t").expect("link");
        assert_eq!(link.url.uri.query.heartbeat, Some(17));
        cfg.url = Some(SecretUrl::new("amqp://h/?heartbeat=5"));
        let link = Link::new(&cfg, "t").expect("link");
        assert_eq!(link.url.uri.query.heartbeat, Some(5));
    }
}
