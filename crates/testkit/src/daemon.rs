//! A running daemon (or any long-lived vaultkeeper process): its log, signals, a clean
//! stop, and a kill when dropped so a failing test leaves nothing behind.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::wait::wait_until;

/// A running daemon; killed when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Daemon {
    /// Takes charge of `child`, whose stderr goes to `log`.
    pub fn new(child: Child, log: PathBuf) -> Daemon {
        Daemon {
            child,
            log,
            exited: None,
        }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_until(&format!("`{needle}` in the daemon log"), timeout, || {
            self.log().contains(needle)
        });
    }

    /// Waits until the daemon says it is ready; fails at once on an error before that.
    pub fn wait_ready(&self) {
        wait_until("daemon ready", Duration::from_secs(60), || {
            let log = self.log();
            assert!(
                !log.contains("ERROR") || log.contains(" ready"),
                "daemon failed to start:\n{log}"
            );
            log.contains(" ready")
        });
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends signal `sig`.
    pub fn signal(&self, sig: i32) {
        send_signal(self.child.id(), sig);
    }

    /// Waits for the process to exit within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait (up to 30 s) for a clean exit; returns the log.
    pub fn stop(self) -> String {
        self.stop_within(Duration::from_secs(30))
    }

    /// SIGTERM and wait up to `timeout` for a clean exit; returns the log.
    pub fn stop_within(mut self, timeout: Duration) -> String {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(timeout);
        assert!(
            status.success(),
            "daemon exit {status:?}; log:\n{}",
            self.log()
        );
        self.log()
    }

    /// SIGKILL and wait for the exit.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.wait_exit(Duration::from_secs(10));
    }
}

/// Sends signal `sig` to process `pid` (with `kill`: the workspace has no unsafe code for
/// `libc::kill`); fails the test if it cannot.
pub fn send_signal(pid: u32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill command");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// SIGTERM to `child` (any vaultkeeper process, `consume` say), then waits up to
/// `timeout` for it to exit, naming `what` if it does not; returns how it exited.
pub fn terminate(child: &mut Child, what: &str, timeout: Duration) -> ExitStatus {
    send_signal(child.id(), libc::SIGTERM);
    let mut status = None;
    wait_until(what, timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("an exit status once the wait is over")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed wait names only what it waited for; the daemon's log says why.
        if std::thread::panicking() {
            eprintln!("daemon log ({}):\n{}", self.log.display(), self.log());
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
