//! A rule's command that leaves its process group (`setsid`, or a double fork into a new
//! session) is still ended at the rule's timeout.

use std::path::Path;
use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

fn argv(args: &[&str]) -> String {
    serde_json::to_string(args).expect("json")
}

/// True once `pid` is gone or a zombie.
fn dead(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn pids(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Waits (10 s) until every process whose pid is in `file` is gone; whatever survives is
/// killed afterwards, so a failing run leaves nothing behind. `Err` if any survived.
fn all_killed(file: &Path, what: &str) -> std::thread::Result<()> {
    let escaped = pids(file);
    let outcome = std::panic::catch_unwind(|| {
        wait_until(what, Duration::from_secs(10), || {
            escaped.iter().all(|p| dead(p))
        })
    });
    for pid in &escaped {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid)
            .status();
    }
    outcome
}

#[test]
fn a_command_that_leaves_its_group_is_still_killed_at_the_timeout() {
    let v = TestVault::new(BIN);
    let pidfile = v.state.path().join("escaped.pid");
    // One escapee stays a child of the command's shell; the other is orphaned by a
    // subshell that exits at once, so no process of the group knows it any more.
    let script = "setsid sleep 600 & echo $! >> \"$1\"; \
                  ( setsid sh -c 'echo $$ >> \"$1\"; exec sleep 600' sh \"$1\" & ); \
                  sleep 600";
    v.set_config(&format!(
        "[runner]\nmax_attempts = 1\n\
         [[rule]]\nname = \"escape\"\ntimeout = \"500ms\"\nrun = {}\n",
        argv(&["sh", "-c", script, "sh", &pidfile.to_string_lossy()])
    ));
    let d = v.start();
    v.write("a.md", "a");
    wait_until("both escapees started", Duration::from_secs(30), || {
        pids(&pidfile).len() == 2
    });
    wait_until("the rule timed out", Duration::from_secs(30), || {
        d.log().contains("timed out")
    });
    let outcome = all_killed(&pidfile, "the escapees killed");
    d.stop();
    assert!(
        outcome.is_ok(),
        "a process that left its group survived the timeout"
    );
}

#[test]
fn a_killed_daemon_takes_its_rules_processes_with_it() {
    let v = TestVault::new(BIN);
    let pidfile = v.state.path().join("escaped.pid");
    let script = "setsid sleep 600 & echo $! >> \"$1\"; sleep 600";
    v.set_config(&format!(
        "[[rule]]\nname = \"long\"\ntimeout = \"10m\"\nrun = {}\n",
        argv(&["sh", "-c", script, "sh", &pidfile.to_string_lossy()])
    ));
    let mut d = v.start();
    v.write("a.md", "a");
    wait_until("the escapee started", Duration::from_secs(30), || {
        pids(&pidfile).len() == 1
    });
    d.kill9();
    let outcome = all_killed(&pidfile, "the escapee killed");
    assert!(
        outcome.is_ok(),
        "a rule's process outlived the daemon's kill -9"
    );
}
