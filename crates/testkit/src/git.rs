//! A vault that is the root of a git repository, with git's configuration isolated from
//! the machine's, and the `git` CLI readings the git tests check against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::vault::TestVault;
use crate::wait::wait_until;

/// Debounce settings that commit quickly (the git tests' default config).
pub const FAST: &str = "[git]\nquiet = \"300ms\"\nmax_delay = \"5s\"\n";

/// A vault that is the root of a git repository, with git's configuration isolated.
pub struct GitVault {
    /// The vault.
    pub v: TestVault,
    home: PathBuf,
}

impl GitVault {
    /// A repository at the vault's root with a fixed identity and no signing.
    pub fn new(bin: impl AsRef<Path>, toml: &str) -> GitVault {
        let g = GitVault::plain(bin, toml);
        g.git(&["init", "-q", "-b", "main"]);
        g.git(&["config", "user.name", "Test User"]);
        g.git(&["config", "user.email", "test@example.org"]);
        g.git(&["config", "commit.gpgsign", "false"]);
        g
    }

    /// A vault (no repository yet) with an isolated HOME for git.
    pub fn plain(bin: impl AsRef<Path>, toml: &str) -> GitVault {
        let v = TestVault::with_config(bin, toml);
        let home = v.state.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(home.join("gitconfig"), "").expect("gitconfig");
        GitVault { v, home }
    }

    /// Points git at the isolated HOME and config (and keeps its polling lock-free).
    pub fn isolate(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join("gitconfig"))
            .env("GIT_EDITOR", "true")
            .env("GIT_SEQUENCE_EDITOR", "sed -i s/pick/edit/")
            // The test's own polling `git status` must not rewrite the index: it reads the
            // index before taking the lock, so its write can undo a commit made meanwhile.
            .env("GIT_OPTIONAL_LOCKS", "0");
    }

    /// Runs git in the vault: whether it succeeded, and stdout then stderr.
    pub fn try_git(&self, args: &[&str]) -> (bool, String) {
        let mut c = Command::new("git");
        c.current_dir(&self.v.root).args(args);
        self.isolate(&mut c);
        let out = c.output().expect("run git");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs git in the vault; fails the test if git fails.
    pub fn git(&self, args: &[&str]) -> String {
        let (ok, text) = self.try_git(args);
        assert!(ok, "git {args:?} failed: {text}");
        text
    }

    /// HEAD's commit id, empty before the first commit.
    pub fn head(&self) -> String {
        let (ok, text) = self.try_git(&["rev-parse", "-q", "--verify", "HEAD"]);
        if ok {
            text.trim().to_string()
        } else {
            String::new()
        }
    }

    /// `git status --porcelain`, untracked files included.
    pub fn porcelain(&self) -> String {
        self.git(&["status", "--porcelain", "--untracked-files=all"])
    }

    /// Commits reachable from HEAD (0 before the first).
    pub fn commits(&self) -> usize {
        let (ok, out) = self.try_git(&["rev-list", "--count", "HEAD"]);
        if ok {
            out.trim().parse().unwrap_or(0)
        } else {
            0
        }
    }

    /// Files in the index.
    pub fn tracked(&self) -> usize {
        self.git(&["ls-files"]).lines().count()
    }

    /// The vaultkeeper binary with git isolated.
    pub fn cmd(&self) -> Command {
        let mut c = self.v.cmd();
        self.isolate(&mut c);
        c
    }

    /// Runs vaultkeeper to completion with git isolated.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().expect("run vaultkeeper")
    }

    /// Starts the daemon with git isolated and waits until it is ready.
    pub fn start(&self) -> Daemon {
        self.v.start_with(self.cmd())
    }

    /// Waits until the work tree is clean (everything committed) and `extra` holds.
    pub fn wait_clean(&self, what: &str, timeout: Duration, mut extra: impl FnMut() -> bool) {
        wait_until(what, timeout, || self.porcelain().is_empty() && extra());
    }

    /// How often each path was added (`A`) across the whole history.
    pub fn additions(&self) -> BTreeMap<String, usize> {
        let log = self.git(&["log", "--no-renames", "--name-status", "--format="]);
        let mut adds = BTreeMap::new();
        for line in log.lines() {
            if let Some(path) = line.strip_prefix("A\t") {
                *adds.entry(path.to_string()).or_insert(0) += 1;
            }
        }
        adds
    }

    /// Waits until the journal holds an event for `path`.
    pub fn wait_event(&self, path: &str) {
        wait_until(
            &format!("the event of {path}"),
            Duration::from_secs(30),
            || self.v.events().iter().any(|e| e.file_path == path),
        );
    }

    /// Writes `n` notes under `dir`, a hundred to a subfolder.
    pub fn write_notes(&self, dir: &str, n: usize) {
        for i in 0..n {
            self.v.write(
                &format!("{dir}/d{:02}/note-{i}.md", i / 100),
                &format!("# Note {i}\n\n[[link {i}]]\n"),
            );
        }
    }

    /// A first commit made with the CLI, so HEAD exists before the daemon starts.
    pub fn initial_commit(&self) {
        self.v.write("README.md", "# vault\n");
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "init"]);
    }
}
