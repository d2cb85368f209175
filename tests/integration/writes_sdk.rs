//! The write tools with the official Python MCP SDK as the client (`tests/mcp_sdk_writes.py`,
//! pip `mcp`, installed by `scripts/setup`) on a git copy of obsidian-help-en: every write tool,
//! a stale hash, a path outside the vault, and `git revert` restoring the file.

use vaultkeeper_testkit::git::{FAST, GitVault};

use crate::mcp::{build_cache, copy_tree, help_vault};
use crate::util::BIN;

#[test]
fn python_sdk_drives_every_write_tool() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk_writes.py");
    let g = GitVault::new(BIN, FAST);
    copy_tree(&help_vault(), &g.v.root);
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "help vault"]);
    build_cache(&g.v, &[]);
    let commits = g.commits();
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
    // 8 tool commits + 4 reverts; nothing else.
    assert_eq!(g.commits(), commits + 12);
}
