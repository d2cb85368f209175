//! The write tools with the official Python MCP SDK as the client (`tests/mcp_sdk_writes.py`,
//! pip `mcp`, installed by `scripts/setup`) on a git copy of obsidian-help-en: every write tool,
//! with the daemon running, a stale hash, a path outside the vault, and `git revert` restoring
//! the file; every tool's commit made once, none folded into another.

use vaultkeeper_testkit::git::{FAST, GitVault};

use std::time::Duration;

use crate::mcp::{copy_tree, help_vault};
use crate::util::{BIN, wait_until};

#[test]
fn python_sdk_drives_every_write_tool() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk_writes.py");
    let g = GitVault::new(BIN, FAST);
    copy_tree(&help_vault(), &g.v.root);
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "help vault"]);
    let daemon = g.start();
    wait_until("the cache has the vault", Duration::from_secs(60), || {
        g.run(&["note", "Getting started/Link notes.md"])
            .status
            .success()
    });
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script).arg(BIN).arg(&g.v.root);
    // The same environment as the binary's own commands (state folder, config, git identity).
    for (k, v) in g.cmd().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .output()
        .expect("python3 with the MCP SDK (scripts/setup installs it: pip install -r tests/requirements.txt)");
    assert!(
        out.status.success(),
        "the SDK client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: every write tool"));
    // Each tool's commit is there once: the daemon's git consumer committed none of them again.
    let subjects = g.git(&["log", "--format=%s"]);
    for tool in [
        "append_to_note",
        "set_frontmatter_field",
        "remove_frontmatter_field",
        "replace_text",
        "create_note",
        "replace_section",
        "move_note",
        "delete_note",
    ] {
        let n = subjects
            .lines()
            .filter(|l| l.starts_with(&format!("mcp {tool}: ")))
            .count();
        assert_eq!(n, 1, "{tool}: {subjects}");
    }
    assert_eq!(g.additions().get("SDK/Scratch.md"), Some(&1), "{subjects}");
    drop(daemon);
}
