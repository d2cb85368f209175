//! `sql` and MCP `query_sql` are bounded: rows stop at the limit while they stream, a
//! statement has a time bound and SQLite a memory bound, and the answer names the bound.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{BIN, TestVault};

/// Endless: a recursive CTE with no end condition.
const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";

/// Address-space ceiling for the process under test (KiB), so that a regression fails
/// the test instead of eating the shared machine's memory.
const ULIMIT_KB: u64 = 3_000_000;

fn vault_with_cache() -> TestVault {
    let v = TestVault::new(BIN);
    v.write("a.md", "# A\n\nalpha #tag\n");
    let out = v.run(&["reindex"]);
    assert!(out.status.success(), "reindex: {out:?}");
    v
}

/// `vaultkeeper ARGS` under the memory ceiling, through `sh` for `ulimit`.
fn limited(v: &TestVault, args: &[&str]) -> Command {
    let mut cmd = v.cmd();
    let inner = cmd.get_envs().fold(Command::new("sh"), |mut c, (k, val)| {
        match val {
            Some(val) => c.env(k, val),
            None => c.env_remove(k),
        };
        c
    });
    let mut sh = inner;
    sh.arg("-c")
        .arg(format!("ulimit -v {ULIMIT_KB}; exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args);
    cmd = sh;
    cmd
}

/// Runs `cmd` to its end, or kills it after `limit` and fails.
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("still running after {limit:?}: the statement is not bounded");
        }
    }
}

#[test]
fn cli_sql_stops_at_its_time_bound_and_says_so() {
    let v = vault_with_cache();
    let started = Instant::now();
    let out = run_within(
        limited(&v, &["sql", &format!("{ENDLESS} SELECT count(*) FROM c")]),
        Duration::from_secs(90),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(err.contains("time bound"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn cli_sql_stops_at_its_memory_bound_and_says_so() {
    let v = vault_with_cache();
    // About 600 MB of text built inside SQLite, far past its heap bound.
    let q = format!(
        "{} SELECT length(group_concat(printf('%.1000c', 'x'))) FROM c WHERE x < 600000",
        ENDLESS.replace("FROM c)", "FROM c WHERE x < 600000)")
    );
    let out = run_within(limited(&v, &["sql", &q]), Duration::from_secs(90));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(err.contains("memory bound"), "{err}");
}

#[test]
fn cli_sql_streams_rows_up_to_its_limit() {
    let v = vault_with_cache();
    let out = run_within(
        limited(
            &v,
            &[
                "sql",
                "--json",
                &format!("{ENDLESS} SELECT x, randomblob(100) FROM c"),
            ],
        ),
        Duration::from_secs(90),
    );
    assert!(out.status.success(), "{out:?}");
    let res: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        res["rows"].as_array().map(Vec::len),
        Some(10_000),
        "default limit"
    );
    assert_eq!(res["stopped_by"], json!("row limit (10000)"), "{res}");
}

#[test]
fn mcp_query_sql_stops_at_the_limit_while_streaming() {
    let v = vault_with_cache();
    let mut child = limited(&v, &["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mcp");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let mut send = |msg: Value| {
        writeln!(stdin, "{msg}").expect("write");
        stdin.flush().expect("flush");
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}}),
    );
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "query_sql",
        "arguments": {"sql": format!("{ENDLESS} SELECT x, randomblob(100) FROM c"), "limit": 3}}}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(msg) if msg["id"] == json!(2) => break msg,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("no answer to query_sql ({e}): the server died or hangs");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {answer}"));
    let res: Value = serde_json::from_str(text).expect("json");
    let xs: Vec<i64> = res["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r[0].as_i64())
        .collect();
    assert_eq!(xs, [1, 2, 3], "{res}");
    assert_eq!(res["truncated"], json!(true), "{res}");
    assert_eq!(res["stopped_by"], json!("row limit (3)"), "{res}");
}
