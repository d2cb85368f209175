//! The frontmatter: YAML into JSON, and what the cache takes from it (aliases, tags, one
//! field per key and value, the title).

use super::{ParsedField, ParsedTag};

/// What a note's frontmatter gives.
pub(super) struct Frontmatter {
    /// The frontmatter as JSON (`null` when absent or unparsable).
    pub(super) value: serde_json::Value,
    /// `aliases`/`alias`.
    pub(super) aliases: Vec<String>,
    /// `tags`/`tag`, each at the frontmatter's line.
    pub(super) tags: Vec<ParsedTag>,
    /// One field per key and value.
    pub(super) fields: Vec<ParsedField>,
}

/// Reads the YAML text `yaml` (with the line of its first text) into [`Frontmatter`];
/// problems land in `errors`.
pub(super) fn read(yaml: Option<&(String, u32)>, errors: &mut Vec<String>) -> Frontmatter {
    let fm_line = yaml.map(|(_, l)| l.saturating_sub(1).max(1)).unwrap_or(1);
    let value = match yaml {
        Some((y, _)) => parse_yaml(y, errors),
        None => serde_json::Value::Null,
    };
    let mut aliases = Vec::new();
    let mut tags = Vec::new();
    let mut fields = Vec::new();
    if let serde_json::Value::Object(map) = &value {
        for (k, v) in map {
            match k.to_lowercase().as_str() {
                "aliases" | "alias" => aliases.extend(string_list(v)),
                "tags" | "tag" => tags.extend(tags_of(v, fm_line)),
                _ => {}
            }
            let values: Vec<String> = match v {
                serde_json::Value::Array(items) => items.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            for value in values {
                fields.push(ParsedField {
                    key: k.clone(),
                    value,
                    source: "frontmatter",
                    line: fm_line,
                });
            }
        }
    }
    Frontmatter {
        value,
        aliases,
        tags,
        fields,
    }
}

/// Frontmatter tags: a list or a string, comma or space separated, leading `#` dropped.
fn tags_of(v: &serde_json::Value, line: u32) -> Vec<ParsedTag> {
    let mut out = Vec::new();
    for t in string_list(v) {
        for t in t.split([',', ' ']) {
            let t = t.trim().trim_start_matches('#');
            if !t.is_empty() {
                out.push(ParsedTag {
                    tag: t.to_string(),
                    source: "frontmatter",
                    line,
                });
            }
        }
    }
    out
}

/// The frontmatter `title`, when it is a non-empty string.
pub(super) fn title(value: &serde_json::Value) -> Option<String> {
    value
        .get("title")
        .and_then(|t| t.as_str())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn parse_yaml(y: &str, errors: &mut Vec<String>) -> serde_json::Value {
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    match serde_saphyr::from_str_with_options::<serde_json::Value>(y, opts) {
        Ok(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            errors.push("frontmatter: not a mapping of keys to values".to_string());
            serde_json::Value::Null
        }
        Err(e) => {
            let mut msg = format!("frontmatter: {e}");
            if msg.len() > 500 {
                let mut cut = 500;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
                msg.push('…');
            }
            errors.push(msg);
            serde_json::Value::Null
        }
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list of strings, or one string split on commas.
fn string_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(value_text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}
