//! Test harness: a temporary vault with its own state folder, the real binary run on
//! it, and waits with deadlines.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_journal::Journal;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vaultkeeper");

/// Polls `cond` until it holds or `timeout` passes; panics naming `what` on timeout.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A vault in a temporary folder, with a separate state folder and config.
pub struct TestVault {
    _vault: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
}

impl TestVault {
    pub fn new() -> TestVault {
        Self::with_config("")
    }

    /// A vault whose config file (outside the vault) holds `toml`.
    pub fn with_config(toml: &str) -> TestVault {
        let vault = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let root = vault.path().canonicalize().expect("canonical");
        let config = state.path().join("config.toml");
        std::fs::write(&config, toml).expect("write config");
        TestVault {
            _vault: vault,
            state,
            root,
            config,
        }
    }

    pub fn set_config(&self, toml: &str) {
        std::fs::write(&self.config, toml).expect("write config");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// The binary with this vault's environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("VAULTKEEPER_STATE_DIR", self.state_dir())
            .env("VAULTKEEPER_CONFIG", &self.config)
            .env("VAULTKEEPER_VAULT", &self.root)
            .env("XDG_CONFIG_HOME", self.state.path().join("xdg-config"))
            .env("VAULTKEEPER_LOG", "vaultkeeper=debug,info")
            .env_remove("VAULTKEEPER_AMQP_URL")
            .env_remove("RABBITMQ_URL")
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run vaultkeeper")
    }

    /// Starts the daemon and waits until it is ready.
    pub fn start(&self) -> Daemon {
        let d = self.spawn();
        d.wait_ready();
        d
    }

    /// Starts the daemon from a prepared command and waits until it is ready.
    pub fn start_with(&self, cmd: Command) -> Daemon {
        let d = self.spawn_cmd(cmd);
        d.wait_ready();
        d
    }

    /// Starts the daemon without waiting.
    pub fn spawn(&self) -> Daemon {
        self.spawn_cmd(self.cmd())
    }

    /// Starts the daemon from a prepared command without waiting.
    pub fn spawn_cmd(&self, mut cmd: Command) -> Daemon {
        let log = self.state.path().join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .arg("run")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn daemon");
        Daemon {
            child,
            log,
            exited: None,
        }
    }

    pub fn journal(&self) -> Option<Journal> {
        let p = self.state_dir().join("journal.db");
        p.exists()
            .then(|| Journal::open_readonly(&p).expect("journal"))
    }

    /// All events in the journal.
    pub fn events(&self) -> Vec<Event> {
        self.journal()
            .map(|j| j.read_after(0, usize::MAX >> 1).expect("read"))
            .unwrap_or_default()
    }

    /// Waits until the journal holds at least `n` events and returns them.
    pub fn wait_events(&self, n: usize, what: &str) -> Vec<Event> {
        let mut events = Vec::new();
        wait_until(what, Duration::from_secs(20), || {
            events = self.events();
            events.len() >= n
        });
        events
    }

    /// Writes a sentinel note and waits for its event, then returns every event before it.
    /// Events are journaled in order, so anything the earlier activity caused is in there:
    /// this checks for the absence of stray events without sleeping.
    pub fn events_before_sentinel(&self) -> Vec<Event> {
        let name = format!(
            "zz-sentinel-{}.md",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        self.write(&name, "sentinel");
        let mut events = Vec::new();
        wait_until("the sentinel event", Duration::from_secs(20), || {
            events = self.events();
            events.iter().any(|e| e.file_path == name)
        });
        events.retain(|e| e.file_path != name);
        events
    }

    /// Files on disk, minus what vaultkeeper ignores by default.
    pub fn files_on_disk(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let entry = entry.expect("entry");
                let p = entry.path();
                let ft = entry.file_type().expect("file type");
                let rel = p
                    .strip_prefix(&self.root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                if rel == ".git" || rel.ends_with('~') || rel.starts_with("zz-sentinel-") {
                    continue;
                }
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    out.insert(rel);
                }
            }
        }
        out
    }
}

/// Replays events into the set of paths that exist according to the journal.
pub fn live_paths(events: &[Event]) -> BTreeSet<String> {
    let mut live = BTreeSet::new();
    for e in events {
        match e.event {
            Kind::Created | Kind::Modified => {
                live.insert(e.file_path.clone());
            }
            Kind::Deleted => {
                live.remove(&e.file_path);
            }
            Kind::Renamed => {
                if let Some(old) = &e.old_path {
                    live.remove(old);
                }
                live.insert(e.file_path.clone());
            }
        }
    }
    live
}

/// blake3 hex, as events carry it.
pub fn hash(content: &str) -> String {
    blake3::hash(content.as_bytes()).to_hex().to_string()
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_until(&format!("`{needle}` in the daemon log"), timeout, || {
            self.log().contains(needle)
        });
    }

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

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY-free: libc::kill only sends a signal to our own child.
        let rc = unsafe_kill(self.pid(), sig);
        assert_eq!(rc, 0, "kill failed");
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

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "daemon exit {status:?}; log:\n{}",
            self.log()
        );
        self.log()
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.wait_exit(Duration::from_secs(10));
    }
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

fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill command");
    if status.success() { 0 } else { 1 }
}

/// Kinds and paths of events after `from`, for readable assertions.
pub fn summary(events: &[Event]) -> Vec<(String, String, Option<String>)> {
    events
        .iter()
        .map(|e| {
            (
                e.event.as_str().to_string(),
                e.file_path.clone(),
                e.old_path.clone(),
            )
        })
        .collect()
}
