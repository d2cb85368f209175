//! A note's full-text columns: its title, aliases, frontmatter values and body, each as the
//! index terms of [`super::tokens`] (the FTS table stores no text of its own: snippets are
//! cut from the original body, kept in `bodies`).

use super::tokens::index_terms;

/// The pre-tokenized text of each column of `notes_fts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FtsColumns {
    /// The title's terms.
    pub title: String,
    /// The aliases' terms.
    pub aliases: String,
    /// The terms of every frontmatter value but the aliases.
    pub fm: String,
    /// The body's terms.
    pub body: String,
}

/// The columns of a note with this title, aliases, frontmatter (JSON) and body.
pub fn fts_columns(
    title: &str,
    aliases: &[String],
    frontmatter: &serde_json::Value,
    body: &str,
) -> FtsColumns {
    let mut c = FtsColumns::default();
    index_terms(title, &mut c.title);
    index_terms(&aliases.join("\n"), &mut c.aliases);
    let mut values = String::new();
    if let serde_json::Value::Object(map) = frontmatter {
        for (k, v) in map {
            if !matches!(k.to_lowercase().as_str(), "aliases" | "alias") {
                value_texts(v, &mut values);
            }
        }
    }
    index_terms(&values, &mut c.fm);
    index_terms(body, &mut c.body);
    c
}

/// Every scalar inside `v`, one a line (numbers and booleans as written in JSON).
fn value_texts(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| value_texts(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| value_texts(i, out)),
        other => {
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontmatter_values_not_keys_and_not_aliases() {
        let fm = serde_json::json!({
            "cssclasses": ["soft-embed"],
            "aliases": ["Other Name"],
            "rating": 5,
            "nested": {"deep": "Value"}
        });
        let c = fts_columns("Title", &["Other Name".to_string()], &fm, "Body text");
        assert_eq!(c.title.trim_end(), "title ~titl");
        assert_eq!(c.aliases.trim_end(), "other name");
        assert!(c.fm.contains("soft embed"), "{}", c.fm);
        assert!(c.fm.contains('5') && c.fm.contains("value"), "{}", c.fm);
        assert!(
            !c.fm.contains("cssclasses") && !c.fm.contains("other"),
            "{}",
            c.fm
        );
        assert_eq!(c.body.trim_end(), "body text ~bodi");
    }
}
