//! `status` never says healthy when it cannot know: a status the daemon did not refresh
//! is shown as stale, with its age.

use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

fn status(v: &TestVault) -> (Option<i32>, serde_json::Value, String) {
    let out = v.run(&["status", "--json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let text = String::from_utf8_lossy(&v.run(&["status"]).stdout).into_owned();
    (out.status.code(), json, text)
}

fn wait_healthy(v: &TestVault, what: &str) {
    let mut last = serde_json::Value::Null;
    wait_until(what, Duration::from_secs(30), || {
        let (code, s, _) = status(v);
        last = s;
        code == Some(0)
    });
    assert_eq!(last["healthy"], true, "{last}");
}

/// Waits until `status` stops calling the daemon healthy; returns the last report.
fn wait_stale(v: &TestVault, what: &str) -> (serde_json::Value, String) {
    let mut last = (serde_json::Value::Null, String::new());
    wait_until(what, Duration::from_secs(60), || {
        let (code, s, text) = status(v);
        let unhealthy = code == Some(1);
        last = (s, text);
        unhealthy
    });
    last
}

#[test]
fn a_wedged_daemon_is_shown_stale_with_its_age() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    let d = v.start();
    wait_healthy(&v, "a healthy status");
    // Stopped by the kernel: it holds its lock but refreshes nothing.
    d.signal(libc::SIGSTOP);
    let (s, text) = wait_stale(&v, "status to notice the daemon stopped refreshing");
    d.signal(libc::SIGCONT);
    assert_eq!(s["healthy"], false, "{s}");
    assert_eq!(s["daemon"]["pid"], d.pid(), "{s}");
    assert_eq!(s["daemon"]["stale"], true, "{s}");
    let age = s["daemon"]["status_age_secs"].as_u64().unwrap_or(0);
    assert!(age >= 10, "age {age}: {s}");
    assert!(text.contains("stale"), "{text}");
    // Once it runs again the status is fresh and healthy.
    wait_healthy(&v, "healthy again after SIGCONT");
    d.stop();
}

#[test]
fn a_status_the_daemon_cannot_write_is_shown_stale() {
    let v = TestVault::new(BIN);
    let d = v.start();
    wait_healthy(&v, "a healthy status");
    // The daemon writes a temp file then renames it; a folder in its place makes every
    // write fail, as a full disk would.
    std::fs::create_dir(v.state_dir().join("status.json.tmp")).expect("block the status");
    let (s, text) = wait_stale(&v, "status to notice it is not refreshed");
    assert_eq!(s["daemon"]["stale"], true, "{s}");
    assert!(text.contains("stale"), "{text}");
    d.wait_log("cannot write", Duration::from_secs(10));
    std::fs::remove_dir(v.state_dir().join("status.json.tmp")).expect("unblock");
    wait_healthy(&v, "healthy again once it can write");
    d.stop();
}

#[test]
fn a_status_left_by_an_earlier_daemon_is_not_taken_for_the_current_one() {
    let v = TestVault::new(BIN);
    let d = v.start();
    wait_healthy(&v, "a healthy status");
    d.stop();
    // A daemon that is running but has not written its own status yet (here: stopped by
    // the kernel before its first scan ends) must not borrow the last run's.
    vaultkeeper_testkit::vaultgen::generate(&v.root, 4_000, 3).expect("generate");
    let d = v.spawn();
    d.wait_log("scanning the vault", Duration::from_secs(20));
    d.signal(libc::SIGSTOP);
    let (_, s, _) = status(&v);
    d.signal(libc::SIGCONT);
    assert_eq!(s["daemon"]["pid"], d.pid(), "{s}");
    assert_eq!(
        s["daemon"]["ready"], false,
        "the first scan is under way, whatever the last run wrote: {s}"
    );
    d.wait_ready();
    wait_healthy(&v, "healthy once ready");
    d.stop();
}
