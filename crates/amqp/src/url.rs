//! Broker URLs: parsing into lapin's `AMQPUri`, redaction for output, scrubbing of error text.

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use percent_encoding::percent_decode_str;

use super::error::AmqpError;

const HIDDEN: &str = "***";

/// Query keys whose values are shown (lapin's tuning knobs, when numeric); any other
/// query value may be a secret a user put there and is hidden.
const SHOWN_QUERY: &[&str] = &[
    "heartbeat",
    "frame_max",
    "channel_max",
    "connection_timeout",
];

/// The URL with its password replaced by `***`; never fails and never echoes a password,
/// whatever was typed: a valid URL keeps its user, host, path and numeric tuning
/// parameters; anything else (`amqp:/user:pass@host`, a missing `:`, no host) keeps only
/// what follows its last `@`, and input with no `@` is not echoed at all.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u)
            if u.has_host() && !u.cannot_be_a_base() && !u.host_str().unwrap_or("").is_empty() =>
        {
            redact_parsed(u)
        }
        _ => redact_text(url.trim()),
    }
}

/// True when `url` holds a password, read the way [`redact`] reads it (so `amqp:/u:p@h`,
/// which the URL parser sees as a path, counts).
pub fn has_password(url: &str) -> bool {
    match url::Url::parse(url.trim()) {
        Ok(u)
            if u.has_host() && !u.cannot_be_a_base() && !u.host_str().unwrap_or("").is_empty() =>
        {
            u.password().is_some()
        }
        _ => url.rsplit_once('@').is_some_and(|(before, _)| {
            let userinfo = before.split_once(':').map_or(before, |(_, r)| r);
            userinfo.trim_start_matches('/').contains(':')
        }),
    }
}

fn redact_parsed(mut u: url::Url) -> String {
    if u.password().is_some() {
        // Cannot fail for URLs with a host, which this one has.
        let _ = u.set_password(Some(HIDDEN));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let shown = SHOWN_QUERY.contains(&k.as_ref()) && v.parse::<u64>().is_ok();
                let v = if shown {
                    v.into_owned()
                } else {
                    HIDDEN.to_string()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.set_fragment(None);
    u.to_string()
}

/// For text the URL parser reads differently from what the user meant: only the part
/// after the last `@` (the host, port and path) survives, without any query.
fn redact_text(raw: &str) -> String {
    let Some((_, after)) = raw.rsplit_once('@') else {
        return "<unparseable amqp url>".to_string();
    };
    let after = after.split(['?', '#']).next().unwrap_or("");
    let lower = raw.to_ascii_lowercase();
    let scheme = if lower.starts_with("amqps:") {
        "amqps://"
    } else if lower.starts_with("amqp:") {
        "amqp://"
    } else {
        ""
    };
    format!("{scheme}{HIDDEN}@{after}")
}

/// A parsed broker URL, ready for lapin, with what is needed to keep its password out of output.
#[derive(Clone)]
pub(crate) struct BrokerUrl {
    pub(crate) uri: AMQPUri,
    pub(crate) redacted: String,
    /// The password decoded, and as typed (percent-encoded as the user wrote it).
    password: String,
    password_raw: String,
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

fn decode(s: &str, what: &str, redacted: &str) -> Result<String, AmqpError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| AmqpError::InvalidUrl {
            url: redacted.to_string(),
            reason: format!("{what} is not valid UTF-8 once percent-decoded"),
        })
}

fn query_num<T: std::str::FromStr>(
    u: &url::Url,
    key: &str,
    redacted: &str,
) -> Result<Option<T>, AmqpError> {
    match u.query_pairs().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| AmqpError::InvalidUrl {
            url: redacted.to_string(),
            // The value is not echoed: a mistyped URL may have a secret in that place.
            reason: format!("query parameter {key} is not a number"),
        }),
    }
}

impl BrokerUrl {
    /// Parses `amqp://` or `amqps://` URLs. A missing path, or `/`, means the default vhost
    /// `/` (as pika reads it); `%2f` also works; any other path is the vhost name.
    pub(crate) fn parse(url: &str) -> Result<BrokerUrl, AmqpError> {
        let redacted = redact(url);
        let u = url::Url::parse(url).map_err(|e| AmqpError::InvalidUrl {
            url: redacted.clone(),
            reason: e.to_string(),
        })?;
        let scheme = match u.scheme() {
            "amqp" => AMQPScheme::AMQP,
            "amqps" => AMQPScheme::AMQPS,
            other => {
                return Err(AmqpError::InvalidUrl {
                    url: redacted,
                    reason: format!("scheme {other}: is not amqp: or amqps:"),
                });
            }
        };
        if u.cannot_be_a_base() || !u.has_host() {
            return Err(AmqpError::InvalidUrl {
                url: redacted,
                reason: "no host: write amqp://user:password@host:port/vhost".to_string(),
            });
        }
        let host = match u.host() {
            Some(url::Host::Domain(d)) => decode(d, "the host", &redacted)?,
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => {
                return Err(AmqpError::InvalidUrl {
                    url: redacted,
                    reason: "no host".to_string(),
                });
            }
        };
        let defaults = AMQPUserInfo::default();
        let username = match u.username() {
            "" => defaults.username,
            name => decode(name, "the user name", &redacted)?,
        };
        let password = match u.password() {
            None => defaults.password,
            Some(p) => decode(p, "the password", &redacted)?,
        };
        let path = u.path();
        let vhost = match path {
            "" | "/" => "/".to_string(),
            p => decode(&p[1..], "the vhost", &redacted)?,
        };
        let query = AMQPQueryString {
            frame_max: query_num(&u, "frame_max", &redacted)?,
            channel_max: query_num(&u, "channel_max", &redacted)?,
            heartbeat: query_num(&u, "heartbeat", &redacted)?,
            connection_timeout: query_num(&u, "connection_timeout", &redacted)?,
            auth_mechanism: None,
        };
        let port = u.port().unwrap_or_else(|| scheme.default_port());
        Ok(BrokerUrl {
            uri: AMQPUri {
                scheme,
                authority: AMQPAuthority {
                    userinfo: AMQPUserInfo {
                        username,
                        password: password.clone(),
                    },
                    host,
                    port,
                },
                vhost,
                query,
            },
            redacted,
            password,
            password_raw: u.password().unwrap_or("").to_string(),
        })
    }

    /// `text` with the password (plain and percent-encoded) replaced by `***`, for any
    /// message that came from outside (lapin, the broker) before it is logged or stored.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub_secret(&scrub_secret(text, &self.password), &self.password_raw)
    }
}

fn scrub_secret(text: &str, secret: &str) -> String {
    // Very short secrets would turn every message into noise; they are guessable anyway.
    if secret.len() < 3 {
        return text.to_string();
    }
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    // Percent-encoding is case-insensitive: `%2f` and `%2F` are the same byte.
    let lower_hex = lower_escapes(&encoded);
    text.replace(secret, HIDDEN)
        .replace(&encoded, HIDDEN)
        .replace(&lower_hex, HIDDEN)
}

/// `%2F` → `%2f`, leaving every other character alone.
fn lower_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_and_unparseable_input() {
        assert_eq!(
            redact("amqp://bob:pa%40ss@host:5672/v"),
            "amqp://bob:***@host:5672/v"
        );
        assert_eq!(redact("amqp://host/"), "amqp://host/");
        assert_eq!(redact("amqp://bob@host"), "amqp://bob@host");
        let bad = redact("amqp//bob:secretpw@");
        assert!(!bad.contains("secretpw"));
        assert_eq!(redact("amqp:/bob:pw1@h:1/v"), "amqp://***@h:1/v");
        assert_eq!(redact("amqp:bob:pw2@h/?x=1"), "amqp://***@h/");
        assert_eq!(
            redact("amqp://bob@h/v?heartbeat=5&password=pw3&frame_max=pw4#pw5"),
            "amqp://bob@h/v?heartbeat=5&password=***&frame_max=***"
        );
        assert_eq!(redact("not a url secretpw"), "<unparseable amqp url>");
        assert!(has_password("amqp:/bob:pw@h/"));
        assert!(has_password("amqp://bob:pw@h/"));
        assert!(!has_password("amqp://bob@h/"));
        assert!(!has_password("amqp:/bob@h/"));
    }

    #[test]
    fn parses_hosts_vhosts_and_query() {
        let b = BrokerUrl::parse("amqp://bob:pa%40ss@10.1.2.3:5673/my%2fvhost?heartbeat=7")
            .expect("parse");
        assert_eq!(b.uri.authority.host, "10.1.2.3");
        assert_eq!(b.uri.authority.port, 5673);
        assert_eq!(b.uri.authority.userinfo.username, "bob");
        assert_eq!(b.uri.authority.userinfo.password, "pa@ss");
        assert_eq!(b.uri.vhost, "my/vhost");
        assert_eq!(b.uri.query.heartbeat, Some(7));
        assert!(!b.redacted.contains("pa"), "{}", b.redacted);

        let d = BrokerUrl::parse("amqps://rabbit.example").expect("parse");
        assert_eq!(d.uri.authority.port, 5671);
        assert_eq!(d.uri.vhost, "/");
        assert_eq!(d.uri.authority.userinfo.username, "guest");
        assert_eq!(BrokerUrl::parse("amqp://h/").expect("parse").uri.vhost, "/");
        assert_eq!(
            BrokerUrl::parse("amqp://h/%2f").expect("parse").uri.vhost,
            "/"
        );
        assert_eq!(
            BrokerUrl::parse("amqp://[::1]:1/")
                .expect("parse")
                .uri
                .authority
                .host,
            "::1"
        );
    }

    #[test]
    fn errors_never_show_the_password() {
        for bad in [
            "http://bob:hunter22@host/",
            "amqp://bob:hunter22@host:99999/",
            "amqp://bob:hunter22@host/?heartbeat=x",
            "not a url hunter22",
        ] {
            let e = BrokerUrl::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("hunter22"), "{e}");
        }
    }

    #[test]
    fn scrubs_plain_and_encoded_secrets() {
        assert_eq!(scrub_secret("x p@ss! y", "p@ss!"), "x *** y");
        assert_eq!(scrub_secret("x p%40ss%21 y", "p@ss!"), "x *** y");
        assert_eq!(scrub_secret("ab", "a"), "ab");
        assert_eq!(scrub_secret("x P%2fW y", "P/W"), "x *** y");
    }
}
