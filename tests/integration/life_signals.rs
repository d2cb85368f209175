//! Signals other than a stop never end the daemon's waits: neither the first scan nor
//! the shutdown drain.

use std::time::Duration;

use vaultkeeper_testkit::GitVault;

use crate::util::{BIN, TestVault, wait_until};

#[test]
fn reload_and_flush_during_the_first_scan_neither_cut_it_short_nor_get_lost() {
    let v = TestVault::new(BIN);
    // A first scan long enough to signal during it.
    vaultkeeper_testkit::vaultgen::generate(&v.root, 8_000, 3).expect("generate");
    let files = v.files_on_disk().len();
    let d = v.spawn();
    d.wait_log("scanning the vault", Duration::from_secs(20));
    d.signal(libc::SIGHUP);
    d.signal(libc::SIGUSR1);
    let mut at_ready = 0;
    wait_until("daemon ready", Duration::from_secs(120), || {
        let ready = d.log().contains(" ready");
        if ready {
            at_ready = v.events().len();
        }
        ready
    });
    // READY means the first reconcile is journaled: every file is in the journal.
    assert_eq!(
        at_ready,
        files,
        "ready before the first scan finished; log:\n{}",
        d.log()
    );
    // The reload asked for during the scan is served, not dropped.
    d.wait_log("configuration reloaded", Duration::from_secs(30));
    d.stop();
}

#[test]
fn reload_and_flush_during_shutdown_do_not_abandon_the_drain() {
    // git waits a long quiet period, so the change is still pending at the stop.
    let g = GitVault::new(
        BIN,
        "[git]\nquiet = \"60s\"\nmax_delay = \"10m\"\n\n[runner]\nshutdown_timeout = \"120s\"\n",
    );
    let v = &g.v;
    let mut d = g.start();
    v.write("kept.md", "must be committed\n");
    v.wait_events(1, "the change journaled");
    // A foreign git process holds the index: the shutdown commit has to wait for it.
    let lock = v.root.join(".git/index.lock");
    std::fs::write(&lock, "").expect("index.lock");
    d.signal(libc::SIGTERM);
    d.wait_log("git: not committing yet", Duration::from_secs(30));
    d.signal(libc::SIGHUP);
    d.signal(libc::SIGUSR1);
    wait_until(
        "the requests answered (or the daemon gone)",
        Duration::from_secs(30),
        || {
            let log = d.log();
            (log.contains("reload requested while shutting down")
                && log.contains("flush requested while shutting down"))
                || matches!(d.child.try_wait(), Ok(Some(_)))
        },
    );
    assert!(
        matches!(d.child.try_wait(), Ok(None)),
        "the daemon left the drain on SIGHUP/SIGUSR1; log:\n{}",
        d.log()
    );
    std::fs::remove_file(&lock).expect("release index.lock");
    let status = d.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}; log:\n{}", d.log());
    let files = g.git(&["log", "--name-only", "--format="]);
    assert!(
        files.contains("kept.md"),
        "not committed: {files}\n{}",
        d.log()
    );
}
