//! Inline tags in a run of text (see the rules in the module docs of [`super`]).

use super::ParsedTag;

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/')
}

pub(super) fn scan_tags(t: &str, before: Option<char>, line: u32, out: &mut Vec<ParsedTag>) {
    let mut prev = before;
    let mut line = line;
    let mut it = t.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '#' && prev.is_none_or(|p| p.is_whitespace() || p == '|') {
            let rest = &t[i + 1..];
            let end = rest.find(|c: char| !is_tag_char(c)).unwrap_or(rest.len());
            let tag = rest[..end].trim_end_matches('/');
            if !tag.is_empty() && !tag.starts_with('/') && tag.chars().any(|c| !c.is_ascii_digit())
            {
                out.push(ParsedTag {
                    tag: tag.to_string(),
                    source: "inline",
                    line,
                });
            }
            // Skip the tag's characters so `#a#b` yields one tag only.
            while let Some(&(j, c2)) = it.peek() {
                if j > i + end {
                    break;
                }
                prev = Some(c2);
                it.next();
            }
            continue;
        }
        if c == '\n' {
            line = line.saturating_add(1);
        }
        prev = Some(c);
    }
}
