//! MCP over the daemon's streamable-HTTP transport at `/mcp` (beside stdio), with the
//! official Python SDK as the client (`tests/mcp_http_client.py`): over TCP only with the
//! API's token, over the Unix socket without one; the read tools answer from the live cache.

use std::time::Duration;

use crate::api_events::socket;
use crate::util::{BIN, TestVault, wait_until};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn the_python_sdk_speaks_mcp_over_http_with_the_token_and_on_the_socket() {
    let port = free_port();
    let v = TestVault::with_config(BIN, &format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    v.write(
        "birds/pelican.md",
        "# Pelican\n\nA pelican eats fish. #bird\n\n[[heron]]\n",
    );
    v.write("heron.md", "# Heron\n\nA heron waits.\n");
    let d = v.start();
    wait_until("the cache has the pelican", Duration::from_secs(30), || {
        let out = v.run(&["search", "pelican", "--json"]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("birds/pelican.md")
    });
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
