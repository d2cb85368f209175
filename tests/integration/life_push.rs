//! Pushes in flight at shutdown are finished, and a push the last run could not make is
//! made by the next start. The remote is reached through a stand-in for ssh, so that a
//! test can make a push slow or failing.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::util::{BIN, Daemon, TestVault, wait_until};

/// A git vault whose `origin` is a bare repository reached as `fakehost:<path>`.
struct Pushing {
    v: TestVault,
    home: PathBuf,
    remote: PathBuf,
    /// While it exists, each push waits a few seconds before it starts.
    slow: PathBuf,
    /// While it exists, each push fails as an unreachable host does.
    fail: PathBuf,
    /// Touched by every push attempt.
    started: PathBuf,
}

impl Pushing {
    fn new() -> Pushing {
        let v = TestVault::with_config(
            BIN,
            "[git]\nquiet = \"300ms\"\nmax_delay = \"5s\"\npush = true\n\n[runner]\nshutdown_timeout = \"60s\"\n",
        );
        let home = v.state.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(home.join("gitconfig"), "").expect("gitconfig");
        let remote = v.state.path().join("remote.git");
        let p = Pushing {
            slow: v.state.path().join("push-slow"),
            fail: v.state.path().join("push-fail"),
            started: v.state.path().join("push-started"),
            v,
            home,
            remote,
        };
        let ssh = p.home.join("fake-ssh");
        std::fs::write(
            &ssh,
            format!(
                "#!/bin/sh\n# git runs: fake-ssh HOST COMMAND\ntouch '{}'\n\
                 if [ -e '{}' ]; then echo 'fakehost: connection refused' >&2; exit 255; fi\n\
                 if [ -e '{}' ]; then sleep 4; fi\nshift\nexec sh -c \"$1\"\n",
                p.started.display(),
                p.fail.display(),
                p.slow.display()
            ),
        )
        .expect("fake ssh");
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let remote = p.remote.to_str().expect("utf8").to_string();
        p.git(&["init", "-q", "--bare", &remote]);
        p.git(&["init", "-q", "-b", "main"]);
        p.git(&["config", "user.name", "Test User"]);
        p.git(&["config", "user.email", "test@example.org"]);
        p.git(&["config", "commit.gpgsign", "false"]);
        p.git(&["remote", "add", "origin", &format!("fakehost:{remote}")]);
        p.v.write("first.md", "first\n");
        p.git(&["add", "first.md"]);
        p.git(&["commit", "-q", "-m", "first"]);
        p.git(&["push", "-q", "origin", "main"]);
        assert_eq!(p.remote_head(), p.head());
        p
    }

    fn isolate(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join("gitconfig"))
            .env("GIT_SSH", self.home.join("fake-ssh"))
            .env("GIT_SSH_VARIANT", "simple");
    }

    fn git(&self, args: &[&str]) -> String {
        let mut c = Command::new("git");
        c.current_dir(&self.v.root).args(args);
        self.isolate(&mut c);
        let out = c.output().expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    fn remote_head(&self) -> String {
        let remote = self.remote.to_str().expect("utf8").to_string();
        self.git(&["--git-dir", &remote, "rev-parse", "main"])
    }

    fn start(&self) -> Daemon {
        let mut c = self.v.cmd();
        self.isolate(&mut c);
        self.v.start_with(c)
    }

    /// Writes a note and waits for its commit and for a push attempt of it.
    fn commit_and_wait_for_the_push(&self, d: &Daemon, rel: &str) -> String {
        let before = self.head();
        self.v.write(rel, rel);
        wait_until("the commit", Duration::from_secs(30), || {
            self.head() != before
        });
        wait_until("a push attempt", Duration::from_secs(30), || {
            self.started.exists()
        });
        let _ = d;
        self.head()
    }
}

#[test]
fn a_push_in_flight_at_shutdown_is_finished_before_exit() {
    let p = Pushing::new();
    let mut d = p.start();
    std::fs::write(&p.slow, "").expect("slow");
    let _ = std::fs::remove_file(&p.started);
    let head = p.commit_and_wait_for_the_push(&d, "second.md");
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status:?}; log:\n{}", d.log());
    assert_eq!(
        p.remote_head(),
        head,
        "exited with the push unfinished; log:\n{}",
        d.log()
    );
}

#[test]
fn a_push_that_failed_at_shutdown_is_made_by_the_next_start() {
    let p = Pushing::new();
    let mut d = p.start();
    std::fs::write(&p.fail, "").expect("fail");
    let _ = std::fs::remove_file(&p.started);
    let head = p.commit_and_wait_for_the_push(&d, "second.md");
    d.wait_log("commits go on", Duration::from_secs(30));
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "{status:?}; log:\n{}", d.log());
    assert_ne!(p.remote_head(), head, "the remote was unreachable");
    // The remote is back; nothing new is committed, yet the next start pushes.
    std::fs::remove_file(&p.fail).expect("reachable again");
    let d = p.start();
    let mut last = String::new();
    wait_until(
        "the next start to push what was left",
        Duration::from_secs(60),
        || {
            last = p.remote_head();
            last == head
        },
    );
    assert_eq!(p.head(), head, "no new commit was needed");
    d.stop();
}
