//! MCP over the daemon's streamable-HTTP transport at `/mcp` (beside stdio), with the
//! official Python SDK as the client (`tests/mcp_http_client.py`): over TCP only with the
//! API's token, over the Unix socket without one; the read tools answer from the live cache.

use crate::api_control::{birds_on_tcp, free_port};
use crate::api_events::socket;

#[test]
fn the_python_sdk_speaks_mcp_over_http_with_the_token_and_on_the_socket() {
    let port = free_port();
    let (v, d) = birds_on_tcp(port);
    let token = String::from_utf8_lossy(&v.run(&["token"]).stdout)
        .trim()
        .to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_http_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .arg(socket(&v))
        .arg(&token)
        .args(["pelican", "birds/pelican.md"])
        .output()
        .expect("python3 with the MCP SDK (scripts/setup installs it: pip install -r tests/requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK client failed:\n{stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    for line in [
        "ok: 401 without the token",
        "ok: tcp with the token",
        "ok: unix socket",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    d.stop();
}
