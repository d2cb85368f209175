//! Running as a service: systemd notifications, unit files, install, doctor, completions.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{BIN, TestVault};

fn recv_until(sock: &UnixDatagram, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == needle);
            seen.push(msg);
            if hit {
                return seen;
            }
        }
    }
    panic!("no {needle} within {timeout:?}; got {seen:?}");
}

#[test]
fn notify_socket_sees_ready_watchdog_and_stopping() {
    let v = TestVault::new(BIN);
    v.write("a.md", "a");
    let sock_path = v.state.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind");
    let mut cmd = v.cmd();
    let log = v.state.path().join("notify-daemon.log");
    let mut child = cmd
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "3000000")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    recv_until(&sock, "READY=1", Duration::from_secs(30));
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(10));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    recv_until(&sock, "STOPPING=1", Duration::from_secs(10));
    let exit = child.wait().expect("wait");
    assert!(
        exit.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// A HOME whose ~/.cargo/bin/vaultkeeper is the binary under test, as the units expect.
fn fake_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".cargo/bin")).expect("mkdir");
    let link = home.join(".cargo/bin/vaultkeeper");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link).expect("symlink");
    }
    std::fs::create_dir_all(dir.join("runtime")).expect("runtime");
    home
}

fn verify(dir: &Path, home: &Path, unit: &Path) {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(unit)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", dir.join("runtime"))
        .output()
        .expect("systemd-analyze (scripts/setup installs systemd)");
    assert!(
        out.status.success(),
        "systemd-analyze verify {}: {}{}",
        unit.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unit_files_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = fake_home(dir.path());
    let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd");
    verify(dir.path(), &home, &packaging.join("vaultkeeper.service"));
    // A template is verified through an instance of it.
    let units = dir.path().join("units");
    std::fs::create_dir_all(&units).expect("mkdir");
    std::fs::copy(
        packaging.join("vaultkeeper@.service"),
        units.join("vaultkeeper@.service"),
    )
    .expect("copy");
    verify(
        dir.path(),
        &home,
        &units.join("vaultkeeper@home-u-notes.service"),
    );
}

#[test]
fn service_install_writes_a_valid_unit_for_this_vault() {
    let v = TestVault::new(BIN);
    let xdg = v.state.path().join("xdg-config");
    let out = v.run(&["service", "install", "--no-enable"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let template = xdg.join("systemd/user/vaultkeeper@.service");
    assert!(text.contains(&template.display().to_string()), "{text}");
    let unit = std::fs::read_to_string(&template).expect("unit written");
    assert!(
        unit.contains(&format!("ExecStart={BIN} run %f").replace("/./", "/"))
            || unit.contains(" run %f"),
        "{unit}"
    );
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="));
    let escaped = Command::new("systemd-escape")
        .arg("--path")
        .arg(&v.root)
        .output()
        .expect("systemd-escape");
    let instance = format!(
        "vaultkeeper@{}.service",
        String::from_utf8_lossy(&escaped.stdout).trim()
    );
    assert!(
        text.contains(&instance),
        "instance named like systemd-escape: {text}"
    );
    let home = fake_home(v.state.path());
    verify(
        v.state.path(),
        &home,
        &xdg.join("systemd/user").join(&instance),
    );
    let out = v.run(&["service", "uninstall"]);
    assert!(out.status.success());
    assert!(!template.exists(), "uninstall removes the unit");
}

#[test]
fn doctor_reports_a_low_inotify_limit_and_a_missing_git_identity() {
    let v = TestVault::new(BIN);
    for d in ["a", "b", "c", "d/e"] {
        v.write(&format!("{d}/n.md"), "x");
    }
    let git = Command::new("git")
        .arg("init")
        .arg("-q")
        .arg(&v.root)
        .status()
        .expect("git init");
    assert!(git.success());
    let limit = v.state.path().join("limit");
    std::fs::write(&limit, "3\n").expect("limit");
    let out = v
        .cmd()
        .arg("doctor")
        .env("VAULTKEEPER_INOTIFY_LIMIT_FILE", &limit)
        .env("HOME", v.state.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("EMAIL")
        .output()
        .expect("doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  inotify"), "{text}");
    assert!(text.contains("fs.inotify.max_user_watches="), "{text}");
    assert!(text.contains("FAIL  git"), "{text}");
    assert!(text.contains("user.name"), "{text}");
    // With a sane limit and an identity, those checks pass.
    std::fs::write(&limit, "524288\n").expect("limit");
    let out = v
        .cmd()
        .args(["doctor", "--json"])
        .env("VAULTKEEPER_INOTIFY_LIMIT_FILE", &limit)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .env("HOME", v.state.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("doctor");
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let inotify = checks
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "inotify")
        .expect("inotify");
    assert_eq!(inotify["level"], "ok", "{checks}");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .expect("completions");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dead-letters") && text.contains("events"),
        "bash completion lists commands"
    );
    let out = Command::new(BIN).arg("man").output().expect("man");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(".TH vaultkeeper") || text.contains(".TH VAULTKEEPER"),
        "{}",
        &text[..text.len().min(200)]
    );
}
