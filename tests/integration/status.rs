//! `vaultkeeper status --json` in each state, and dead letters through the CLI.

use std::time::Duration;

use vaultkeeper_testkit::GitVault;

use crate::util::{BIN, TestVault, wait_until};

fn status(v: &TestVault) -> (Option<i32>, serde_json::Value) {
    let out = v.run(&["status", "--json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json)
}

fn consumer<'a>(s: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    s["consumers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

#[test]
fn healthy_daemon_reports_what_is_off_without_being_unhealthy() {
    let v = TestVault::new(BIN);
    let d = v.start();
    let mut last = serde_json::Value::Null;
    wait_until(
        "status with the cache consumer",
        Duration::from_secs(20),
        || {
            let (code, s) = status(&v);
            last = s;
            code == Some(0)
                && consumer(&last, "cache").is_some()
                && last["off"].as_array().is_some_and(|o| !o.is_empty())
        },
    );
    let off: Vec<&str> = last["off"]
        .as_array()
        .expect("off")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(off.contains(&"git") && off.contains(&"amqp"), "{last}");
    assert_eq!(last["healthy"], true);
    d.stop();
}

#[test]
fn a_lagging_consumer_shows_its_lag() {
    let g = GitVault::new(BIN, "[git]\nquiet = \"60s\"\nmax_delay = \"10m\"\n");
    let v = &g.v;
    let d = g.start();
    v.write("a.md", "a");
    v.write("b.md", "b");
    let mut last = serde_json::Value::Null;
    wait_until("git lag in status", Duration::from_secs(20), || {
        let (_, s) = status(v);
        last = s;
        consumer(&last, "git").is_some_and(|g| g["lag"].as_u64().unwrap_or(0) >= 2)
    });
    let (code, _) = status(v);
    assert_eq!(
        code,
        Some(0),
        "waiting for a quiet period is not unhealthy: {last}"
    );
    d.stop();
}

#[test]
fn a_broker_that_is_down_makes_status_unhealthy_without_the_password() {
    // The forwarder cannot drain without a broker: a short drain keeps stop() quick.
    let v = TestVault::with_config(
        BIN,
        "[amqp]\nexchange = \"vk.test.status-down\"\nconnect_timeout = \"1s\"\n\n[runner]\nshutdown_timeout = \"2s\"\n",
    );
    let mut cmd = v.cmd();
    cmd.env(
        "VAULTKEEPER_AMQP_URL",
        "amqp://guest:pw-secret-123@127.0.0.1:1/%2f",
    );
    let d = v.start_with(cmd);
    v.write("a.md", "a");
    let mut last = (None, serde_json::Value::Null);
    wait_until("amqp error in status", Duration::from_secs(30), || {
        last = status(&v);
        consumer(&last.1, "amqp").is_some_and(|a| !a["last_error"].is_null())
    });
    assert_eq!(last.0, Some(1), "{}", last.1);
    let amqp = consumer(&last.1, "amqp").expect("amqp");
    assert_eq!(amqp["detail"]["connected"], false, "{amqp}");
    let text = last.1.to_string();
    assert!(!text.contains("pw-secret-123"), "password leaked: {text}");
    let human = String::from_utf8_lossy(&v.run(&["status"]).stdout).into_owned();
    assert!(
        !human.contains("pw-secret-123") && human.contains("disconnected"),
        "{human}"
    );
    // The journal keeps going while the broker is away.
    v.write("b.md", "b");
    v.wait_events(2, "journaling goes on");
    let log = d.stop();
    assert!(!log.contains("pw-secret-123"), "password in the log");
}

#[test]
fn a_dead_letter_makes_status_unhealthy_until_retried_or_dropped() {
    let v = TestVault::new(BIN);
    let flag = v.state.path().join("flag");
    v.set_config(&format!(
        "[runner]\nmax_attempts = 2\nretry_min = \"10ms\"\nretry_max = \"50ms\"\n\n[[rule]]\nname = \"needs-flag\"\non = \"created\"\nrun = [\"test\", \"-f\", \"{}\"]\n",
        flag.display()
    ));
    let d = v.start();
    v.write("a.md", "a");
    let mut last = (None, serde_json::Value::Null);
    wait_until("a dead letter", Duration::from_secs(30), || {
        last = status(&v);
        last.1["dead_letters"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    assert_eq!(last.0, Some(1), "{}", last.1);
    let dl = &last.1["dead_letters"][0];
    assert_eq!(dl["consumer"], "rules");
    assert_eq!(dl["path"], "a.md");
    let id = dl["id"].as_i64().expect("id").to_string();
    let listed = v.run(&["dead-letters"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("a.md"));

    // Fix the cause and retry: the letter goes away and status is healthy again.
    std::fs::write(&flag, "").expect("flag");
    let out = v.run(&["dead-letters", "--retry", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "retried dead letter removed",
        Duration::from_secs(20),
        || {
            let (code, s) = status(&v);
            code == Some(0) && s["dead_letters"].as_array().is_some_and(|a| a.is_empty())
        },
    );

    // A second failure, dropped by hand.
    std::fs::remove_file(&flag).expect("rm flag");
    v.write("b.md", "b");
    wait_until("second dead letter", Duration::from_secs(30), || {
        status(&v).1["dead_letters"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let id = status(&v).1["dead_letters"][0]["id"]
        .as_i64()
        .expect("id")
        .to_string();
    assert!(v.run(&["dead-letters", "--drop", &id]).status.success());
    assert_eq!(
        status(&v).1["dead_letters"].as_array().map(|a| a.len()),
        Some(0)
    );
    d.stop();
}
