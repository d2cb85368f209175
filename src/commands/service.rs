//! `vaultkeeper service install|uninstall`: the user service for this vault.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::{GlobalArgs, ServiceAction};

const SYSTEMD_TEMPLATE: &str = include_str!("../../packaging/systemd/vaultkeeper@.service");
const LAUNCHD_TEMPLATE: &str = include_str!("../../packaging/launchd/org.vaultkeeper.agent.plist");

/// Installs or removes the service unit for the vault.
pub fn service(global: &GlobalArgs, action: ServiceAction) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the vaultkeeper binary")?;
    if cfg!(target_os = "macos") {
        launchd(&ctx, &exe, action)
    } else {
        systemd(&ctx, &exe, action)
    }
}

/// Escapes a path the way `systemd-escape --path` does, for a template instance name.
pub fn systemd_escape_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let trimmed: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    let joined = trimmed.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if out.is_empty() { "-".to_string() } else { out }
}

fn run_step(program: &str, args: &[&str]) -> bool {
    print!("$ {program} {}", args.join(" "));
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {
            println!("  # ok");
            true
        }
        Ok(out) => {
            println!(
                "  # failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(e) => {
            println!("  # cannot run {program}: {e}");
            false
        }
    }
}

fn systemd(ctx: &Context, exe: &Path, action: ServiceAction) -> Result<ExitCode> {
    let unit_dir = dirs::config_dir()
        .context("no config directory (set XDG_CONFIG_HOME)")?
        .join("systemd/user");
    let template = unit_dir.join("vaultkeeper@.service");
    let instance = format!(
        "vaultkeeper@{}.service",
        systemd_escape_path(&ctx.paths.root)
    );
    match action {
        ServiceAction::Install { no_enable } => {
            std::fs::create_dir_all(&unit_dir)
                .with_context(|| format!("cannot create {}", unit_dir.display()))?;
            let text =
                SYSTEMD_TEMPLATE.replace("%h/.cargo/bin/vaultkeeper", &exe.display().to_string());
            std::fs::write(&template, text)
                .with_context(|| format!("cannot write {}", template.display()))?;
            println!("wrote {}", template.display());
            println!(
                "unit for this vault: {instance} (vault {})",
                ctx.paths.root.display()
            );
            if no_enable {
                println!("enable it with: systemctl --user enable --now '{instance}'");
                return Ok(ExitCode::SUCCESS);
            }
            let ok = run_step("systemctl", &["--user", "daemon-reload"])
                && run_step("systemctl", &["--user", "enable", "--now", &instance]);
            if ok {
                println!("running; follow its log with: journalctl --user -u '{instance}' -f");
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "the unit is written but could not be enabled here; run:\n  systemctl --user daemon-reload && systemctl --user enable --now '{instance}'"
                );
                Ok(ExitCode::from(1))
            }
        }
        ServiceAction::Uninstall => {
            run_step("systemctl", &["--user", "disable", "--now", &instance]);
            let others = std::fs::read_dir(unit_dir.join("default.target.wants"))
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("vaultkeeper@"))
                })
                .unwrap_or(false);
            if others {
                println!("kept {} (other vaults still use it)", template.display());
            } else if template.exists() {
                std::fs::remove_file(&template)
                    .with_context(|| format!("cannot remove {}", template.display()))?;
                println!("removed {}", template.display());
                run_step("systemctl", &["--user", "daemon-reload"]);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn launchd(ctx: &Context, exe: &Path, action: ServiceAction) -> Result<ExitCode> {
    let key = vaultkeeper_vaultfs::paths::state_key(&ctx.paths.root);
    let label = format!("org.vaultkeeper.{key}");
    let dir: PathBuf = dirs::home_dir()
        .context("no home folder")?
        .join("Library/LaunchAgents");
    let plist = dir.join(format!("{label}.plist"));
    match action {
        ServiceAction::Install { no_enable } => {
            std::fs::create_dir_all(&dir)?;
            let log = ctx.paths.state_dir.join("daemon.log");
            let text = LAUNCHD_TEMPLATE
                .replace("org.vaultkeeper.agent", &label)
                .replace("BINARY", &exe.display().to_string())
                .replace("VAULT", &ctx.paths.root.display().to_string())
                .replace("LOGFILE", &log.display().to_string());
            std::fs::write(&plist, text)?;
            println!("wrote {}", plist.display());
            if !no_enable && !run_step("launchctl", &["load", "-w", &plist.display().to_string()]) {
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceAction::Uninstall => {
            run_step("launchctl", &["unload", "-w", &plist.display().to_string()]);
            if plist.exists() {
                std::fs::remove_file(&plist)?;
                println!("removed {}", plist.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(
            systemd_escape_path(Path::new("/home/u/notes")),
            "home-u-notes"
        );
        assert_eq!(
            systemd_escape_path(Path::new("/tmp/my notes/")),
            "tmp-my\\x20notes"
        );
        assert_eq!(systemd_escape_path(Path::new("/a-b")), "a\\x2db");
    }
}
