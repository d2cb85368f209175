//! Line-shaped syntax CommonMark does not know, read line by line outside code, HTML and the
//! frontmatter: tasks with any status character, block ids `^id`, Dataview `key:: value`.

use std::ops::Range;

use super::{ParsedBlock, ParsedField, ParsedTask};

pub(super) type LineScan = (Vec<ParsedTask>, Vec<ParsedBlock>, Vec<ParsedField>);

/// Tasks, block ids and inline fields, read line by line outside `skip` ranges.
pub(super) fn scan_lines(text: &str, skip: &[Range<usize>]) -> LineScan {
    let mut tasks = Vec::new();
    let mut blocks = Vec::new();
    let mut fields = Vec::new();
    let mut offset = 0usize;
    let mut skip_i = 0usize;
    for (n, raw_line) in text.split('\n').enumerate() {
        let start = offset;
        offset += raw_line.len() + 1;
        while skip_i < skip.len() && skip[skip_i].end <= start {
            skip_i += 1;
        }
        // Any overlap skips the line: indented code starts after the indentation.
        let end = start + raw_line.len();
        if skip[skip_i..]
            .iter()
            .take_while(|r| r.start <= end)
            .any(|r| r.start < end.max(start + 1) && r.end > start)
        {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let line = raw_line.trim_end_matches('\r');
        if let Some(task) = task_of(line) {
            tasks.push(ParsedTask {
                status: task.0,
                text: task.1.to_string(),
                line: line_no,
            });
        }
        if let Some(id) = block_id_of(line) {
            blocks.push(ParsedBlock {
                id: id.to_string(),
                line: line_no,
            });
        }
        if line.contains("::") {
            inline_fields(line, line_no, &mut fields);
        }
    }
    (tasks, blocks, fields)
}

/// Strips blockquote markers and indentation.
fn strip_quote(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        match t.strip_prefix('>') {
            Some(rest) => s = rest,
            None => return t,
        }
    }
}

fn task_of(line: &str) -> Option<(char, &str)> {
    let s = strip_quote(line);
    let rest = if let Some(r) = s
        .strip_prefix("- ")
        .or_else(|| s.strip_prefix("* "))
        .or_else(|| s.strip_prefix("+ "))
    {
        r
    } else {
        let digits = s.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 || digits > 9 {
            return None;
        }
        let r = &s[digits..];
        r.strip_prefix(". ").or_else(|| r.strip_prefix(") "))?
    };
    let rest = rest.trim_start();
    let mut chars = rest.chars();
    if chars.next() != Some('[') {
        return None;
    }
    let status = chars.next()?;
    if chars.next() != Some(']') || status == '\n' {
        return None;
    }
    let after = chars.as_str();
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    Some((status, after.trim()))
}

fn block_id_of(line: &str) -> Option<&str> {
    let t = line.trim_end();
    let caret = t.rfind('^')?;
    let id = &t[caret + 1..];
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let before = &t[..caret];
    if before.is_empty() || before.ends_with([' ', '\t']) {
        Some(id)
    } else {
        None
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars().next().is_some_and(char::is_alphanumeric)
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '/' | '.'))
}

fn clean_key(k: &str) -> &str {
    k.trim().trim_matches(|c| c == '*' || c == '_').trim()
}

/// Dataview fields: `key:: value` as a whole line (after list/quote markers), and
/// `[key:: value]` / `(key:: value)` inside a line. Inline code is ignored.
fn inline_fields(line: &str, line_no: u32, out: &mut Vec<ParsedField>) {
    let mut cleaned = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            cleaned.push(' ');
        } else {
            cleaned.push(if in_code { ' ' } else { c });
        }
    }
    let s = strip_quote(&cleaned);
    let s = s
        .strip_prefix("- ")
        .or_else(|| s.strip_prefix("* "))
        .or_else(|| s.strip_prefix("+ "))
        .unwrap_or(s);
    let mut bracketed = false;
    for (open, close) in [('[', ']'), ('(', ')')] {
        let mut from = 0;
        while let Some(i) = s[from..].find(open) {
            let start = from + i + 1;
            let Some(j) = s[start..].find(close) else {
                break;
            };
            if let Some(field) = field_of(&s[start..start + j], line_no) {
                out.push(field);
                bracketed = true;
            }
            from = start + j + 1;
        }
    }
    if bracketed {
        return;
    }
    out.extend(field_of(s, line_no));
}

/// `key:: value` (the value empty or after a space), as an inline field.
fn field_of(text: &str, line_no: u32) -> Option<ParsedField> {
    let (k, v) = text.split_once("::")?;
    let k = clean_key(k);
    (valid_key(k) && (v.is_empty() || v.starts_with([' ', '\t']))).then(|| ParsedField {
        key: k.to_string(),
        value: v.trim().to_string(),
        source: "inline",
        line: line_no,
    })
}
