//! `[[rule]]` commands through the real daemon: once per event, timeouts, odd paths,
//! dead letters, SIGHUP reload.

use std::path::Path;
use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

/// A TOML array of strings (JSON string escapes are valid TOML basic strings).
fn argv(args: &[&str]) -> String {
    serde_json::to_string(args).expect("json")
}

/// A rule command that appends `<prefix>$VAULTKEEPER_PATH` and a newline to `out`.
fn append_path(prefix: &str, out: &Path) -> String {
    argv(&[
        "sh",
        "-c",
        &format!("printf '{prefix}%s\\n' \"$VAULTKEEPER_PATH\" >> \"$1\""),
        "sh",
        &out.to_string_lossy(),
    ])
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

const FAST_RETRIES: &str =
    "[runner]\nmax_attempts = 2\nretry_min = \"50ms\"\nretry_max = \"200ms\"\n";

#[test]
fn every_created_note_runs_once() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("created.txt");
    v.set_config(&format!(
        "[[rule]]\nname = \"log-created\"\non = [\"created\"]\nglob = \"*.md\"\nrun = {}\n",
        append_path("", &out)
    ));
    let d = v.start();
    for i in 0..20 {
        v.write(&format!("notes/n{i:02}.md"), &format!("note {i}\n"));
    }
    // Not `created`, or not a note: no run.
    v.write("notes/n00.md", "edited\n");
    v.write("image.png", "png");
    wait_until("20 runs", Duration::from_secs(30), || {
        lines(&out).len() >= 20
    });
    // Stopping drains the runner: any duplicate would be written by now.
    d.stop();
    let mut got = lines(&out);
    got.sort();
    let want: Vec<String> = (0..20).map(|i| format!("notes/n{i:02}.md")).collect();
    assert_eq!(got, want);
}

#[test]
fn a_hanging_command_is_killed_with_its_group_and_the_rest_runs() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("out.txt");
    let pidfile = v.state.path().join("sleeper.pid");
    // The sleeper is a grandchild in the command's process group.
    let hang = argv(&[
        "sh",
        "-c",
        "sleep 600 & echo $! > \"$1\"; wait",
        "sh",
        &pidfile.to_string_lossy(),
    ]);
    v.set_config(&format!(
        "{FAST_RETRIES}\
         [[rule]]\nname = \"hang\"\nglob = \"hang*.md\"\nrun = {hang}\ntimeout = \"300ms\"\n\
         [[rule]]\nname = \"log\"\nrun = {}\n",
        append_path("", &out)
    ));
    let d = v.start();
    v.write("hang.md", "x");
    v.write("a.md", "a");
    v.write("b.md", "b");
    wait_until("a.md and b.md ran", Duration::from_secs(30), || {
        let l = lines(&out);
        l.contains(&"a.md".to_string()) && l.contains(&"b.md".to_string())
    });
    wait_until("hang.md dead-lettered", Duration::from_secs(30), || {
        v.journal()
            .and_then(|j| j.dead_letters().ok())
            .is_some_and(|d| !d.is_empty())
    });
    let dead = v.journal().expect("journal").dead_letters().expect("dl");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].consumer, "rules");
    assert_eq!(dead[0].path, "hang.md");
    assert!(
        dead[0].reason.contains("timed out after 300ms"),
        "{}",
        dead[0].reason
    );
    assert!(dead[0].reason.contains("`hang`"), "{}", dead[0].reason);
    // The grandchild died with its group (it is gone or a zombie awaiting its reaper).
    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    let stat = format!("/proc/{}/stat", pid.trim());
    wait_until("the sleeper killed", Duration::from_secs(5), || {
        std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
    });
    // Later events still run.
    v.write("c.md", "c");
    wait_until("c.md ran", Duration::from_secs(30), || {
        lines(&out).contains(&"c.md".to_string())
    });
    let log = d.stop();
    assert!(!lines(&out).contains(&"hang.md".to_string()));
    assert!(log.contains("timed out"), "{log}");
}

#[test]
fn odd_paths_reach_the_command_intact_without_a_shell() {
    if std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .map_or(true, |s| !s.success())
    {
        panic!("python3 is needed for this test");
    }
    let v = TestVault::new(BIN);
    let from_env = v.state.path().join("env.txt");
    let from_stdin = v.state.path().join("stdin.txt");
    let env_rule = argv(&[
        "sh",
        "-c",
        "printf %s \"$VAULTKEEPER_PATH\" >> \"$1\"",
        "sh",
        &from_env.to_string_lossy(),
    ]);
    let py = "import json, sys\n\
              e = json.load(sys.stdin)\n\
              open(sys.argv[1], 'a').write(e['file_path'] + '|' + e['event'] + '|' + e['content'])\n";
    let stdin_rule = argv(&["python3", "-c", py, &from_stdin.to_string_lossy()]);
    v.set_config(&format!(
        "[[rule]]\nname = \"env\"\non = \"created\"\nrun = {env_rule}\n\
         [[rule]]\nname = \"stdin\"\non = \"file.created\"\nrun = {stdin_rule}\n"
    ));
    let d = v.start();
    let name = "dir with space/it's \"quoted\" $HOME `x` note.md";
    v.write(name, "body; rm -rf / \"q\"\n");
    wait_until("both rules ran", Duration::from_secs(30), || {
        from_env.exists() && from_stdin.exists()
    });
    d.stop();
    assert_eq!(std::fs::read_to_string(&from_env).expect("env"), name);
    assert_eq!(
        std::fs::read_to_string(&from_stdin).expect("stdin"),
        format!("{name}|file.created|body; rm -rf / \"q\"\n")
    );
}

#[test]
fn a_failing_rule_becomes_a_dead_letter_and_later_events_run() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("out.txt");
    let script = format!(
        "case \"$VAULTKEEPER_PATH\" in bad*) echo 'cannot handle it' >&2; exit 7;; esac; \
         printf '%s\\n' \"$VAULTKEEPER_PATH\" >> '{}'",
        out.display()
    );
    v.set_config(&format!(
        "{FAST_RETRIES}[[rule]]\nname = \"picky\"\nrun = {}\n",
        argv(&["sh", "-c", &script])
    ));
    let d = v.start();
    v.write("bad.md", "x");
    wait_until("bad.md dead-lettered", Duration::from_secs(30), || {
        v.journal()
            .and_then(|j| j.dead_letters().ok())
            .is_some_and(|d| !d.is_empty())
    });
    v.write("good1.md", "1");
    v.write("good2.md", "2");
    wait_until("later events ran", Duration::from_secs(30), || {
        lines(&out).len() >= 2
    });
    let log = d.stop();
    let dead = v.journal().expect("journal").dead_letters().expect("dl");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].consumer.as_str(), dead[0].path.as_str()),
        ("rules", "bad.md")
    );
    assert_eq!(dead[0].attempts, 2);
    assert!(
        dead[0].reason.contains("exited with code 7"),
        "{}",
        dead[0].reason
    );
    let mut got = lines(&out);
    got.sort();
    assert_eq!(got, vec!["good1.md", "good2.md"]);
    // The command's stderr went to the log, with the rule and path.
    assert!(
        log.lines()
            .any(|l| l.contains("cannot handle it") && l.contains("picky") && l.contains("bad.md")),
        "{log}"
    );
}

#[test]
fn sighup_reloads_the_rules() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("out.txt");
    v.set_config(&format!(
        "[[rule]]\nname = \"a\"\nrun = {}\n",
        append_path("A ", &out)
    ));
    let d = v.start();
    v.write("one.md", "1");
    wait_until("rule a ran", Duration::from_secs(30), || {
        lines(&out) == ["A one.md"]
    });
    v.set_config(&format!(
        "[[rule]]\nname = \"b\"\nrun = {}\n",
        append_path("B ", &out)
    ));
    d.signal(libc::SIGHUP);
    d.wait_log("configuration reloaded", Duration::from_secs(10));
    v.write("two.md", "2");
    wait_until("rule b ran", Duration::from_secs(30), || {
        lines(&out).len() >= 2
    });
    // A bad rule on reload keeps the current ones.
    v.set_config("[[rule]]\nname = \"c\"\nrun = []\n");
    d.signal(libc::SIGHUP);
    d.wait_log("rule[0].run", Duration::from_secs(10));
    v.write("three.md", "3");
    wait_until("rule b ran again", Duration::from_secs(30), || {
        lines(&out).len() >= 3
    });
    let log = d.stop();
    assert_eq!(lines(&out), ["A one.md", "B two.md", "B three.md"]);
    assert!(log.contains("rules reloaded"), "{log}");
}

#[test]
fn debounce_coalesces_saves_of_one_note() {
    let v = TestVault::new(BIN);
    let out = v.state.path().join("out.txt");
    let script = format!(
        "printf '%s %s\\n' \"$VAULTKEEPER_PATH\" \"$(cat \"$VAULTKEEPER_ABS_PATH\")\" >> '{}'",
        out.display()
    );
    v.set_config(&format!(
        "[[rule]]\nname = \"slow\"\nglob = \"*.md\"\ndebounce = \"1500ms\"\nrun = {}\n",
        argv(&["sh", "-c", &script])
    ));
    let d = v.start();
    // Separate events (longer apart than the watcher's own 100ms debounce), all within
    // the rule's quiet time of each other.
    for i in 0..5 {
        v.write("draft.md", &format!("v{i}"));
        wait_until("event journaled", Duration::from_secs(10), || {
            v.events().len() > i
        });
    }
    wait_until("the debounced run", Duration::from_secs(30), || {
        !lines(&out).is_empty()
    });
    let log = d.stop();
    assert!(v.events().len() >= 5);
    assert_eq!(lines(&out), ["draft.md v4"], "{log}");
}

#[test]
fn a_first_start_runs_no_rule_for_the_notes_already_there_but_for_changes_after() {
    let v = TestVault::new(BIN);
    for i in 0..30 {
        v.write(&format!("old/o{i:02}.md"), &format!("old {i}\n"));
    }
    let out = v.state.path().join("created.txt");
    v.set_config(&format!(
        "[[rule]]\nname = \"log-created\"\non = [\"created\"]\nrun = {}\n",
        append_path("", &out)
    ));
    // A brand-new journal: the first scan is the vault's inventory, not 30 creations.
    let d = v.start();
    v.write("new.md", "new\n");
    wait_until("the run for new.md", Duration::from_secs(30), || {
        lines(&out).iter().any(|l| l == "new.md")
    });
    d.stop();
    assert_eq!(lines(&out), vec!["new.md".to_string()]);

    // Created while the daemon was down: a change, found by the next start's scan.
    v.write("offline.md", "written while stopped\n");
    let d = v.start();
    wait_until("the run for offline.md", Duration::from_secs(30), || {
        lines(&out).iter().any(|l| l == "offline.md")
    });
    d.stop();
    assert_eq!(
        lines(&out),
        vec!["new.md".to_string(), "offline.md".to_string()]
    );
}
