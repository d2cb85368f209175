//! `doctor` logs in to the broker (a wrong password is a failure, not "reachable"), and a
//! daemon that cannot log in says so at start, before any change.

use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

const WRONG: &str = "amqp://guest:wrong-pw-zq@127.0.0.1:5672/";
const RIGHT: &str = "amqp://guest:guest@127.0.0.1:5672/";

fn vault_with(url: &str) -> TestVault {
    let v = TestVault::new(BIN);
    v.set_config(&format!(
        "[amqp]\nurl = \"{url}\"\nexchange = \"secrets-login-{}\"\nconnect_timeout = \"5s\"\n",
        std::process::id()
    ));
    v
}

#[test]
fn doctor_fails_a_wrong_password_and_passes_the_right_one() {
    let v = vault_with(WRONG);
    let out = v.run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let broker = text.lines().find(|l| l.contains("broker")).unwrap_or("");
    assert!(broker.starts_with("FAIL"), "{text}");
    assert!(broker.contains("refused"), "{text}");
    assert!(!text.contains("wrong-pw-zq"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");

    let v = vault_with(RIGHT);
    let out = v.run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let broker = text.lines().find(|l| l.contains("broker")).unwrap_or("");
    assert!(broker.starts_with("ok"), "{text}");
    assert!(broker.contains("logged in as guest"), "{text}");
}

#[test]
fn a_daemon_that_cannot_log_in_says_so_at_start() {
    let v = vault_with(WRONG);
    let d = v.spawn();
    // No note is written: the refusal must come from the start, not from a first publish.
    wait_until(
        "the login refusal in the log",
        Duration::from_secs(30),
        || d.log().contains("access refused"),
    );
    assert!(!d.log().contains("wrong-pw-zq"));
}
