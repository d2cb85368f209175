//! Consumer names and the typed reports consumers give for `vaultkeeper status`.
//!
//! The report types are data only: each consumer crate fills its own, and the binary reads
//! them back from the daemon's status file. They live here because the binary must read
//! every kind without depending on every consumer, and consumers never depend on each other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The daemon's consumers, each named once: the name is the journal cursor key, the
/// `consumer` field of dead letters and the name in `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerKind {
    /// The shadow cache.
    Cache,
    /// Git auto-commit in the vault's repository.
    Git,
    /// `consume git`: events mirrored into a repository folder, then committed.
    GitMirror,
    /// The RabbitMQ forwarder.
    Amqp,
    /// Commands run on matching changes.
    Rules,
}

impl ConsumerKind {
    /// Every kind, in the order `status` lists them by default.
    pub const ALL: [ConsumerKind; 5] = [
        ConsumerKind::Cache,
        ConsumerKind::Git,
        ConsumerKind::GitMirror,
        ConsumerKind::Amqp,
        ConsumerKind::Rules,
    ];

    /// The stable name (cursor key); `const` so crates can keep a `NAME` constant from it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::Cache => "cache",
            ConsumerKind::Git => "git",
            ConsumerKind::GitMirror => "git-mirror",
            ConsumerKind::Amqp => "amqp",
            ConsumerKind::Rules => "rules",
        }
    }

    /// The kind a name stands for; `None` for names no built-in consumer uses.
    pub fn parse(name: &str) -> Option<ConsumerKind> {
        ConsumerKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for ConsumerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One consumer's own report, one variant per kind. Serialized flat with a `kind` tag, so
/// `detail.last_commit` or `detail.connected` read the same as before the tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConsumerReport {
    /// The shadow cache.
    Cache(CacheReport),
    /// Git auto-commit.
    Git(GitReport),
    /// The git mirror of `consume git` (a git consumer behind a folder mirror).
    GitMirror(GitReport),
    /// The RabbitMQ forwarder.
    Amqp(AmqpReport),
    /// The rules.
    Rules(RulesReport),
}

impl ConsumerReport {
    /// The consumer kind this report belongs to.
    pub fn kind(&self) -> ConsumerKind {
        match self {
            ConsumerReport::Cache(_) => ConsumerKind::Cache,
            ConsumerReport::Git(_) => ConsumerKind::Git,
            ConsumerReport::GitMirror(_) => ConsumerKind::GitMirror,
            ConsumerReport::Amqp(_) => ConsumerKind::Amqp,
            ConsumerReport::Rules(_) => ConsumerKind::Rules,
        }
    }
}

/// What `status` shows about the shadow cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    /// The full index of the vault is done (false on a new or rebuilt cache until it is).
    pub indexed: bool,
}

/// What `status` shows about git.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitReport {
    /// Whether the consumer runs.
    pub enabled: bool,
    /// Why it does not run (off is not unhealthy).
    pub off_reason: Option<String>,
    /// The repository's work tree.
    pub repository: Option<String>,
    /// The branch HEAD names; `None` when detached.
    pub branch: Option<String>,
    /// The last commit vaultkeeper made (or found at start), full hash.
    pub last_commit: Option<String>,
    /// When that commit was made.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// That commit's summary (its message's first paragraph), when vaultkeeper made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_summary: Option<String>,
    /// Paths waiting for the next commit.
    pub pending: usize,
    /// Why committing waits right now (rebase, merge, index.lock, detached HEAD).
    pub blocked: Option<String>,
    /// The last failure, cleared by the next commit.
    pub last_error: Option<String>,
    /// Push state, when `push = true`.
    pub push: Option<PushReport>,
}

impl GitReport {
    /// The report of a git consumer that does not run, with the reason.
    pub fn off(reason: impl Into<String>) -> GitReport {
        GitReport {
            enabled: false,
            off_reason: Some(reason.into()),
            ..GitReport::default()
        }
    }
}

/// The push part of [`GitReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushReport {
    /// Remote name.
    pub remote: String,
    /// Commits made but not yet pushed.
    pub behind: bool,
    /// When the last push succeeded.
    pub last_ok: Option<DateTime<Utc>>,
    /// The last push error, cleared by a success.
    pub last_error: Option<String>,
}

/// A snapshot of the broker link (never holds a password).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AmqpReport {
    /// A connection and channel are open right now.
    pub connected: bool,
    /// The broker URL, password replaced by `***`.
    pub url: String,
    /// The exchange events go to.
    pub exchange: String,
    /// Events confirmed by the broker since start.
    pub published: u64,
    /// Heartbeat messages confirmed since start.
    pub heartbeats: u64,
    /// Successful connections since start (more than one means reconnections).
    pub connects: u64,
    /// Failed connection attempts and broken links since start.
    pub errors: u64,
    /// The last error, already scrubbed of secrets.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the last confirm arrived.
    pub last_confirm_at: Option<DateTime<Utc>>,
}

/// What `status` shows about the rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesReport {
    /// Rules configured.
    pub rules: usize,
    /// Commands run since start.
    pub runs: u64,
    /// Commands that failed since start.
    pub failures: u64,
    /// Runs waiting for their debounce.
    pub debounced: usize,
}

/// Reads an optional report leniently: a report this build cannot read (written by another
/// version of the daemon) is shown as none rather than making the whole status unreadable.
/// For `#[serde(deserialize_with = ...)]` on an `Option<ConsumerReport>` field.
pub fn lenient_report<'de, D>(de: D) -> Result<Option<ConsumerReport>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = serde_json::Value::deserialize(de)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(secs, 123_456_789)
    }

    fn every_variant() -> Vec<ConsumerReport> {
        let git = GitReport {
            enabled: true,
            off_reason: None,
            repository: Some("/v".into()),
            branch: Some("main".into()),
            last_commit: Some("ab".repeat(20)),
            last_commit_at: at(1_700_000_000),
            last_summary: Some("vault: 3 change(s) on host".into()),
            pending: 3,
            blocked: Some("rebase in progress".into()),
            last_error: Some("index.lock".into()),
            push: Some(PushReport {
                remote: "origin".into(),
                behind: true,
                last_ok: at(1_700_000_100),
                last_error: Some("rejected".into()),
            }),
        };
        vec![
            ConsumerReport::Cache(CacheReport { indexed: true }),
            ConsumerReport::Git(git.clone()),
            ConsumerReport::GitMirror(GitReport { push: None, ..git }),
            ConsumerReport::Git(GitReport::off("not a repository")),
            ConsumerReport::Amqp(AmqpReport {
                connected: true,
                url: "amqp://guest:***@127.0.0.1:5672/%2f".into(),
                exchange: "vaultkeeper".into(),
                published: 5,
                heartbeats: 2,
                connects: 1,
                errors: 4,
                last_error: Some("refused".into()),
                last_error_at: at(1_700_000_200),
                last_confirm_at: at(1_700_000_300),
            }),
            ConsumerReport::Rules(RulesReport {
                rules: 2,
                runs: 9,
                failures: 1,
                debounced: 0,
            }),
        ]
    }

    #[test]
    fn every_report_round_trips_through_json() {
        let all = every_variant();
        let kinds: std::collections::HashSet<ConsumerKind> =
            all.iter().map(ConsumerReport::kind).collect();
        assert_eq!(
            kinds.len(),
            ConsumerKind::ALL.len(),
            "a variant is not tested"
        );
        for report in all {
            let json = serde_json::to_value(&report).expect("serialize");
            assert_eq!(json["kind"], report.kind().as_str(), "{json}");
            let back: ConsumerReport = serde_json::from_value(json.clone()).expect("deserialize");
            assert_eq!(back, report, "{json}");
        }
    }

    #[test]
    fn reports_keep_their_fields_flat() {
        let git = serde_json::to_value(ConsumerReport::Git(GitReport {
            last_commit: Some("abc".into()),
            ..GitReport::default()
        }))
        .expect("serialize");
        assert_eq!(git["last_commit"], "abc");
        let amqp =
            serde_json::to_value(ConsumerReport::Amqp(AmqpReport::default())).expect("serialize");
        assert_eq!(amqp["connected"], false);
    }

    #[test]
    fn kinds_are_named_once() {
        for kind in ConsumerKind::ALL {
            assert_eq!(ConsumerKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).expect("serialize");
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(ConsumerKind::parse("nope"), None);
    }

    #[test]
    fn an_unreadable_report_is_none() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(deserialize_with = "lenient_report")]
            detail: Option<ConsumerReport>,
        }
        let h: Holder =
            serde_json::from_str(r#"{"detail": {"kind": "future", "x": 1}}"#).expect("lenient");
        assert_eq!(h.detail, None);
        let h: Holder = serde_json::from_str(r#"{"detail": null}"#).expect("null");
        assert_eq!(h.detail, None);
        let h: Holder = serde_json::from_str(r#"{"detail": {"kind": "cache", "indexed": false}}"#)
            .expect("cache");
        assert_eq!(
            h.detail,
            Some(ConsumerReport::Cache(CacheReport { indexed: false }))
        );
    }
}
