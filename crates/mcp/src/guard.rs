//! Keeping every file the MCP server reads inside the vault, and the `vault:///` note URIs.
//!
//! A note's URI is `vault:///` followed by its vault path with each segment percent-encoded,
//! e.g. `vault:///Folder/My%20note.md`.

use std::path::{Component, Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::McpError;

/// The scheme and empty authority of note URIs.
pub const URI_PREFIX: &str = "vault:///";

// RFC 3986 path segments: everything outside unreserved / sub-delims / ':' '@' is encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Refuses a vault-relative path that is empty, absolute, or climbs out with `..`.
pub fn check_relative(rel: &str) -> Result<(), McpError> {
    if rel.trim().is_empty() {
        return Err(McpError::EmptyPath);
    }
    if rel.contains('\0') {
        return Err(McpError::InvalidPath(rel.to_string()));
    }
    let p = Path::new(rel);
    let escapes = rel.starts_with('/')
        || rel.starts_with('\\')
        || p.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        })
        || rel.split(['/', '\\']).any(|s| s == "..");
    if escapes {
        return Err(McpError::OutsideVault(rel.to_string()));
    }
    Ok(())
}

/// The file at vault path `rel`, canonical, refused unless it stays inside `root` (canonical)
/// once symlinks are followed.
pub fn resolve_in_vault(root: &Path, rel: &str) -> Result<PathBuf, McpError> {
    check_relative(rel)?;
    let canon = root
        .join(rel)
        .canonicalize()
        .map_err(|source| McpError::Read {
            path: rel.to_string(),
            source,
        })?;
    if !canon.starts_with(root) {
        return Err(McpError::ResolvesOutside(rel.to_string()));
    }
    Ok(canon)
}

/// Reads the text of vault path `rel` (refusing paths outside the vault).
pub fn read_text(root: &Path, rel: &str) -> Result<String, McpError> {
    let file = resolve_in_vault(root, rel)?;
    let bytes = std::fs::read(&file).map_err(|source| McpError::Read {
        path: rel.to_string(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| McpError::NotText(rel.to_string()))
}

/// The MIME type of a vault file, from its extension (what resources report).
pub fn mime_of(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "md" | "markdown" => "text/markdown",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" | "canvas" => "application/json",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "svg" => "image/svg+xml",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The URI of a vault path.
pub fn uri_of(path: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    format!("{URI_PREFIX}{}", segments.join("/"))
}

/// The vault path of a note URI (checked with [`check_relative`]).
pub fn path_of(uri: &str) -> Result<String, McpError> {
    let rest = uri
        .strip_prefix(URI_PREFIX)
        .ok_or_else(|| McpError::UnknownResource(uri.to_string()))?;
    let path = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| McpError::BadUri(uri.to_string()))?
        .into_owned();
    check_relative(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        for bad in ["../x.md", "a/../../x", "/etc/passwd", "a/..", "", "..\\x"] {
            assert!(check_relative(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a.md", "Folder/My note.md", "a..b.md", ".obsidian/x"] {
            assert!(check_relative(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn mime_types_follow_the_extension() {
        assert_eq!(mime_of("a/Note.md"), "text/markdown");
        assert_eq!(mime_of("publish.css"), "text/css");
        assert_eq!(mime_of("x.Canvas"), "application/json");
        assert_eq!(mime_of("img.PNG"), "image/png");
    }

    #[test]
    fn uris_round_trip() {
        for p in ["a.md", "Folder/My note #1?.md", "é/ü 100%.md"] {
            let u = uri_of(p);
            assert!(!u.contains(' '), "{u}");
            assert_eq!(path_of(&u).expect("a note URI"), p);
        }
        assert!(path_of("vault:///..%2F..%2Fetc/passwd").is_err());
        assert!(path_of("file:///etc/passwd").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_is_refused() {
        let vault = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.md"), "s").expect("write");
        std::fs::write(vault.path().join("in.md"), "i").expect("write");
        std::os::unix::fs::symlink(
            outside.path().join("secret.md"),
            vault.path().join("link.md"),
        )
        .expect("symlink");
        let root = vault.path().canonicalize().expect("canon");
        assert_eq!(read_text(&root, "in.md").expect("in.md"), "i");
        let err = read_text(&root, "link.md").expect_err("escape");
        assert!(err.to_string().contains("outside the vault"), "{err}");
    }
}
