//! Integer arguments that generic MCP clients can send: declared as plain `integer` with
//! `minimum`/`maximum` (not `["integer","null"]` with a `uint32` format, which clients such as
//! the MCP Inspector do not fill in), optional by not being required, and accepted as a
//! number or as a string of digits (the Inspector's CLI sends `"2"`).

use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// Deserializes an optional count given as a number, a numeric string, or null.
pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
        F(f64),
    }
    let too_big = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::N(n)) => Ok(Some(too_big(n))),
        Some(Raw::F(f)) if f.fract() == 0.0 && f >= 0.0 => Ok(Some(too_big(f as u64))),
        Some(Raw::F(f)) => Err(serde::de::Error::custom(format!(
            "expected a whole number >= 1, got {f}"
        ))),
        Some(Raw::S(s)) => match s.trim().parse::<u64>() {
            Ok(n) => Ok(Some(too_big(n))),
            Err(_) => Err(serde::de::Error::custom(format!(
                "expected a whole number >= 1, got {s:?}"
            ))),
        },
    }
}

/// The schema of an integer between `min` and `max`.
fn bounded(min: u32, max: u32) -> Schema {
    json_schema!({ "type": "integer", "minimum": min, "maximum": max })
}

/// `search_notes.limit`.
pub fn search_limit(_: &mut SchemaGenerator) -> Schema {
    bounded(1, 200)
}

/// `recent_changes.limit`.
pub fn recent_limit(_: &mut SchemaGenerator) -> Schema {
    bounded(1, 1000)
}

/// `list_tasks.limit`.
pub fn task_limit(_: &mut SchemaGenerator) -> Schema {
    bounded(1, 5000)
}

/// `query_sql.limit`.
pub fn sql_limit(_: &mut SchemaGenerator) -> Schema {
    bounded(1, 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct A {
        #[serde(default, deserialize_with = "lenient")]
        limit: Option<u32>,
    }

    #[test]
    fn numbers_strings_and_absence() {
        let get = |j: &str| serde_json::from_str::<A>(j).map(|a| a.limit);
        assert_eq!(get(r#"{"limit":2}"#).expect("number"), Some(2));
        assert_eq!(get(r#"{"limit":"2"}"#).expect("string"), Some(2));
        assert_eq!(get(r#"{"limit":null}"#).expect("null"), None);
        assert_eq!(get(r#"{}"#).expect("absent"), None);
        assert!(get(r#"{"limit":"two"}"#).is_err());
        assert!(get(r#"{"limit":-1}"#).is_err());
    }
}
