//! Interop of the command line with scripts and generic clients: `--json` errors are JSON on
//! stdout with a stable shape and a non-zero exit, a closed pipe ends quietly with 0, `note
//! NAME` with several matches lists them, `sql` runs reading pragmas and `EXPLAIN`, and note
//! resources report their real MIME type.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::mcp::{Mcp, build_cache};
use crate::util::{BIN, TestVault};

fn vault() -> TestVault {
    let tv = TestVault::new(BIN);
    tv.write("x/Note.md", "# Note in x\n");
    tv.write("y/Note.md", "# Note in y\n");
    tv.write("Solo.md", "# Solo\n");
    tv.write("publish.css", "body { color: red; }\n");
    let many: String = (0..4000).map(|i| format!("[[missing {i}]]\n")).collect();
    tv.write("Many.md", &many);
    build_cache(&tv, &[]);
    tv
}

#[test]
fn json_errors_are_json_on_stdout_with_a_nonzero_exit() {
    let tv = vault();
    let out = tv.run(&["--json", "note", "nope"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        v,
        json!({"error": {"message": "no note matches \"nope\"", "causes": []}})
    );
    // Without --json: text on stderr, nothing on stdout.
    let out = tv.run(&["note", "nope"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no note matches"));
}

#[test]
fn usage_errors_under_json_are_json_too() {
    let tv = TestVault::new(BIN);
    for args in [
        &["--json", "search", "--field", "novalue", "x"][..],
        &["--json", "no-such-command"][..],
        &["search", "--json", "--limit", "many", "x"][..],
    ] {
        let out = tv.run(args);
        assert!(!out.status.success(), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{args:?}: {v}");
        assert!(v["error"]["causes"].is_array(), "{args:?}: {v}");
    }
    // Help is not an error, and without --json a usage error stays text on stderr.
    let out = tv.run(&["--json", "--help"]);
    assert!(out.status.success());
    let out = tv.run(&["search", "--field", "novalue", "x"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
}

#[test]
fn a_name_with_several_notes_lists_them() {
    let tv = vault();
    let out = tv.run(&["note", "Note"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"Note\" matches 2 notes: x/Note.md, y/Note.md"),
        "{err}"
    );
    // A path, or a name only one note has, is found.
    assert!(tv.run(&["note", "y/Note.md"]).status.success());
    assert!(tv.run(&["note", "Solo"]).status.success());
}

#[test]
fn sql_runs_reading_pragmas_and_explain() {
    let tv = vault();
    for q in [
        "PRAGMA table_info(notes)",
        "pragma table_list",
        "PRAGMA main.table_info(notes)",
        "PRAGMA page_count",
        "PRAGMA pragma_list",
        "EXPLAIN QUERY PLAN SELECT path FROM notes WHERE path = 'x'",
        "EXPLAIN SELECT 1",
    ] {
        let out = tv.run(&["--json", "sql", q]);
        assert!(
            out.status.success(),
            "{q}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(
            v["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{q}: {v}"
        );
    }
    let out = tv.run(&["sql", "PRAGMA journal_mode = DELETE"]);
    assert!(!out.status.success(), "a pragma assignment is refused");
}

#[test]
fn a_closed_pipe_ends_quietly_with_zero() {
    let tv = vault();
    let mut cmd = tv.cmd();
    let mut child = cmd
        .args(["--json", "unresolved"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one byte and close the pipe, as `| head -c 1` does.
    {
        use std::io::Read;
        let mut stdout = child.stdout.take().expect("stdout");
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).expect("one byte");
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status.code());
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn resources_report_their_mime_type() {
    let tv = vault();
    let mut m = Mcp::spawn(&tv);
    m.handshake();
    let css = m.result("resources/read", json!({"uri": "vault:///publish.css"}));
    assert_eq!(css["contents"][0]["mimeType"], "text/css", "{css}");
    let md = m.result("resources/read", json!({"uri": "vault:///Solo.md"}));
    assert_eq!(md["contents"][0]["mimeType"], "text/markdown", "{md}");
}
