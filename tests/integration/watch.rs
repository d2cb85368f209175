//! The watcher through the daemon: kinds, paths, hashes, editor saves, folders, bad input.

use std::time::Duration;

use crate::util::{BIN, TestVault, hash, live_paths, summary, wait_until};
use vaultkeeper_core::event::{Kind, Origin};

fn s(kind: &str, path: &str, old: Option<&str>) -> (String, String, Option<String>) {
    (kind.to_string(), path.to_string(), old.map(str::to_string))
}

#[test]
fn create_modify_rename_delete_in_order_with_hashes() {
    let v = TestVault::new(BIN);
    let d = v.start();
    v.write("Plan.md", "# Plan\n");
    v.wait_events(1, "created");
    v.write("Plan.md", "# Plan\nmore\n");
    v.wait_events(2, "modified");
    std::fs::create_dir(v.path("Projects")).expect("mkdir");
    std::fs::rename(v.path("Plan.md"), v.path("Projects/Plan.md")).expect("rename");
    v.wait_events(3, "renamed");
    std::fs::remove_file(v.path("Projects/Plan.md")).expect("rm");
    let events = v.wait_events(4, "deleted");
    d.stop();
    assert_eq!(
        summary(&events),
        vec![
            s("created", "Plan.md", None),
            s("modified", "Plan.md", None),
            s("renamed", "Projects/Plan.md", Some("Plan.md")),
            s("deleted", "Projects/Plan.md", None),
        ]
    );
    assert_eq!(events[0].hash.as_deref(), Some(hash("# Plan\n").as_str()));
    assert_eq!(events[0].content.as_deref(), Some("# Plan\n"));
    assert_eq!(
        events[1].hash.as_deref(),
        Some(hash("# Plan\nmore\n").as_str())
    );
    assert_eq!(events[1].size, 12);
    assert_eq!(events[2].hash, events[1].hash);
    // A deletion carries the last known hash.
    assert_eq!(events[3].hash, events[1].hash);
    assert!(events.iter().all(|e| e.origin == Origin::Watch));
    assert_eq!(events[0].routing_key(), "file.created.md");
    assert_eq!(events[3].routing_key(), "file.deleted.md");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn vim_style_save_is_one_modified() {
    let v = TestVault::new(BIN);
    v.write("note.md", "one\n");
    let d = v.start();
    let before = v.wait_events(1, "initial scan").len();
    // vim's default :w, step by step: probe with 4913, move the note to a backup,
    // write a new file, delete the backup.
    std::fs::write(v.path("4913"), "").expect("probe");
    std::fs::remove_file(v.path("4913")).expect("probe rm");
    std::fs::rename(v.path("note.md"), v.path("note.md~")).expect("backup");
    std::fs::write(v.path("note.md"), "two\n").expect("write");
    std::fs::remove_file(v.path("note.md~")).expect("backup rm");
    v.wait_events(before + 1, "modified");
    let events_after = v.events_before_sentinel();
    assert_eq!(
        summary(&events_after[before..]),
        vec![s("modified", "note.md", None)]
    );
    assert_eq!(events_after[before].content.as_deref(), Some("two\n"));
    d.stop();
}

#[test]
fn real_vim_save_is_one_modified() {
    if std::process::Command::new("vim")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("vim is not installed: .ci/run installs it (apt-get install vim)");
    }
    let v = TestVault::new(BIN);
    v.write("note.md", "one\n");
    let d = v.start();
    let before = v.wait_events(1, "initial scan").len();
    let status = std::process::Command::new("vim")
        .current_dir(&v.root)
        .args([
            "-u",
            "NONE",
            "-N",
            "-n",
            "-es",
            "-c",
            "set backup writebackup",
            "-c",
            "normal Gotwo",
            "-c",
            "wq",
            "note.md",
        ])
        .status()
        .expect("vim");
    assert!(status.success());
    v.wait_events(before + 1, "modified");
    let events_after = v.events_before_sentinel();
    assert_eq!(
        summary(&events_after[before..]),
        vec![s("modified", "note.md", None)]
    );
    assert_eq!(events_after[before].content.as_deref(), Some("one\ntwo\n"));
    d.stop();
}

#[test]
fn temp_file_then_rename_save_is_one_modified() {
    let v = TestVault::new(BIN);
    v.write("Daily/2026-11-24.md", "draft\n");
    let d = v.start();
    let before = v.wait_events(1, "initial scan").len();
    // VS Code / Obsidian style: write a sibling temp file, rename it over the note.
    let tmp = v.path("Daily/.2026-11-24.md.a1b2c3");
    std::fs::write(&tmp, "final\n").expect("temp");
    std::fs::rename(&tmp, v.path("Daily/2026-11-24.md")).expect("rename over");
    v.wait_events(before + 1, "modified");
    let events = v.events_before_sentinel();
    assert_eq!(
        summary(&events[before..]),
        vec![s("modified", "Daily/2026-11-24.md", None)]
    );
    assert_eq!(
        events[before].hash.as_deref(),
        Some(hash("final\n").as_str())
    );
    d.stop();
}

#[test]
fn files_in_fresh_nested_folders_are_all_seen() {
    let v = TestVault::new(BIN);
    let d = v.start();
    std::fs::create_dir_all(v.path("a/b/c")).expect("mkdir -p");
    for i in 0..50 {
        let dir = ["a", "a/b", "a/b/c"][i % 3];
        std::fs::write(v.path(&format!("{dir}/n{i}.md")), format!("note {i}\n")).expect("write");
    }
    v.wait_events(50, "50 created");
    let events = v.events_before_sentinel();
    assert_eq!(events.len(), 50, "{:?}", summary(&events));
    assert!(events.iter().all(|e| e.event == Kind::Created));
    assert_eq!(live_paths(&events), v.files_on_disk());
    d.stop();
}

#[test]
fn folder_rename_and_delete_give_an_event_per_file() {
    let v = TestVault::new(BIN);
    for i in 0..5 {
        v.write(&format!("Area/sub/n{i}.md"), &format!("{i}\n"));
    }
    let d = v.start();
    v.wait_events(5, "initial scan");
    std::fs::rename(v.path("Area"), v.path("Zone")).expect("rename dir");
    let events = v.wait_events(10, "5 renames");
    let renames: Vec<_> = events[5..]
        .iter()
        .filter(|e| e.event == Kind::Renamed)
        .collect();
    assert_eq!(renames.len(), 5, "{:?}", summary(&events));
    for e in &renames {
        let old = e.old_path.as_deref().expect("old path");
        assert_eq!(e.file_path.replacen("Zone/", "Area/", 1), old);
    }
    // After the rename the watches follow the new paths: a change inside is seen there.
    v.write("Zone/sub/n0.md", "changed\n");
    let events = v.wait_events(11, "modified in renamed folder");
    assert_eq!(
        summary(&events[10..]),
        vec![s("modified", "Zone/sub/n0.md", None)]
    );
    std::fs::remove_dir_all(v.path("Zone")).expect("rm -r");
    let events = v.wait_events(16, "5 deletions");
    assert!(events[11..].iter().all(|e| e.event == Kind::Deleted));
    assert!(live_paths(&events).is_empty());
    d.stop();
}

#[test]
fn ignore_rules_gitignore_globs_and_sighup_reload() {
    let v = TestVault::with_config(BIN, "[watch]\nignore = [\"drafts/**\"]\n");
    v.write(".gitignore", "private/\n");
    let d = v.start();
    v.wait_events(1, ".gitignore itself");
    v.write("private/secret.md", "x");
    v.write("drafts/d.md", "x");
    v.write(".obsidian/workspace.json", "{}");
    v.write(".trash/old.md", "x");
    v.write("notes/.note.md.swp", "x");
    v.write("public/p.md", "x");
    v.wait_events(2, "public note");
    let paths: Vec<String> = v
        .events_before_sentinel()
        .iter()
        .map(|e| e.file_path.clone())
        .collect();
    assert_eq!(paths, vec![".gitignore", "public/p.md"]);

    // Drop the glob and reload: the drafts appear, through a rescan.
    v.set_config("");
    d.signal(libc::SIGHUP);
    let events = v.wait_events(4, "drafts after reload");
    let e = events.last().expect("event");
    assert_eq!(
        (e.event, e.file_path.as_str()),
        (Kind::Created, "drafts/d.md")
    );
    assert_eq!(e.origin, Origin::Rescan);
    d.stop();
}

#[test]
fn polling_mode_sees_changes() {
    let v = TestVault::with_config(BIN, "[watch]\npoll = true\npoll_interval = \"200ms\"\n");
    let d = v.start();
    v.write("a.md", "a");
    let events = v.wait_events(1, "created by polling");
    assert_eq!(events[0].file_path, "a.md");
    std::fs::remove_file(v.path("a.md")).expect("rm");
    let events = v.wait_events(2, "deleted by polling");
    assert_eq!(events[1].event, Kind::Deleted);
    let log = d.stop();
    assert!(log.contains("polling the vault"), "{log}");
}

#[test]
fn bad_input_is_logged_and_skipped_while_events_go_on() {
    use std::os::unix::ffi::OsStrExt;
    let v = TestVault::new(BIN);
    let d = v.start();
    // A name that is not UTF-8.
    let bad = v
        .root
        .join(std::ffi::OsStr::from_bytes(b"bad-\xff-name.md"));
    std::fs::write(&bad, "x").expect("write non-utf8");
    // Symlinks: out of the vault, and a loop.
    std::os::unix::fs::symlink("/etc", v.path("etc-link")).expect("symlink");
    std::os::unix::fs::symlink(&v.root, v.path("loop")).expect("loop");
    std::os::unix::fs::symlink(v.path("self-b"), v.path("self-a")).expect("a");
    std::os::unix::fs::symlink(v.path("self-a"), v.path("self-b")).expect("b");
    // A binary file named .md.
    std::fs::write(v.path("binary.md"), [0u8, 159, 146, 150, 0, 1, 2]).expect("binary");
    // Files that vanish right after they appear.
    for i in 0..20 {
        let p = v.path(&format!("flash{i}.md"));
        std::fs::write(&p, "x").expect("write");
        std::fs::remove_file(&p).expect("rm");
    }
    v.write("after.md", "still here\n");
    wait_until("after.md journaled", Duration::from_secs(20), || {
        v.events().iter().any(|e| e.file_path == "after.md")
    });
    let events = v.events();
    let binary = events
        .iter()
        .find(|e| e.file_path == "binary.md")
        .expect("binary event");
    assert!(binary.content.is_none(), "binary content is not carried");
    assert!(binary.hash.is_some());
    assert!(
        events.iter().all(|e| !e.file_path.contains("link")
            && !e.file_path.starts_with("loop")
            && !e.file_path.starts_with("self-")),
        "symlinks are not followed: {:?}",
        summary(&events)
    );
    d.wait_log("not valid UTF-8", Duration::from_secs(10));
    // The journal agrees with the disk (flash files gone, the bad name skipped).
    let live = live_paths(&events);
    assert!(live.contains("after.md") && live.contains("binary.md"));
    assert!(live.iter().all(|p| !p.starts_with("flash")), "{live:?}");
    // Restarting rescans the whole vault with the same bad input: no hang, no crash.
    let log = d.stop();
    assert!(
        log.contains("bad-"),
        "the non-UTF-8 name is named in the log"
    );
    let d = v.start();
    v.write("after2.md", "x");
    wait_until("after2.md journaled", Duration::from_secs(20), || {
        v.events().iter().any(|e| e.file_path == "after2.md")
    });
    let log = d.stop();
    assert!(log.contains("symbolic link, not followed"), "{log}");
}

#[test]
fn a_burst_into_hundreds_of_new_folders_misses_nothing() {
    // Regression: files written into a folder between its listing and its watch were lost.
    let v = TestVault::new(BIN);
    let d = v.start();
    for i in 0..3000 {
        let dir = v.path(&format!(
            "burst/{}/g{:02}/s{:02}",
            i % 3,
            (i / 3) % 30,
            (i / 90) % 10
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("n{i}.md")), format!("{i}\n")).expect("write");
    }
    let disk = v.files_on_disk();
    assert_eq!(disk.len(), 3000);
    wait_until("all 3000 journaled", Duration::from_secs(60), || {
        live_paths(&v.events()) == disk
    });
    d.stop();
}

#[test]
fn an_overflowing_queue_triggers_a_rescan_and_loses_nothing() {
    let v = TestVault::with_config(BIN, "[watch]\nqueue = 16\ndebounce = \"300ms\"\n");
    let d = v.start();
    for i in 0..500 {
        v.write(&format!("flood/n{i}.md"), &format!("{i}"));
    }
    let disk = v.files_on_disk();
    wait_until("all 500 journaled", Duration::from_secs(30), || {
        live_paths(&v.events()) == disk
    });
    let log = d.stop();
    assert!(log.contains("overflowed"), "the overflow is logged: {log}");
}

#[test]
fn an_unreadable_file_is_logged_and_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let v = TestVault::new(BIN);
    v.write("secret.md", "x");
    std::fs::set_permissions(v.path("secret.md"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod");
    v.write("open.md", "y");
    // root reads everything: the daemon runs as `nobody` so the permission bites.
    std::fs::set_permissions(&v.root, std::fs::Permissions::from_mode(0o777)).expect("chmod dir");
    std::fs::set_permissions(v.path("open.md"), std::fs::Permissions::from_mode(0o666))
        .expect("chmod");
    let state = v.state.path().join("nobody-state");
    let daemon = v.start_as_nobody(&state);
    std::fs::write(v.path("later.md"), "z").expect("write");
    let journal = state.join("journal.db");
    wait_until("later.md journaled", Duration::from_secs(20), || {
        vaultkeeper_journal::Journal::open_readonly(&journal)
            .and_then(|j| j.read_after(0, 100))
            .map(|e| e.iter().any(|e| e.file_path == "later.md"))
            .unwrap_or(false)
    });
    let events = vaultkeeper_journal::Journal::open_readonly(&journal)
        .and_then(|j| j.read_after(0, 100))
        .expect("events");
    assert!(
        events.iter().all(|e| e.file_path != "secret.md"),
        "unreadable file skipped"
    );
    assert!(events.iter().any(|e| e.file_path == "open.md"));
    let text = daemon.log();
    assert!(
        text.contains("secret.md") && text.contains("Permission denied"),
        "{text}"
    );
    daemon.stop();
}
