//! No password of a broker URL, whatever form the user typed it in, appears in a log
//! line, an error, `status` or `doctor`.

use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

/// (URL as typed, secrets that must never be shown).
const FORMS: &[(&str, &[&str])] = &[
    ("amqp:/bob:leakpw1@127.0.0.1:1/", &["leakpw1"]),
    ("amqp:bob:leakpw2@127.0.0.1:1/", &["leakpw2"]),
    (
        "amqp://bob:leak%40pw3@127.0.0.1:1/",
        &["leak%40pw3", "leak@pw3"],
    ),
    ("amqp://bob@127.0.0.1:1/?password=leakpw4", &["leakpw4"]),
    (
        "amqp://bob:leakpw5@127.0.0.1:1/v?heartbeat=5&auth=leakpw5q",
        &["leakpw5"],
    ),
    (
        "amqp://bob:leak pw6@127.0.0.1:1/",
        &["leak pw6", "leak%20pw6"],
    ),
    ("amqp://bob:leakpw7@127.0.0.1:99999/", &["leakpw7"]),
    ("amqps//bob:leakpw8@127.0.0.1:1", &["leakpw8"]),
    (
        "amqp://bob:leakpw9@127.0.0.1:1/?heartbeat=leakpw9",
        &["leakpw9"],
    ),
];

fn assert_clean(what: &str, url: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} for {url:?} shows {s:?}:\n{text}");
    }
}

#[test]
fn no_url_form_leaks_its_password() {
    for (url, secrets) in FORMS {
        let v = TestVault::new(BIN);
        v.write("a.md", "a");
        v.set_config(&format!(
            "[amqp]\nurl = {}\nconnect_timeout = \"1s\"\nreconnect_max = \"1s\"\n",
            serde_json::to_string(url).expect("json")
        ));
        for args in [
            &["doctor"][..],
            &["status"],
            &["--json", "status"],
            &["--json", "doctor"],
        ] {
            let out = v.run(args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_clean(&format!("{args:?}"), url, &text, secrets);
        }
        let mut d = v.spawn();
        wait_until(
            "the daemon to try the broker or refuse the URL",
            Duration::from_secs(30),
            || {
                let log = d.log();
                log.contains("amqp")
                    || log.contains("Error")
                    || log.contains("ERROR")
                    || d.child.try_wait().ok().flatten().is_some()
            },
        );
        let log = d.log();
        let _ = d.child.kill();
        let _ = d.child.wait();
        assert_clean("the daemon log", url, &log, secrets);
    }
}

#[test]
fn a_url_password_printed_by_a_rule_is_redacted_in_the_log_and_status() {
    let v = TestVault::new(BIN);
    v.set_config(&format!(
        "[[rule]]\nname = \"chatty\"\nrun = {}\n",
        serde_json::to_string(&[
            "sh",
            "-c",
            "echo connecting to postgres://bob:rulepw42@db/x; echo failed: https://ann:rulepw43@h:1/p >&2",
        ])
        .expect("json")
    ));
    let d = v.start();
    v.write("a.md", "a");
    wait_until(
        "the rule output in the log",
        Duration::from_secs(30),
        || d.log().contains("failed: https://"),
    );
    let status = v.run(&["--json", "status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let log = d.stop();
    assert!(log.contains("postgres://bob:***@db/x"), "{log}");
    assert_clean(
        "the daemon log",
        "rule output",
        &log,
        &["rulepw42", "rulepw43"],
    );
    assert_clean("status", "rule output", &status, &["rulepw42", "rulepw43"]);
}
