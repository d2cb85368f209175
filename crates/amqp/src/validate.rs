//! What a message from the broker must be to be handed to a consumer: a vaultkeeper event
//! of this protocol version whose fields agree with one another and stay inside the target.

use serde_json::Value;
use vaultkeeper_core::event::{Event, Kind, PROTOCOL_VERSION};

/// Why a message is not an event this consumer accepts; the text names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEvent(String);

/// Parses a message body into an event, or says why it is not one.
pub(crate) fn parse(data: &[u8]) -> Result<Event, InvalidEvent> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| InvalidEvent(format!("not JSON: {e}")))?;
    match v.get("protocol_version").map(Value::as_u64) {
        Some(Some(n)) if n == u64::from(PROTOCOL_VERSION) => {}
        Some(Some(n)) => {
            return Err(InvalidEvent(format!(
                "protocol_version {n}, this consumer reads {PROTOCOL_VERSION}"
            )));
        }
        _ => {
            return Err(InvalidEvent(
                "no protocol_version: not a vaultkeeper event".to_string(),
            ));
        }
    }
    let event: Event = serde_json::from_value(v)
        .map_err(|e| InvalidEvent(format!("not a vaultkeeper event: {e}")))?;
    validate(&event)?;
    Ok(event)
}

/// Longest path or name accepted from the broker.
const MAX_FIELD: usize = 4096;

/// Checks every field of an event that came from the broker, so nothing a sender writes
/// can escape the target folder or contradict itself; the reason names the field. `seq`
/// is the sender's number and is never trusted for anything but ordering its snapshots.
pub fn validate(e: &Event) -> Result<(), InvalidEvent> {
    check_path("file_path", &e.file_path)?;
    let path = &e.file_path;
    match (e.event, &e.old_path) {
        (_, Some(old)) => check_path("old_path", old)?,
        (Kind::Renamed, None) => {
            return Err(InvalidEvent(format!(
                "{path:?}: file.renamed without old_path"
            )));
        }
        _ => {}
    }
    if uuid::Uuid::parse_str(&e.id).is_err() {
        return Err(InvalidEvent(format!(
            "{path:?}: id {:?} is not a UUID",
            e.id
        )));
    }
    if let Some(h) = &e.hash
        && (h.len() != 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(InvalidEvent(format!(
            "{path:?}: hash is not a blake3 hex digest"
        )));
    }
    if let Some(text) = &e.content {
        if e.event == Kind::Deleted {
            return Err(InvalidEvent(format!("{path:?}: file.deleted with content")));
        }
        if e.size != text.len() as u64 {
            return Err(InvalidEvent(format!(
                "{path:?}: size {} but {} bytes of content",
                e.size,
                text.len()
            )));
        }
        let actual = blake3::hash(text.as_bytes()).to_hex().to_string();
        if e.hash.as_deref() != Some(actual.as_str()) {
            return Err(InvalidEvent(format!(
                "{path:?}: hash does not match the content"
            )));
        }
    }
    for (field, value) in [("vault", &e.vault), ("host", &e.host)] {
        if value.is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
            return Err(InvalidEvent(format!(
                "{path:?}: {field} must be 1 to 255 bytes without control characters"
            )));
        }
    }
    Ok(())
}

/// A vault-relative path with `/`: not empty, not absolute, no empty, `.` or `..` part.
fn check_path(field: &str, p: &str) -> Result<(), InvalidEvent> {
    let bad = |why: &str| Err(InvalidEvent(format!("{field} {p:?}: {why}")));
    if p.is_empty() {
        return bad("empty");
    }
    if p.len() > MAX_FIELD {
        return bad("too long");
    }
    if p.contains('\0') {
        return bad("contains NUL");
    }
    if p.starts_with('/') {
        return bad("absolute; must be relative to the vault");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("not a plain vault-relative path (empty, . or .. part)");
    }
    let first = p.split('/').next().unwrap_or("");
    if first.len() == 2 && first.ends_with(':') {
        return bad("starts with a drive letter");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_field() {
        let mut good = vaultkeeper_core::event::sample("a/b.md");
        good.hash = Some(blake3::hash(b"x").to_hex().to_string());
        assert_eq!(validate(&good), Ok(()));
        let with = |f: &dyn Fn(&mut Event)| {
            let mut e = good.clone();
            f(&mut e);
            validate(&e).expect_err("refused").to_string()
        };
        for p in [
            "../x.md", "/x.md", "a//b.md", "a/./b.md", "", "C:/x.md", "a\0b.md",
        ] {
            let why = with(&|e| {
                e.file_path = p.to_string();
            });
            assert!(why.starts_with("file_path"), "{p:?}: {why}");
        }
        let mut forged = serde_json::to_value(&good).expect("json");
        forged["routing_key"] = "file.deleted.md".into();
        let body = serde_json::to_vec(&forged).expect("body");
        assert!(
            parse(&body)
                .expect_err("refused")
                .to_string()
                .contains("routing_key")
        );
        assert!(with(&|e| e.id = "7".into()).contains("UUID"));
        assert!(with(&|e| e.hash = Some("zz".into())).contains("hash"));
        assert!(with(&|e| e.vault = String::new()).contains("vault"));
        assert!(
            with(&|e| {
                e.event = Kind::Renamed;
                e.old_path = None;
            })
            .contains("old_path")
        );
    }

    #[test]
    fn parse_tells_why() {
        assert!(
            parse(b"nope")
                .expect_err("refused")
                .to_string()
                .starts_with("not JSON")
        );
        assert!(
            parse(br#"{"protocol_version":2}"#)
                .expect_err("refused")
                .to_string()
                .contains("protocol_version 2")
        );
        assert!(
            parse(br#"{"event":"file.created"}"#)
                .expect_err("refused")
                .to_string()
                .contains("no protocol_version")
        );
        assert!(
            parse(br#"{"protocol_version":1}"#)
                .expect_err("refused")
                .to_string()
                .starts_with("not a vaultkeeper event")
        );
    }
}
