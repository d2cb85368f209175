//! Log set-up: `tracing` to stderr, filtered by `VAULTKEEPER_LOG` or `RUST_LOG`, plus a
//! small ring of the latest warnings and errors for `vaultkeeper status`.
//!
//! Every line, and every recent problem, passes [`redact_urls`] last: whatever a message
//! holds (a rule's output, a library's error text), a `scheme://user:password@` in it
//! never reaches the log or the status with its password.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;

/// How many recent problems are kept.
const RECENT: usize = 20;

/// A warning or error, as shown by `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentProblem {
    /// When (RFC 3339).
    pub at: String,
    /// `WARN` or `ERROR`.
    pub level: String,
    /// The message with its fields.
    pub message: String,
}

static PROBLEMS: Mutex<VecDeque<RecentProblem>> = Mutex::new(VecDeque::new());

/// The latest warnings and errors, oldest first.
pub fn recent_problems() -> Vec<RecentProblem> {
    PROBLEMS
        .lock()
        .map(|q| q.iter().cloned().collect())
        .unwrap_or_default()
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

struct ProblemLayer;

impl<S: tracing::Subscriber> Layer<S> for ProblemLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > tracing::Level::WARN {
            return;
        }
        let mut v = MessageVisitor(String::new());
        event.record(&mut v);
        if let Ok(mut q) = PROBLEMS.lock() {
            if q.len() == RECENT {
                q.pop_front();
            }
            q.push_back(RecentProblem {
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                level: level.to_string(),
                message: redact_urls(&v.0).into_owned(),
            });
        }
    }
}

/// Installs the global subscriber. Under systemd (`JOURNAL_STREAM` set) lines carry no
/// timestamp, since journald adds its own.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = std::env::var("VAULTKEEPER_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .or_else(|| filter.map(str::to_string))
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("vaultkeeper: invalid log filter `{filter}` ({e}); using `info`");
        EnvFilter::new("info")
    });
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(|| RedactingStderr(Vec::new()))
        .with_target(false);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match (format, under_journald) {
        (LogFormat::Json, _) => fmt.json().flatten_event(true).boxed(),
        (LogFormat::Human, true) => fmt.without_time().with_ansi(false).boxed(),
        // Colour only on a terminal: a log redirected to a file stays plain text.
        (LogFormat::Human, false) => fmt
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            )
            .boxed(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .with(ProblemLayer)
        .try_init();
}

/// Characters that end a URL token in free text.
fn ends_token(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '`' | '(' | ')' | '[' | ']' | ','
        )
}

/// `text` with the password of every `scheme://user:password@host` replaced by `***`. The
/// userinfo is taken up to the token's last `@`, so a password with an unencoded `/` or `@`
/// is hidden whole.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let token_len = after.find(ends_token).unwrap_or(after.len());
        let token = &after[..token_len];
        match token
            .rfind('@')
            .and_then(|at| token[..at].find(':').map(|c| (c, at)))
        {
            Some((colon, at)) => {
                out.push_str(&token[..=colon]);
                out.push_str("***");
                out.push_str(&token[at..]);
            }
            None => out.push_str(token),
        }
        rest = &after[token_len..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// One log line, held until it is complete and then written to stderr redacted.
struct RedactingStderr(Vec<u8>);

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.0);
        let line = redact_urls(&text);
        let res = std::io::stderr().lock().write_all(line.as_bytes());
        self.0.clear();
        res
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        // A log line that cannot be written has nowhere else to go.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn passwords_in_urls_are_hidden_wherever_they_are() {
        assert_eq!(
            redact_urls("to postgres://bob:pw@db/x and https://h/a@b ok"),
            "to postgres://bob:***@db/x and https://h/a@b ok"
        );
        assert_eq!(redact_urls("amqp://u:p/w@h:1/v"), "amqp://u:***@h:1/v");
        assert_eq!(
            redact_urls("url=\"amqp://u:p@ss@h\""),
            "url=\"amqp://u:***@h\""
        );
        assert_eq!(redact_urls("amqp://u@h/ plain"), "amqp://u@h/ plain");
        assert_eq!(redact_urls("no urls here"), "no urls here");
    }
}
