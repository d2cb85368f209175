//! One daemon per vault, even when its state folder is deleted under it.

use std::time::Duration;

use crate::util::{BIN, TestVault, wait_until};

#[test]
fn a_deleted_state_folder_is_detected_and_never_lets_a_second_daemon_in() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    let mut first = v.start();
    v.wait_events(1, "the first scan");
    // Frozen, the first daemon cannot react before the second one tries.
    first.signal(libc::SIGSTOP);
    std::fs::remove_dir_all(v.state_dir()).expect("delete the state folder");
    let mut second = v.spawn();
    wait_until(
        "the second daemon refused (or, wrongly, ready)",
        Duration::from_secs(60),
        || matches!(second.child.try_wait(), Ok(Some(_))) || second.log().contains(" ready"),
    );
    first.signal(libc::SIGCONT);
    assert!(
        !second.log().contains(" ready"),
        "a second daemon ran on the same vault; its log:\n{}",
        second.log()
    );
    let status = second.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "{}", second.log());
    let err = second.log();
    assert!(err.contains(&format!("pid {}", first.pid())), "{err}");
    // The first daemon notices, says so loudly and stops: its journal is gone.
    let status = first.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "log:\n{}", first.log());
    let log = first.log();
    assert!(
        log.contains("ERROR") && log.contains("state folder") && log.contains("deleted"),
        "{log}"
    );
    // A restart rebuilds the state from the vault.
    let d = v.start();
    let events = v.wait_events(1, "the vault journaled again");
    assert_eq!(events[0].file_path, "a.md");
    d.stop();
}
