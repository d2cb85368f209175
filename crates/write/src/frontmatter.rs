//! Setting and removing one top-level frontmatter field, leaving every other line of the note
//! as it was (no YAML round trip that would reorder keys or drop comments). Values are written
//! as YAML: a plain scalar when that reads back the same, else JSON, which YAML accepts.

use serde_json::Value;

use crate::WriteError;

/// The frontmatter's line range: (first line after `---`, the closing line), when the note has one.
fn block(lines: &[&str]) -> Option<(usize, usize)> {
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return None;
    }
    let close = lines
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, l)| matches!(l.trim_end(), "---" | "..."))?
        .0;
    Some((1, close))
}

/// The key's lines in `lines[start..end]`: its own line and the indented or list lines under it.
fn key_span(lines: &[&str], start: usize, end: usize, key: &str) -> Option<(usize, usize)> {
    let first = (start..end).find(|&i| {
        lines[i]
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']))
    })?;
    let mut last = first + 1;
    while last < end {
        let l = lines[last];
        if l.starts_with([' ', '\t']) || l.starts_with("- ") || l.trim_end() == "-" {
            last += 1;
        } else {
            break;
        }
    }
    Some((first, last))
}

fn check_key(key: &str) -> Result<(), WriteError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '.'))
        && !key.starts_with([' ', '-'])
        && !key.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(WriteError::Edit(format!(
            "field name {key:?} must be letters, digits, `_`, `-`, `.` or inner spaces"
        )))
    }
}

/// A YAML rendering of `v` on one line.
fn yaml(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '/'))
                && !s.starts_with([' ', '-', '.'])
                && !s.ends_with(' ')
                && s.parse::<f64>().is_err()
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
                );
            if plain { s.clone() } else { v.to_string() }
        }
        other => other.to_string(),
    }
}

/// `text` with top-level frontmatter field `key` set to `value` (added when missing, the
/// frontmatter created when the note has none).
pub fn set(text: &str, key: &str, value: &Value) -> Result<String, WriteError> {
    check_key(key)?;
    let line = format!("{key}: {}", yaml(value));
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some((start, end)) = block(&lines) else {
        return Ok(format!("---\n{line}\n---\n{text}"));
    };
    let eol = if lines[0].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(text.len() + line.len());
    match key_span(&lines, start, end, key) {
        Some((first, last)) => {
            lines[..first].iter().for_each(|l| out.push_str(l));
            out.push_str(&line);
            out.push_str(eol);
            lines[last..].iter().for_each(|l| out.push_str(l));
        }
        None => {
            lines[..end].iter().for_each(|l| out.push_str(l));
            out.push_str(&line);
            out.push_str(eol);
            lines[end..].iter().for_each(|l| out.push_str(l));
        }
    }
    Ok(out)
}

/// `text` without top-level frontmatter field `key` (which must be there).
pub fn remove(text: &str, key: &str) -> Result<String, WriteError> {
    check_key(key)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let span = block(&lines).and_then(|(s, e)| key_span(&lines, s, e, key));
    let Some((first, last)) = span else {
        return Err(WriteError::Edit(format!(
            "the note has no frontmatter field {key:?}"
        )));
    };
    let mut out = String::with_capacity(text.len());
    lines[..first].iter().for_each(|l| out.push_str(l));
    lines[last..].iter().for_each(|l| out.push_str(l));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_replaces_and_removes_one_field() {
        let t = "---\ntitle: A\ntags:\n  - x\n  - y\n# comment\n---\nbody\n";
        assert_eq!(
            set(t, "status", &json!("draft")).expect("add"),
            "---\ntitle: A\ntags:\n  - x\n  - y\n# comment\nstatus: draft\n---\nbody\n"
        );
        assert_eq!(
            set(t, "tags", &json!(["a", "b c"])).expect("replace"),
            "---\ntitle: A\ntags: [\"a\",\"b c\"]\n# comment\n---\nbody\n"
        );
        assert_eq!(
            remove(t, "tags").expect("remove"),
            "---\ntitle: A\n# comment\n---\nbody\n"
        );
        assert!(remove(t, "nope").is_err());
        assert_eq!(
            set("body\n", "n", &json!(3)).expect("new"),
            "---\nn: 3\n---\nbody\n"
        );
        assert_eq!(
            set(t, "title", &json!("yes")).expect("quoted"),
            "---\ntitle: \"yes\"\ntags:\n  - x\n  - y\n# comment\n---\nbody\n"
        );
        assert!(set(t, "a: b", &json!(1)).is_err());
    }
}
