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

/// One file event, as stored in the journal and sent on the wire. Built with
/// [`Event::builder`]; the derived `routing_key` and `extension` are computed from the kind
/// and the path on demand, so they cannot drift (the JSON carries them; see [`wire`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Envelope version ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// UUIDv7, unique per event; the AMQP `message_id`.
    pub id: String,
    /// Journal sequence number (0 until appended).
    pub seq: u64,
    /// `file.created`, `file.modified`, `file.deleted` or `file.renamed`.
    pub event: Kind,
    /// Vault-relative path with `/`.
    pub file_path: String,
    /// The previous path, for renames.
    pub old_path: Option<String>,
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

/// Builds an [`Event`] from what a file read gave; see [`Event::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct EventBuilder {
    kind: Kind,
    file_path: String,
    old_path: Option<String>,
    size: u64,
    mtime: Option<DateTime<Utc>>,
    hash: Option<String>,
    content: Option<String>,
    vault: String,
    host: String,
    origin: Origin,
}

impl EventBuilder {
    /// The previous path, for renames.
    pub fn old_path(mut self, old_path: Option<String>) -> Self {
        self.old_path = old_path;
        self
    }

    /// What the read of the file gave: its size, blake3 hash and text (when kept).
    pub fn read(mut self, size: u64, hash: Option<String>, content: Option<String>) -> Self {
        self.size = size;
        self.hash = hash;
        self.content = content;
        self
    }

    /// The hash alone (a deletion carries the last known one).
    pub fn hash(mut self, hash: Option<String>) -> Self {
        self.hash = hash;
        self
    }

    /// The file's modification time.
    pub fn mtime(mut self, mtime: Option<DateTime<Utc>>) -> Self {
        self.mtime = mtime;
        self
    }

    /// Which vault, seen from which host.
    pub fn source(mut self, vault: &str, host: &str) -> Self {
        self.vault = vault.to_string();
        self.host = host.to_string();
        self
    }

    /// What produced the event (default: [`Origin::Watch`]).
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// The event, with a fresh UUIDv7 id and timestamp; `seq` is set by the journal.
    pub fn build(self) -> Event {
        Event {
            protocol_version: PROTOCOL_VERSION,
            id: uuid::Uuid::now_v7().to_string(),
            seq: 0,
            event: self.kind,
            file_path: self.file_path,
            old_path: self.old_path,
            size: self.size,
            mtime: self.mtime,
            hash: self.hash,
            content: self.content,
            vault: self.vault,
            host: self.host,
            origin: self.origin,
            timestamp: Utc::now(),
        }
    }
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
    /// A builder for a `kind` event at `file_path` (vault-relative, with `/`); everything
    /// else starts empty (size 0, no hash, no content, origin watch).
    pub fn builder(kind: Kind, file_path: impl Into<String>) -> EventBuilder {
        EventBuilder {
            kind,
            file_path: file_path.into(),
            old_path: None,
            size: 0,
            mtime: None,
            hash: None,
            content: None,
            vault: String::new(),
            host: String::new(),
            origin: Origin::Watch,
        }
    }

    /// The last extension of the path, lower-case with its dot (`.md`), or empty.
    pub fn extension(&self) -> String {
        extension_of(&self.file_path)
    }

    /// The routing key `file.<kind>.<ext>`.
    pub fn routing_key(&self) -> String {
        routing_key(self.event, &self.extension())
    }

    /// True when the event leaves a file at `file_path` (not a deletion).
    pub fn is_live(&self) -> bool {
        self.event != Kind::Deleted
    }
}

/// A created event for `path` with fixed values, for unit tests of every crate.
#[doc(hidden)]
pub fn sample(path: &str) -> Event {
    Event::builder(Kind::Created, path)
        .read(1, Some("h".into()), Some("x".into()))
        .source("v", "h")
        .origin(Origin::Watch)
        .build()
}

/// The JSON envelope: the fields in their fixed order, the derived ones included. Reading
/// one back checks the derived fields against the kind and the path, so a sender cannot
/// make them disagree.
mod wire {
    use super::{DateTime, Event, Kind, Origin, Utc, extension_of, routing_key};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a> {
        protocol_version: u32,
        id: &'a str,
        seq: u64,
        event: Kind,
        routing_key: String,
        file_path: &'a str,
        old_path: &'a Option<String>,
        extension: String,
        size: u64,
        mtime: &'a Option<DateTime<Utc>>,
        hash: &'a Option<String>,
        content: &'a Option<String>,
        vault: &'a str,
        host: &'a str,
        origin: Origin,
        timestamp: &'a DateTime<Utc>,
    }

    #[derive(Deserialize)]
    struct In {
        protocol_version: u32,
        id: String,
        seq: u64,
        event: Kind,
        routing_key: String,
        file_path: String,
        old_path: Option<String>,
        extension: String,
        size: u64,
        mtime: Option<DateTime<Utc>>,
        hash: Option<String>,
        content: Option<String>,
        vault: String,
        host: String,
        origin: Origin,
        timestamp: DateTime<Utc>,
    }

    impl Serialize for Event {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let extension = self.extension();
            Out {
                protocol_version: self.protocol_version,
                id: &self.id,
                seq: self.seq,
                event: self.event,
                routing_key: routing_key(self.event, &extension),
                file_path: &self.file_path,
                old_path: &self.old_path,
                extension,
                size: self.size,
                mtime: &self.mtime,
                hash: &self.hash,
                content: &self.content,
                vault: &self.vault,
                host: &self.host,
                origin: self.origin,
                timestamp: &self.timestamp,
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Event {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            use serde::de::Error;
            let w = In::deserialize(d)?;
            let path = &w.file_path;
            let extension = extension_of(path);
            if w.extension != extension {
                return Err(D::Error::custom(format!(
                    "{path:?}: extension {:?} does not match the path",
                    w.extension
                )));
            }
            if w.routing_key != routing_key(w.event, &extension) {
                return Err(D::Error::custom(format!(
                    "{path:?}: routing_key {:?} does not match the event",
                    w.routing_key
                )));
            }
            Ok(Event {
                protocol_version: w.protocol_version,
                id: w.id,
                seq: w.seq,
                event: w.event,
                file_path: w.file_path,
                old_path: w.old_path,
                size: w.size,
                mtime: w.mtime,
                hash: w.hash,
                content: w.content,
                vault: w.vault,
                host: w.host,
                origin: w.origin,
                timestamp: w.timestamp,
            })
        }
    }
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
        let e = Event::builder(Kind::Modified, "Projects/Plan.md")
            .read(3, Some("h".into()), Some("abc".into()))
            .source("notes", "host")
            .origin(Origin::Watch)
            .build();
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
        assert_eq!(json["routing_key"], "file.modified.md");
        assert_eq!(json["extension"], ".md");
        let text = serde_json::to_string(&e).expect("serialize");
        let at = |key: &str| {
            text.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("missing {key} in {text}"))
        };
        let order = [
            "protocol_version",
            "id",
            "seq",
            "event",
            "routing_key",
            "file_path",
            "old_path",
            "extension",
            "size",
            "mtime",
            "hash",
            "content",
            "vault",
            "host",
            "origin",
            "timestamp",
        ];
        for pair in order.windows(2) {
            assert!(
                at(pair[0]) < at(pair[1]),
                "{} before {}: {text}",
                pair[0],
                pair[1]
            );
        }
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, e);
    }

    #[test]
    fn derived_fields_that_disagree_are_refused() {
        let e = sample("a/b.md");
        let mut json = serde_json::to_value(&e).expect("serialize");
        json["routing_key"] = "file.deleted.md".into();
        let err = serde_json::from_value::<Event>(json).expect_err("refused");
        assert!(err.to_string().contains("routing_key"), "{err}");
        let mut json = serde_json::to_value(&e).expect("serialize");
        json["extension"] = ".png".into();
        let err = serde_json::from_value::<Event>(json).expect_err("refused");
        assert!(err.to_string().contains("extension"), "{err}");
    }
}
