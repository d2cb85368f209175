//! Log set-up: `tracing` to stderr, filtered by `VAULTKEEPER_LOG` or `RUST_LOG`, plus a
//! small ring of the latest warnings and errors for `vaultkeeper status`.

use std::collections::VecDeque;
use std::fmt::Write as _;
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
                message: v.0,
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
        .with_writer(std::io::stderr)
        .with_target(false);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match (format, under_journald) {
        (LogFormat::Json, _) => fmt.json().flatten_event(true).boxed(),
        (LogFormat::Human, true) => fmt.without_time().with_ansi(false).boxed(),
        (LogFormat::Human, false) => fmt.boxed(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .with(ProblemLayer)
        .try_init();
}
