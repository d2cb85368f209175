//! The API's status, control and queries, with real clients (curl, the CLI): `start`,
//! `stop`, `restart`; `stop` commits what git was still waiting on; TCP needs the token;
//! queries answer in the CLI's JSON shapes; a path outside the vault is refused.

use std::process::Command;
use std::time::Duration;

use vaultkeeper_testkit::git::GitVault;

use crate::api_events::socket;
use crate::util::{BIN, TestVault, wait_until};

/// `curl` on the socket: (HTTP status, body).
fn curl(sock: &str, method: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            sock,
        ])
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("curl");
    split_status(&out.stdout)
}

fn split_status(stdout: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Stops a daemon `start` detached, even when the test fails.
struct Started<'a>(&'a GitVault);

impl Drop for Started<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop"]);
    }
}

/// The pid of the daemon `status` sees, if any.
fn daemon_pid(g: &GitVault) -> Option<i64> {
    let out = g.run(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    s["daemon"]["pid"].as_i64()
}

#[test]
fn start_stop_restart_and_stop_commits_what_is_pending() {
    // Git waits an hour: only an explicit commit or the stop commits.
    let g = GitVault::new(BIN, "[git]\nquiet = \"1h\"\nmax_delay = \"2h\"\n");
    g.initial_commit();
    let out = g.run(&["start"]);
    assert!(out.status.success(), "start: {out:?}");
    let _guard = Started(&g);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("started (pid"),
        "{out:?}"
    );
    let again = g.run(&["start"]);
    assert!(again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already running"),
        "{again:?}"
    );

    let sock = socket(&g.v);
    let (code, body) = curl(&sock, "GET", "/v1/status");
    assert_eq!(code, 200, "{body}");
    let live = json(&body);
    assert_eq!(live["daemon"]["ready"], true, "{live}");
    assert_eq!(live["daemon"]["stale"], false, "{live}");
    // The CLI shows the same report.
    let cli = json(&String::from_utf8_lossy(
        &g.run(&["status", "--json"]).stdout,
    ));
    assert_eq!(cli["daemon"]["pid"], live["daemon"]["pid"], "{cli}");

    g.v.write("pending.md", "# waiting for git\n");
    g.wait_event("pending.md");
    assert!(!g.porcelain().is_empty(), "git waits for its quiet hour");
    let commit = g.run(&["commit"]);
    assert!(commit.status.success(), "commit: {commit:?}");
    assert!(
        g.porcelain().is_empty(),
        "committed through the API: {}",
        g.porcelain()
    );
    // It prints the commit made as `git log --oneline` would.
    let printed = String::from_utf8_lossy(&commit.stdout).trim().to_string();
    let oneline = g.git(&["log", "-1", "--format=%h %s", "--abbrev=12"]);
    assert_eq!(printed, oneline.trim(), "{commit:?}");
    // The API's reply names the commit a flush made; a flush with nothing to commit, none.
    g.v.write("pending1.md", "# one more\n");
    g.wait_event("pending1.md");
    let (code, body) = curl(&sock, "POST", "/v1/commit");
    assert_eq!(code, 200, "{body}");
    let reply = json(&body);
    assert_eq!(reply["commit"], g.head().as_str(), "{reply}");
    assert_eq!(
        reply["summary"],
        g.git(&["log", "-1", "--format=%s"]).trim(),
        "{reply}"
    );
    let (code, body) = curl(&sock, "POST", "/v1/commit");
    assert_eq!(code, 200, "{body}");
    assert!(
        json(&body).get("commit").is_none(),
        "nothing to commit: {body}"
    );

    g.v.write("pending2.md", "# also waiting\n");
    g.wait_event("pending2.md");
    assert!(!g.porcelain().is_empty(), "git waits again");
    let stop = g.run(&["stop"]);
    assert!(stop.status.success(), "stop: {stop:?}");
    let said = String::from_utf8_lossy(&stop.stdout).into_owned();
    assert!(said.contains("stopped (pid"), "{said}");
    assert!(said.contains("git caught up"), "{said}");
    assert!(
        g.porcelain().is_empty(),
        "stop committed first: {}",
        g.porcelain()
    );
    assert!(
        g.git(&["log", "--name-only", "--format="])
            .contains("pending2.md")
    );
    assert_eq!(daemon_pid(&g), None, "no daemon any more");
    let stopped = g.run(&["stop"]);
    assert!(
        String::from_utf8_lossy(&stopped.stdout).contains("not running"),
        "{stopped:?}"
    );

    // restart: starts when none runs, replaces the one that runs.
    let r1 = g.run(&["restart"]);
    assert!(r1.status.success(), "restart: {r1:?}");
    let first = daemon_pid(&g).expect("running");
    let r2 = g.run(&["restart"]);
    assert!(r2.status.success(), "restart: {r2:?}");
    assert!(
        String::from_utf8_lossy(&r2.stdout).contains("stopped (pid"),
        "{r2:?}"
    );
    let second = daemon_pid(&g).expect("running again");
    assert_ne!(first, second, "a new daemon");
    assert!(g.run(&["stop"]).status.success());
}

#[test]
fn control_over_the_socket_reload_and_stop() {
    let v = TestVault::new(BIN);
    let mut d = v.start();
    let sock = socket(&v);
    let (code, body) = curl(&sock, "POST", "/v1/reload");
    assert_eq!(code, 202, "{body}");
    d.wait_log("configuration reloaded", Duration::from_secs(20));
    let (code, body) = curl(&sock, "POST", "/v1/commit");
    assert_eq!(code, 409, "git is off here: {body}");
    assert!(
        json(&body)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("git"),
        "{body}"
    );
    let (code, body) = curl(&sock, "GET", "/v1/nothing");
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(&sock, "POST", "/v1/stop");
    assert_eq!(code, 202, "{body}");
    let status = d.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        !std::path::Path::new(&sock).exists(),
        "the socket is removed"
    );
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A vault of two birds (the pelican links the heron) whose API also listens on TCP `port`,
/// with its daemon started and the pelican searchable.
pub(crate) fn birds_on_tcp(port: u16) -> (TestVault, vaultkeeper_testkit::Daemon) {
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
    (v, d)
}

#[test]
fn tcp_needs_the_token_and_queries_answer_like_the_cli() {
    let port = free_port();
    let (v, d) = birds_on_tcp(port);

    let url = format!("http://127.0.0.1:{port}/v1/status");
    let bare = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &url])
        .output()
        .expect("curl");
    let (code, body) = split_status(&bare.stdout);
    assert_eq!(code, 401, "no token: {body}");
    let wrong = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "Authorization: Bearer nope",
            &url,
        ])
        .output()
        .expect("curl");
    assert_eq!(split_status(&wrong.stdout).0, 401);
    let token = String::from_utf8_lossy(&v.run(&["token"]).stdout)
        .trim()
        .to_string();
    assert_eq!(token.len(), 64, "{token}");
    let authed = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &url,
        ])
        .output()
        .expect("curl");
    let (code, body) = split_status(&authed.stdout);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["healthy"], true, "{body}");
    let open = String::from_utf8_lossy(&v.run(&["open"]).stdout).into_owned();
    assert!(
        open.contains(&format!("127.0.0.1:{port}/#token={token}")),
        "{open}"
    );
    let mode = std::fs::metadata(v.state_dir().join("api.token"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("token file");
    assert_eq!(mode, 0o600);

    // The same JSON as the CLI's --json, query by query.
    let sock = socket(&v);
    for (path, args) in [
        ("/v1/query/search?query=pelican", vec!["search", "pelican"]),
        (
            "/v1/query/note?note=birds/pelican.md",
            vec!["note", "birds/pelican.md"],
        ),
        ("/v1/query/backlinks?note=heron", vec!["backlinks", "heron"]),
        ("/v1/query/tags?counts=true", vec!["tags", "--counts"]),
        ("/v1/query/recent?limit=5", vec!["recent", "--limit", "5"]),
    ] {
        let (code, body) = curl(&sock, "GET", path);
        assert_eq!(code, 200, "{path}: {body}");
        let mut cli = args.clone();
        cli.push("--json");
        let out = v.run(&cli);
        assert!(out.status.success(), "{cli:?}: {out:?}");
        assert_eq!(
            json(&body),
            json(&String::from_utf8_lossy(&out.stdout)),
            "{path}"
        );
    }
    let (code, body) = curl(&sock, "GET", "/v1/query/note?note=../../etc/passwd");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("outside the vault"), "{body}");
    let (code, body) = curl(&sock, "GET", "/v1/query/note?note=nothing-like-it");
    assert_eq!(code, 404, "{body}");
    let (code, body) = curl(&sock, "GET", "/v1/query/search?query=x&colour=red");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("colour"), "{body}");
    d.stop();
}

#[test]
fn a_non_loopback_address_is_refused_unless_allowed() {
    let v = TestVault::with_config(
        BIN,
        &format!("[api]\nlisten = \"0.0.0.0:{}\"\n", free_port()),
    );
    let mut d = v.spawn();
    let status = d.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "started on 0.0.0.0");
    assert!(d.log().contains("allow_remote"), "{}", d.log());
}
