//! A temporary vault with its own state folder and config, and the binary under test run
//! on it; plus the readings of its journal that many tests make.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_journal::Journal;

use crate::daemon::Daemon;
use crate::wait::wait_until;

/// A vault in a temporary folder, with a separate state folder and config, and the path of
/// the binary to run on it (the test crate knows it: `env!("CARGO_BIN_EXE_vaultkeeper")`).
pub struct TestVault {
    _vault: tempfile::TempDir,
    /// Outside the vault: the state folder, the config, daemon logs.
    pub state: tempfile::TempDir,
    /// The vault's canonical root.
    pub root: PathBuf,
    /// The config file the binary is pointed at.
    pub config: PathBuf,
    bin: PathBuf,
}

/// Nanoseconds since the epoch: unique enough to name a log or a sentinel.
pub(crate) fn stamp() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl TestVault {
    /// An empty vault with an empty config, run with the binary at `bin`.
    pub fn new(bin: impl AsRef<Path>) -> TestVault {
        Self::with_config(bin, "")
    }

    /// A vault whose config file (outside the vault) holds `toml`.
    pub fn with_config(bin: impl AsRef<Path>, toml: &str) -> TestVault {
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
            bin: bin.as_ref().to_path_buf(),
        }
    }

    /// The binary under test.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Replaces the config file's content.
    pub fn set_config(&self, toml: &str) {
        std::fs::write(&self.config, toml).expect("write config");
    }

    /// `rel` under the vault's root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `content` to `rel`, making its folders.
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    /// Copies the vault and everything beside it (state, config, daemon logs) to a folder
    /// under the temp dir that outlives the test, for a failure to be looked at later;
    /// returns that folder.
    pub fn keep(&self, tag: &str) -> PathBuf {
        let kept = std::env::temp_dir().join(format!("vaultkeeper-kept-{tag}"));
        for (from, to) in [
            (&self.root, "vault"),
            (&self.state.path().to_path_buf(), "state"),
        ] {
            let dest = kept.join(to);
            let _ = std::fs::create_dir_all(&dest);
            // `cp -a` keeps names and modes as they were; a failure here only loses evidence.
            let _ = Command::new("cp")
                .arg("-a")
                .arg(from.join("."))
                .arg(&dest)
                .status();
        }
        kept
    }

    /// The daemon's state folder (journal, cache, status).
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// The binary with this vault's environment (and no broker unless the test adds one).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
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
        self.start_with(self.cmd())
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
        let log = self.state.path().join(format!("daemon-{}.log", stamp()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .arg("run")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn daemon");
        Daemon::new(child, log)
    }

    /// Starts the daemon as uid `nobody` (tests run as root, who reads everything, so
    /// permissions would not bite) with its state in `state`, and waits until it is ready.
    /// The config, the state folder and the log are opened up for that user first.
    pub fn start_as_nobody(&self, state: &Path) -> Daemon {
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let open = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        open(&self.config, 0o644);
        open(self.state.path(), 0o777);
        let log = self.state.path().join(format!("nobody-{}.log", stamp()));
        std::fs::File::create(&log).expect("log");
        open(&log, 0o666);
        let mut cmd = if as_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        let child = cmd
            .arg("run")
            .arg(&self.root)
            .env("VAULTKEEPER_STATE_DIR", state)
            .env("VAULTKEEPER_CONFIG", &self.config)
            .env("VAULTKEEPER_LOG", "vaultkeeper=debug,info")
            .env("HOME", self.state.path())
            .env_remove("VAULTKEEPER_AMQP_URL")
            .env_remove("RABBITMQ_URL")
            .stdin(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("log"),
            )
            .spawn()
            .expect("spawn as nobody");
        let d = Daemon::new(child, log);
        d.wait_ready();
        d
    }

    /// The journal, read-only, once the daemon has made it.
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
        let name = format!("zz-sentinel-{}.md", stamp());
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

/// Kinds and paths of events, for readable assertions.
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
