//! Daemon life: restarts, kills, signals, the lock, the CLI around the journal.

use std::time::{Duration, Instant};

use crate::util::{BIN, TestVault, live_paths, summary, wait_until};
use vaultkeeper_core::event::{Event, Kind, Origin};

#[test]
fn changes_while_stopped_become_events_on_start() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    v.write("b.md", "b");
    v.write("c.md", "c");
    let d = v.start();
    v.wait_events(3, "first scan");
    d.stop();
    v.write("a.md", "a2");
    std::fs::remove_file(v.path("b.md")).expect("rm");
    std::fs::rename(v.path("c.md"), v.path("e.md")).expect("mv");
    v.write("d.md", "d");
    let d = v.start();
    let events = v.wait_events(7, "reconcile");
    d.stop();
    let mut tail: Vec<_> = summary(&events[3..]);
    tail.sort();
    assert_eq!(
        tail,
        vec![
            ("created".into(), "d.md".into(), None),
            ("deleted".into(), "b.md".into(), None),
            ("modified".into(), "a.md".into(), None),
            ("renamed".into(), "e.md".into(), Some("c.md".into())),
        ]
    );
    assert!(events[3..].iter().all(|e| e.origin == Origin::Rescan));
    // A restart with nothing changed adds nothing.
    let d = v.start();
    d.stop();
    assert_eq!(v.events().len(), 7);
}

#[test]
fn kill_9_during_a_burst_then_restart_matches_the_disk() {
    let v = TestVault::new(BIN);
    let mut d = v.start();
    let root = v.root.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..2000 {
            let dir = root.join(format!("burst/{:02}", i % 40));
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(format!("n{i}.md")), format!("note {i}\n")).expect("write");
            if i % 10 == 0 && i > 0 {
                // Some churn: rewrite and delete earlier notes too.
                let j = i - 5;
                let p = root.join(format!("burst/{:02}/n{j}.md", j % 40));
                if i % 20 == 0 {
                    let _ = std::fs::remove_file(p);
                } else {
                    let _ = std::fs::write(p, format!("edited {j}\n"));
                }
            }
        }
    });
    // Kill once part of the burst is journaled.
    wait_until("some events", Duration::from_secs(30), || {
        v.events().len() > 200
    });
    d.kill9();
    writer.join().expect("writer");
    let d = v.start();
    let disk = v.files_on_disk();
    assert_eq!(disk.len(), 2000 - 99);
    let mut last = Vec::new();
    wait_until("journal equals disk", Duration::from_secs(30), || {
        last = v.events();
        live_paths(&last) == disk
    });
    d.stop();
    // Hashes agree with the content on disk too.
    let mut latest: std::collections::BTreeMap<String, &Event> = Default::default();
    for e in &last {
        if let Some(old) = &e.old_path {
            latest.remove(old);
        }
        if e.event == Kind::Deleted {
            latest.remove(&e.file_path);
        } else {
            latest.insert(e.file_path.clone(), e);
        }
    }
    for (path, e) in latest {
        let content = std::fs::read(v.path(&path)).expect("read");
        assert_eq!(
            e.hash.as_deref(),
            Some(blake3::hash(&content).to_hex().as_str()),
            "{path}"
        );
    }
}

#[test]
fn sigterm_exits_zero_and_a_second_daemon_is_refused() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    let d = v.start();
    let out = v.run(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");
    let t = Instant::now();
    let log = d.stop();
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn pending_changes_are_journaled_on_sigterm() {
    // A long debounce: the change is still pending when the signal arrives.
    let v = TestVault::with_config(BIN, "[watch]\ndebounce = \"30s\"\nmax_latency = \"60s\"\n");
    let mut cmd = v.cmd();
    cmd.env("VAULTKEEPER_LOG", "vaultkeeper=trace");
    let d = v.start_with(cmd);
    v.write("late.md", "x");
    d.wait_log("change noted", Duration::from_secs(10));
    assert!(v.events().is_empty(), "still debounced");
    d.stop();
    let events = v.events();
    assert_eq!(
        summary(&events),
        vec![("created".into(), "late.md".into(), None)]
    );
}

#[test]
fn events_command_prints_json_lines_and_filters() {
    let v = TestVault::new(BIN);
    v.write("a.md", "alpha");
    v.write("b.txt", "beta");
    let d = v.start();
    v.wait_events(2, "scan");
    d.stop();
    let out = v.run(&["events", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an envelope per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let raw: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("line"),
    )
    .expect("json");
    for key in [
        "event",
        "file_path",
        "content",
        "size",
        "extension",
        "timestamp",
        "routing_key",
        "protocol_version",
        "id",
        "seq",
        "hash",
        "vault",
        "host",
        "origin",
    ] {
        assert!(raw.get(key).is_some(), "missing {key}");
    }
    let out = v.run(&["events", "--json", "--since", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let out = v.run(&["events"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created") && text.contains("b.txt"), "{text}");
}

#[test]
fn events_follow_tails_new_events() {
    let v = TestVault::new(BIN);
    let d = v.start();
    let follow = v
        .cmd()
        .args(["events", "--follow", "--json", "--limit", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("follow");
    v.write("one.md", "1");
    v.write("two.md", "2");
    let out = follow.wait_with_output().expect("follow output");
    d.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("one.md") && text.contains("two.md"));
}

#[test]
fn bad_config_names_file_and_key() {
    let v = TestVault::with_config(BIN, "[watch]\ndebounse = \"1s\"\n");
    let out = v.run(&["run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("debounse"),
        "{err}"
    );
}

#[test]
fn secret_in_vault_config_is_refused_without_printing_it() {
    let v = TestVault::new(BIN);
    v.write(
        ".vaultkeeper.toml",
        "[amqp]\nurl = \"amqp://guest:s3cret-pw@127.0.0.1:5672/%2f\"\n",
    );
    let out = v
        .cmd()
        .env_remove("VAULTKEEPER_CONFIG")
        .arg("run")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".vaultkeeper.toml") && err.contains("amqp.url"),
        "{err}"
    );
    assert!(err.contains("VAULTKEEPER_AMQP_URL"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[test]
fn init_writes_a_starter_config_that_runs() {
    let v = TestVault::new(BIN);
    // `init` on the vault, with no config of the test's in the way.
    let init = || {
        v.cmd()
            .env_remove("VAULTKEEPER_CONFIG")
            .args(["init"])
            .arg(&v.root)
            .output()
            .expect("init")
    };
    let out = init();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(v.path(".vaultkeeper.toml").is_file());
    let again = init();
    assert!(!again.status.success(), "refuses to overwrite");
    let d = v.spawn();
    d.wait_ready();
    d.stop();
}

#[test]
fn status_reports_running_and_stopped() {
    let v = TestVault::new(BIN);
    let out = v.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "no daemon: unhealthy");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(s["daemon"].is_null());
    let d = v.start();
    v.write("a.md", "a");
    v.wait_events(1, "event");
    let out = v.run(&["status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(s["daemon"]["pid"], d.pid());
    assert!(s["journal"]["head"].as_u64().unwrap_or(0) >= 1);
    d.stop();
}

#[test]
fn a_second_signal_exits_at_once_and_the_journal_stays_consistent() {
    let v = TestVault::new(BIN);
    // A first scan long enough to signal during it.
    vaultkeeper_testkit::vaultgen::generate(&v.root, 8_000, 3).expect("generate");
    let mut d = v.spawn();
    d.wait_log("scanning the vault", Duration::from_secs(10));
    d.signal(libc::SIGTERM);
    d.wait_log("shutting down", Duration::from_secs(10));
    let t = Instant::now();
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(3), "exits at once");
    assert!(!status.success(), "the hard exit is not a clean one");
    assert!(d.log().contains("second stop signal"), "{}", d.log());
    // The journal opens and a restart reconciles to the disk.
    let d = v.start();
    let disk = v.files_on_disk();
    wait_until("journal equals disk", Duration::from_secs(60), || {
        live_paths(&v.events()) == disk
    });
    d.stop();
}

#[test]
fn logs_as_json_lines_and_without_timestamps_under_journald() {
    let v = TestVault::new(BIN);
    let run = |args: &[&str], env: Option<(&str, &str)>| -> String {
        let log = v.state.path().join(format!("log-{}.txt", args.len()));
        let mut cmd = v.cmd();
        cmd.args(args)
            .env("VAULTKEEPER_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log"));
        if let Some((k, val)) = env {
            cmd.env(k, val);
        }
        let mut child = cmd.spawn().expect("spawn");
        wait_until("ready", Duration::from_secs(20), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("ready")
        });
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().expect("wait").success());
        std::fs::read_to_string(&log).expect("log")
    };
    let text = run(&["--log-format", "json", "run"], None);
    assert!(text.lines().count() >= 2, "{text}");
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("timestamp").is_some() && v.get("level").is_some(),
            "{line}"
        );
    }
    let text = run(&["run"], Some(("JOURNAL_STREAM", "8:1234")));
    let first = text.lines().next().expect("a log line");
    assert!(
        first.trim_start().starts_with("INFO"),
        "journald adds its own timestamp: {first}"
    );
    // Written to a file, not a terminal: no colour codes in it.
    let text = run(&["run"], None);
    assert!(text.contains(" INFO "), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
}

#[test]
fn status_shows_recent_problems() {
    use std::os::unix::ffi::OsStrExt;
    let v = TestVault::new(BIN);
    let d = v.start();
    let bad = v.root.join(std::ffi::OsStr::from_bytes(b"odd-\xfe.md"));
    std::fs::write(&bad, "x").expect("write");
    let mut last = serde_json::Value::Null;
    wait_until("the problem in status", Duration::from_secs(20), || {
        let out = v.run(&["status", "--json"]);
        last = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        last["recent_problems"].as_array().is_some_and(|a| {
            a.iter().any(|p| {
                p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not valid UTF-8"))
            })
        })
    });
    assert_eq!(last["recent_problems"][0]["level"], "WARN");
    let out = v.run(&["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("recent problems"));
    d.stop();
}
