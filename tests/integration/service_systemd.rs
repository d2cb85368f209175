//! `start`, `stop` and `restart` beside a real systemd: a container (systemd-nspawn on the
//! host's own /usr, a volatile root, no network, only `basic.target`) boots systemd as its
//! PID 1; the daemon runs there as a `Type=notify` unit, and the CLI, run inside the same
//! container, works with the unit instead of around it. Needs root (nspawn), as CI has.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vaultkeeper_testkit::git::GitVault;

use crate::util::{BIN, wait_until};

/// A booted container; killed (its whole PID namespace) when dropped.
struct Container {
    nspawn: Child,
    init: u32,
}

/// The processes `pid` started, and theirs.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

impl Container {
    /// Boots systemd with `binds` mounted at the same paths inside.
    fn boot(binds: &[&Path]) -> Container {
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "--volatile=yes",
            "--directory=/",
            "--boot",
            "--console=pipe",
            "--register=no",
            "--keep-unit",
            "--private-network",
        ])
        .arg(format!("--machine=vkt-{}", std::process::id()));
        for b in binds {
            cmd.arg(format!("--bind={}", b.display()));
        }
        let nspawn = cmd
            .args(["--", "--unit=basic.target"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-nspawn (scripts/setup installs systemd-container)");
        let pid = nspawn.id();
        let mut init = None;
        wait_until("the container's systemd", Duration::from_secs(60), || {
            init = descendants(pid).into_iter().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "systemd")
            });
            init.is_some()
        });
        let c = Container {
            nspawn,
            init: init.unwrap_or_default(),
        };
        wait_until("systemd has booted", Duration::from_secs(60), || {
            let state = c.run(&["systemctl", "is-system-running"]);
            let s = String::from_utf8_lossy(&state.stdout);
            s.contains("running") || s.contains("degraded")
        });
        c
    }

    /// Runs `args` inside, with `env` only.
    fn run_env(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.init.to_string())
            .args(["--all", "--wd=/", "env", "-i"]);
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(args).output().expect("nsenter")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(
            &[("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into())],
            args,
        )
    }

    /// `systemctl show -p PROP --value UNIT`.
    fn show(&self, prop: &str) -> String {
        let out = self.run(&["systemctl", "show", "-p", prop, "--value", UNIT]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Killing a PID namespace's init ends every process in it at once.
        let _ = Command::new("kill")
            .args(["-KILL", &self.init.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

const UNIT: &str = "vk-test.service";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn start_stop_and_restart_go_through_systemd_when_it_runs_the_daemon() {
    // Git waits an hour: only a stop (or a restart's stop) commits.
    let g = GitVault::new(BIN, "[git]\nquiet = \"1h\"\nmax_delay = \"2h\"\n");
    g.v.write("first.md", "# First\n");
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "first"]);
    let bin = PathBuf::from(BIN).canonicalize().expect("the binary");
    let bin_dir = bin.parent().expect("the binary's folder").to_path_buf();
    let runtime = g.v.state.path().join("run");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    // The daemon's and the CLI's environment, the same inside the unit and for the CLI.
    let mut env: Vec<(String, String)> = g
        .cmd()
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    env.push(("XDG_RUNTIME_DIR".into(), runtime.display().to_string()));
    env.push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
    let environment: String = env
        .iter()
        .map(|(k, v)| format!("Environment=\"{k}={v}\"\n"))
        .collect();
    let unit_file = g.v.state.path().join(UNIT);
    std::fs::write(
        &unit_file,
        format!(
            "[Unit]\nDescription=vaultkeeper under test\n\n[Service]\nType=notify\nNotifyAccess=main\n\
             ExecStart={} run {}\nRestart=on-failure\nTimeoutStopSec=60\n{environment}",
            bin.display(),
            g.v.root.display()
        ),
    )
    .expect("unit file");

    let c = Container::boot(&[g.v.root.as_path(), g.v.state.path(), bin_dir.as_path()]);
    let link = c.run(&["systemctl", "link", &unit_file.display().to_string()]);
    assert!(link.status.success(), "link: {}", text(&link));
    let started = c.run(&["systemctl", "start", UNIT]);
    assert!(
        started.status.success(),
        "systemctl start: {}",
        text(&started)
    );
    let vk = |args: &[&str]| {
        let mut full = vec![bin.to_str().expect("utf-8 path")];
        full.extend_from_slice(args);
        c.run_env(&env, &full)
    };
    let main_pid = c.show("MainPID");
    // A note the daemon has journaled and git has not committed yet (quiet for an hour).
    let pending = |name: &str| {
        g.v.write(name, "# A note\n");
        wait_until(
            &format!("the journal has {name}"),
            Duration::from_secs(30),
            || text(&vk(&["events", "--json"])).contains(name),
        );
    };

    // `start` sees the unit's daemon and starts no second one.
    let out = vk(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "already running (pid {main_pid}, systemd unit {UNIT})"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(c.show("MainPID"), main_pid);

    // `restart` restarts the unit (which stops the daemon gracefully: git commits first).
    pending("second.md");
    let out = vk(&["restart"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("restarted by systemd (unit {UNIT})")),
        "{}",
        text(&out)
    );
    let restarted = c.show("MainPID");
    assert_ne!(restarted, main_pid, "a new daemon");
    assert_ne!(restarted, "0");
    assert_eq!(c.show("ActiveState"), "active");
    assert!(
        g.git(&["log", "--name-only", "--format=%s"])
            .contains("second.md"),
        "the restart's stop committed the pending note"
    );

    // `stop` stops the unit: inactive, not failed, and what was pending is committed.
    pending("third.md");
    let out = vk(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("systemd unit {UNIT}")),
        "{}",
        text(&out)
    );
    assert_eq!(c.show("ActiveState"), "inactive");
    assert_eq!(c.show("Result"), "success");
    assert!(
        g.git(&["log", "--name-only", "--format=%s"])
            .contains("third.md"),
        "the stop committed the pending note"
    );
    let out = vk(&["stop"]);
    assert!(text(&out).contains("not running"), "{}", text(&out));
}
