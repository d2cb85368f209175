//! What one note can cost: a note over `max_note_bytes` (2 MiB by default) is indexed as
//! metadata only, and `note` (text and `--json`) says its body was not indexed and why.

use serde_json::Value;

use crate::util::{BIN, TestVault};

#[test]
fn a_note_over_the_default_limit_is_metadata_only_and_note_says_so() {
    let v = TestVault::new(BIN);
    // One line of 2 MiB and a bit: over the default limit (it was 50 MiB, where one such
    // note held about 15x its size in memory while indexed).
    let mut huge = "hugeword ".repeat(2 * 1024 * 1024 / 9 + 1);
    huge.push_str("lastword\n");
    v.write("Huge.md", &huge);
    v.write("Small.md", "# Small\n\nsmallword here\n");
    let out = v.run(&["reindex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = v.run(&["--json", "note", "Huge.md"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["body_indexed"], Value::Bool(false), "{j}");
    let why = j["not_indexed"].as_str().unwrap_or_default();
    assert!(
        why.contains("too large") && why.contains("max_note_bytes"),
        "{why:?}"
    );
    assert_eq!(j["size"].as_u64(), Some(huge.len() as u64));

    let out = v.run(&["note", "Huge.md"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("body:    not indexed (too large"), "{text}");

    let out = v.run(&["--json", "note", "Small.md"]);
    let j: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["body_indexed"], Value::Bool(true), "{j}");
    assert_eq!(j["not_indexed"], Value::Null, "{j}");

    // Its text is not searchable; the small note's is.
    let out = v.run(&["--json", "search", "lastword"]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["hits"].as_array().map(Vec::len), Some(0), "{r}");
    let out = v.run(&["--json", "search", "smallword"]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["hits"][0]["path"], "Small.md", "{r}");
}
