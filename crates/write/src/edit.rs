//! The text edits of the write tools, pure functions on a note's text: append, replace the
//! section under a heading, replace one exact text. Each refuses (with what it found) rather
//! than guess.

use crate::WriteError;

/// `text` with `addition` appended on a line of its own (a newline in between when `text`
/// does not end with one, and at the end).
pub fn append(text: &str, addition: &str) -> String {
    let mut out = String::with_capacity(text.len() + addition.len() + 2);
    out.push_str(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(addition);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `text` with the exact text `old`, which must occur once, replaced by `new`.
pub fn replace_text(text: &str, old: &str, new: &str) -> Result<String, WriteError> {
    if old.is_empty() {
        return Err(WriteError::Edit("the text to replace is empty".into()));
    }
    match text.matches(old).count() {
        1 => Ok(text.replacen(old, new, 1)),
        0 => Err(WriteError::Edit(
            "the text to replace was not found (it must match exactly, whitespace included)".into(),
        )),
        n => Err(WriteError::Edit(format!(
            "the text to replace occurs {n} times; give a longer text that occurs once"
        ))),
    }
}

/// An ATX heading line (`## Title`): its level and text, outside code fences.
fn heading_of(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_end_matches(['\r', '\n']);
    let hashes = t.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &t[hashes..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((hashes, rest.trim().trim_end_matches('#').trim_end()))
}

/// Lines with their byte start, and each heading's (line index, level, text) outside fences.
fn headings(text: &str) -> (Vec<usize>, Vec<(usize, usize, String)>) {
    let mut starts = Vec::new();
    let mut found = Vec::new();
    let mut fence: Option<&str> = None;
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        starts.push(at);
        at += line.len();
        let t = line.trim_start();
        let marker = if t.starts_with("```") {
            Some("```")
        } else if t.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => {
                if let Some((level, t)) = heading_of(line) {
                    found.push((i, level, t.to_string()));
                }
            }
            _ => {}
        }
    }
    starts.push(at);
    (starts, found)
}

/// `text` with the body under heading `heading` (`Setup` or `## Setup`) replaced by
/// `content`, up to the next heading of the same or a higher level. The heading must occur once.
pub fn replace_section(text: &str, heading: &str, content: &str) -> Result<String, WriteError> {
    let want_level = heading.chars().take_while(|c| *c == '#').count();
    let want = heading.trim_start_matches('#').trim();
    if want.is_empty() {
        return Err(WriteError::Edit("empty heading".into()));
    }
    let (starts, found) = headings(text);
    let hits: Vec<&(usize, usize, String)> = found
        .iter()
        .filter(|(_, level, t)| t == want && (want_level == 0 || *level == want_level))
        .collect();
    let (line, level) = match hits.as_slice() {
        [one] => (one.0, one.1),
        [] => {
            let known: Vec<String> = found
                .iter()
                .take(20)
                .map(|(_, l, t)| format!("{} {t}", "#".repeat(*l)))
                .collect();
            return Err(WriteError::Edit(format!(
                "no heading {want:?} in the note; its headings: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        many => {
            let lines: Vec<String> = many.iter().map(|h| (h.0 + 1).to_string()).collect();
            return Err(WriteError::Edit(format!(
                "heading {want:?} occurs {} times (lines {}); give its level (`## {want}`) or edit with replace_text",
                many.len(),
                lines.join(", ")
            )));
        }
    };
    let end_line = found
        .iter()
        .find(|(i, l, _)| *i > line && *l <= level)
        .map_or(starts.len() - 1, |h| h.0);
    let (body_start, body_end) = (starts[line + 1], starts[end_line]);
    let mut out = String::with_capacity(text.len() + content.len());
    out.push_str(&text[..body_start]);
    if body_start > 0 && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(content);
    if !content.is_empty() && !content.ends_with('\n') {
        out.push('\n');
    }
    if body_end < text.len() && !content.is_empty() && !content.ends_with("\n\n") {
        // Keep a blank line before the next heading, as the note had.
        out.push('\n');
    }
    out.push_str(&text[body_end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_on_its_own_line() {
        assert_eq!(append("a", "b"), "a\nb\n");
        assert_eq!(append("a\n", "b\n"), "a\nb\n");
        assert_eq!(append("", "b"), "b\n");
    }

    #[test]
    fn replaces_one_exact_text_only() {
        assert_eq!(replace_text("x y z", "y", "Y").expect("once"), "x Y z");
        assert!(replace_text("y y", "y", "Y").is_err());
        assert!(replace_text("x", "y", "Y").is_err());
    }

    #[test]
    fn replaces_a_section_up_to_its_next_sibling() {
        let t = "# T\n\n## A\nold a\n### A1\nold a1\n## B\nb\n```\n## not a heading\n```\n";
        let r = replace_section(t, "A", "new a").expect("section");
        assert_eq!(
            r,
            "# T\n\n## A\nnew a\n\n## B\nb\n```\n## not a heading\n```\n"
        );
        let last = replace_section("## A\nx\n## B\nold\n", "## B", "new\n").expect("last");
        assert_eq!(last, "## A\nx\n## B\nnew\n");
        assert!(replace_section(t, "not a heading", "x").is_err());
        assert!(replace_section("## A\n## A\n", "A", "x").is_err());
    }
}
