//! The page in headless Chromium (Debian's `chromium`, driven over the DevTools protocol
//! by tests/page_check.py): it loads over TCP with the token, shows healthy, a note written
//! on disk appears in its live event list, a search shows results, a note its backlinks.
//! Screenshots go to the test output folder (CARGO_TARGET_TMPDIR/page).

use std::process::Command;
use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

#[test]
fn the_page_shows_health_live_events_search_and_a_note() {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new("which")
            .arg(c)
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        panic!("no chromium on PATH: scripts/setup installs Debian's chromium for the page test");
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let v = TestVault::with_config(BIN, &format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    v.write(
        "birds/pelican.md",
        "# Pelican\n\nA pelican eats fish.\n\n[[heron]]\n",
    );
    v.write(
        "heron.md",
        "# Heron\n\nA heron waits for the [[pelican]].\n",
    );
    let d = v.start();
    wait_until("the cache has the pelican", Duration::from_secs(30), || {
        String::from_utf8_lossy(&v.run(&["search", "pelican", "--json"]).stdout)
            .contains("birds/pelican.md")
    });
    let url = String::from_utf8_lossy(&v.run(&["open"]).stdout)
        .trim()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/page_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(chromium)
        .arg(&url)
        .arg(&v.root)
        .arg(&out_dir)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "page check: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the page check's JSON line");
    eprintln!("page: {seen} (screenshots in {})", out_dir.display());
    assert_eq!(seen["healthy"], true, "{seen}");
    assert!(seen["hits"].as_u64().unwrap_or(0) >= 1, "{seen}");
    assert!(
        seen["note"].as_str().unwrap_or("").contains("Backlinks"),
        "{seen}"
    );
    for shot in ["1-healthy.png", "2-event.png", "3-search.png", "4-note.png"] {
        let len = std::fs::metadata(out_dir.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "{shot}: {len} bytes");
    }
    d.stop();
}
