//! Links: a destination pulldown-cmark found into a [`ParsedLink`] (target, heading or
//! block fragment, display text), external URLs left out.

use std::borrow::Cow;

use super::{LinkKind, ParsedLink};

fn has_scheme(dest: &str) -> bool {
    let Some(colon) = dest.find(':') else {
        return false;
    };
    let scheme = &dest[..colon];
    // One letter before ':' is a Windows drive, not a scheme.
    scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

pub(super) fn make_link(
    kind: LinkKind,
    dest: &str,
    wiki: bool,
    pothole: bool,
    display: String,
    line: u32,
) -> Option<ParsedLink> {
    if dest.is_empty() {
        return None;
    }
    let (raw, decoded): (String, Cow<'_, str>) = if wiki {
        // `[[T\|alias]]` inside a table leaves the escaping backslash on the target.
        let d = dest.trim().trim_end_matches('\\').trim();
        (d.to_string(), Cow::Borrowed(d))
    } else {
        if has_scheme(dest) || dest.starts_with("//") {
            return None;
        }
        let d = dest.trim();
        (
            d.to_string(),
            percent_encoding::percent_decode_str(d).decode_utf8_lossy(),
        )
    };
    let (file, frag) = match decoded.find('#') {
        Some(i) => (&decoded[..i], Some(&decoded[i + 1..])),
        None => (&decoded[..], None),
    };
    let (heading, block) = match frag {
        Some(f) if f.starts_with('^') => (None, Some(f[1..].trim().to_string())),
        Some(f) if !f.trim().is_empty() => (Some(f.trim().to_string()), None),
        _ => (None, None),
    };
    let display = if wiki {
        if pothole {
            Some(display.trim().to_string()).filter(|d| !d.is_empty())
        } else {
            None
        }
    } else {
        Some(display.trim().to_string()).filter(|d| !d.is_empty())
    };
    Some(ParsedLink {
        raw,
        target: file.trim().to_string(),
        heading,
        block,
        display,
        kind,
        line,
    })
}
