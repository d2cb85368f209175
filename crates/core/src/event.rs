//! The event envelope: one JSON shape for the journal row, the AMQP body and `events --json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the envelope; bumped only for incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A file appeared.
    #[serde(rename = "file.created")]
    Created,
    /// A file's content changed (an editor's atomic save included).
    #[serde(rename = "file.modified")]
    Modified,
    /// A file went away.
    #[serde(rename = "file.deleted")]
    Deleted,
    /// A file moved; `old_path` says from where.
    #[serde(rename = "file.renamed")]
    Renamed,
}

impl Kind {
    /// The bare word: `created`, `modified`, `deleted`, `renamed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Modified => "modified",
            Kind::Deleted => "deleted",
            Kind::Renamed => "renamed",
        }
    }

    /// Parses `created` or `file.created`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s.strip_prefix("file.").unwrap_or(s) {
            "created" => Some(Kind::Created),
            "modified" => Some(Kind::Modified),
            "deleted" => Some(Kind::Deleted),
            "renamed" => Some(Kind::Renamed),
            _ => None,
        }
    }
}

/// Why the event was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Seen by the live watcher.
    Watch,
    /// Found by a reconciling scan (start-up, overflow, polling).
    Rescan,
    /// Published by `publish --snapshot`.
    Snapshot,
}

/// One file event, as stored in the journal and sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Envelope version ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// UUIDv7, unique per event; the AMQP `message_id`.
    pub id: String,
    /// Journal sequence number (0 until appended).
    pub seq: u64,
    /// `file.created`, `file.modified`, `file.deleted` or `file.renamed`.
    pub event: Kind,
    /// `file.<kind>.<ext>`.
    pub routing_key: String,
    /// Vault-relative path with `/`.
    pub file_path: String,
    /// The previous path, for renames.
    pub old_path: Option<String>,
    /// The last extension with its dot, lower-case (`.md`), or empty.
    pub extension: String,
    /// Size in bytes (0 for deletions).
    pub size: u64,
    /// Modification time of the file.
    pub mtime: Option<DateTime<Utc>>,
    /// blake3 hex of the content; for a deletion, the last known hash.
    pub hash: Option<String>,
    /// The text, for UTF-8 files up to the configured size.
    pub content: Option<String>,
    /// The vault's name (its folder name unless configured).
    pub vault: String,
    /// The host that saw the change.
    pub host: String,
    /// What produced the event.
    pub origin: Origin,
    /// When the event was made.
    pub timestamp: DateTime<Utc>,
}

/// The last extension of `path`, lower-case with its dot, or `""`.
pub fn extension_of(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => name[i..].to_lowercase(),
        _ => String::new(),
    }
}

/// The routing key `file.<kind>.<ext>` (`none` when there is no extension).
pub fn routing_key(kind: Kind, extension: &str) -> String {
    let ext = extension.trim_start_matches('.');
    let ext = if ext.is_empty() { "none" } else { ext };
    format!("file.{}.{}", kind.as_str(), ext)
}

impl Event {
    /// A new event with a fresh id and timestamp; `seq` is set by the journal.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: Kind,
        file_path: String,
        old_path: Option<String>,
        size: u64,
        mtime: Option<DateTime<Utc>>,
        hash: Option<String>,
        content: Option<String>,
        vault: &str,
        host: &str,
        origin: Origin,
    ) -> Event {
        let extension = extension_of(&file_path);
        Event {
            protocol_version: PROTOCOL_VERSION,
            id: uuid::Uuid::now_v7().to_string(),
            seq: 0,
            event: kind,
            routing_key: routing_key(kind, &extension),
            file_path,
            old_path,
            extension,
            size,
            mtime,
            hash,
            content,
            vault: vault.to_string(),
            host: host.to_string(),
            origin,
            timestamp: Utc::now(),
        }
    }

    /// True when the event leaves a file at `file_path` (not a deletion).
    pub fn is_live(&self) -> bool {
        self.event != Kind::Deleted
    }
}

/// A created event for `path` with fixed values, for unit tests of every crate.
#[doc(hidden)]
pub fn sample(path: &str) -> Event {
    Event::new(
        Kind::Created,
        path.to_string(),
        None,
        1,
        None,
        Some("h".into()),
        Some("x".into()),
        "v",
        "h",
        Origin::Watch,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_routing_keys() {
        assert_eq!(extension_of("a/B.MD"), ".md");
        assert_eq!(extension_of("a/.gitignore"), "");
        assert_eq!(extension_of("a.b/noext"), "");
        assert_eq!(extension_of("x.tar.gz"), ".gz");
        assert_eq!(routing_key(Kind::Created, ".md"), "file.created.md");
        assert_eq!(routing_key(Kind::Deleted, ""), "file.deleted.none");
    }

    #[test]
    fn envelope_round_trips_with_weave_fields() {
        let e = Event::new(
            Kind::Modified,
            "Projects/Plan.md".into(),
            None,
            3,
            None,
            Some("h".into()),
            Some("abc".into()),
            "notes",
            "host",
            Origin::Watch,
        );
        let json = serde_json::to_value(&e).expect("serialize");
        for key in [
            "event",
            "file_path",
            "content",
            "size",
            "extension",
            "timestamp",
            "routing_key",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["event"], "file.modified");
        assert_eq!(json["origin"], "watch");
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, e);
    }
}
