//! `vaultkeeper doctor`: checks the set-up and says what to fix.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::cli::GlobalArgs;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// Broken: vaultkeeper cannot do its job until fixed.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// The outcome.
    pub level: Level,
    /// What was found.
    pub message: String,
    /// How to fix it, when it needs fixing.
    pub fix: Option<String>,
}

fn check(
    name: &'static str,
    level: Level,
    message: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        name,
        level,
        message: message.into(),
        fix,
    }
}

/// Runs every check; exit code 1 when any fails.
pub fn doctor(global: &GlobalArgs, json: bool) -> Result<ExitCode> {
    let mut checks = Vec::new();
    let ctx = match Context::resolve(global, None) {
        Ok(ctx) => {
            checks.push(check("config", Level::Ok, describe_source(&ctx), None));
            ctx
        }
        Err(e) => {
            checks.push(check(
                "config",
                Level::Fail,
                format!("{e:#}"),
                Some(
                    "fix the file and key named above (see config/vaultkeeper.example.toml)".into(),
                ),
            ));
            return report(&checks, json);
        }
    };
    let root = &ctx.paths.root;
    checks.push(match std::fs::read_dir(root) {
        Ok(_) => check(
            "vault",
            Level::Ok,
            format!("{} is readable", root.display()),
            None,
        ),
        Err(e) => check(
            "vault",
            Level::Fail,
            format!("{}: {e}", root.display()),
            Some("give your user read access to the vault".into()),
        ),
    });
    checks.push(state_writable(&ctx));
    checks.push(inotify(&ctx));
    checks.extend(git_identity(root));
    checks.extend(broker(&ctx));
    checks.extend(sync_folder(root));
    checks.push(match crate::lock::holder(&ctx.paths.lock()) {
        Some(pid) => check("daemon", Level::Ok, format!("running (pid {pid})"), None),
        None => check(
            "daemon",
            Level::Warn,
            "not running",
            Some(format!(
                "start it with `vaultkeeper run {}` or `vaultkeeper service install`",
                root.display()
            )),
        ),
    });
    report(&checks, json)
}

fn describe_source(ctx: &Context) -> String {
    match &ctx.loaded.source {
        crate::config::Source::File(p) => format!("{} is valid", p.display()),
        crate::config::Source::Defaults => "no config file; using the defaults".into(),
    }
}

fn report(checks: &[Check], json: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, checks)?;
        writeln!(out)?;
    } else {
        for c in checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            writeln!(out, "{tag}  {:<10} {}", c.name, c.message)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "      {:<10} fix: {fix}", "")?;
            }
        }
    }
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn state_writable(ctx: &Context) -> Check {
    let dir = &ctx.paths.state_dir;
    let probe = dir.join(".doctor-probe");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => check(
            "state",
            Level::Ok,
            format!("{} is writable", dir.display()),
            None,
        ),
        Err(e) => check(
            "state",
            Level::Fail,
            format!("{}: {e}", dir.display()),
            Some(
                "make it writable, or set `state_dir` / VAULTKEEPER_STATE_DIR to a writable folder"
                    .into(),
            ),
        ),
    }
}

/// The per-user inotify watch limit (a test may point this at a file of its own).
fn inotify_limit() -> Option<u64> {
    let path = std::env::var("VAULTKEEPER_INOTIFY_LIMIT_FILE")
        .unwrap_or_else(|_| "/proc/sys/fs/inotify/max_user_watches".into());
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn inotify(ctx: &Context) -> Check {
    if ctx.loaded.config.watch.poll {
        return check(
            "inotify",
            Level::Ok,
            "polling is configured; no watches needed",
            None,
        );
    }
    let Some(limit) = inotify_limit() else {
        return check(
            "inotify",
            Level::Ok,
            "no inotify on this system (other backends are used)",
            None,
        );
    };
    let (rules, _) =
        crate::watch::ignore::IgnoreRules::for_vault(&ctx.paths, &ctx.loaded.config.watch);
    let rules = std::sync::Arc::new(rules);
    let empty = std::sync::Arc::new(std::collections::BTreeMap::new());
    let mut folders = 0u64;
    crate::watch::scan::walk(&ctx.paths.root, "", &rules, &empty, |f| {
        if matches!(f, crate::watch::scan::Found::Dir(_)) {
            folders += 1;
        }
    });
    let fix = format!(
        "sudo sysctl fs.inotify.max_user_watches={} and persist it: echo fs.inotify.max_user_watches={} | sudo tee /etc/sysctl.d/90-vaultkeeper.conf",
        (folders * 4).max(524_288),
        (folders * 4).max(524_288)
    );
    let message = format!("{folders} folders to watch, limit {limit} watches per user");
    if folders >= limit {
        check(
            "inotify",
            Level::Fail,
            format!("{message}: too low, vaultkeeper would fall back to polling"),
            Some(fix),
        )
    } else if folders * 2 >= limit {
        check(
            "inotify",
            Level::Warn,
            format!("{message}: other programs share this limit"),
            Some(fix),
        )
    } else {
        check("inotify", Level::Ok, message, None)
    }
}

fn git_identity(root: &Path) -> Option<Check> {
    let repo = git2::Repository::open(root).ok()?;
    Some(match repo.signature() {
        Ok(sig) => check(
            "git",
            Level::Ok,
            format!(
                "repository found; commits as {} <{}>",
                sig.name().unwrap_or("?"),
                sig.email().unwrap_or("?")
            ),
            None,
        ),
        Err(_) => check(
            "git",
            Level::Fail,
            "the vault is a git repository but no commit identity is set",
            Some(format!(
                "git -C '{}' config user.name 'Your Name' && git -C '{}' config user.email you@example.org (or set [git] author_name / author_email)",
                root.display(),
                root.display()
            )),
        ),
    })
}

/// Logs in to the broker, as the daemon would: reachable is not enough, since a wrong
/// password only shows in the AMQP handshake. The URL shown is always redacted.
fn broker(ctx: &Context) -> Option<Check> {
    let cfg = &ctx.loaded.config.amqp;
    cfg.effective_url()?;
    let fix_url = "fix [amqp] url or VAULTKEEPER_AMQP_URL: amqp://user:password@host:port/vhost, with @ : / in the password percent-encoded";
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .map(|rt| rt.block_on(crate::amqp::check_login(cfg)));
    Some(match result {
        Err(e) => check(
            "broker",
            Level::Warn,
            format!("cannot check the broker: {e}"),
            None,
        ),
        Ok(Ok(login)) => check(
            "broker",
            Level::Ok,
            format!(
                "{}: logged in as {} (vhost {})",
                login.url, login.user, login.vhost
            ),
            None,
        ),
        Ok(Err(e @ crate::amqp::AmqpError::AccessRefused { .. })) => {
            check("broker", Level::Fail, e.to_string(), Some(fix_url.into()))
        }
        Ok(Err(e @ crate::amqp::AmqpError::InvalidUrl { .. })) => {
            check("broker", Level::Fail, e.to_string(), Some(fix_url.into()))
        }
        Ok(Err(e)) => check(
            "broker",
            Level::Warn,
            format!("{e}; events wait in the journal until the broker is reachable"),
            Some("start RabbitMQ (`rabbitmq-server -detached`) or fix [amqp] url / VAULTKEEPER_AMQP_URL".into()),
        ),
    })
}

/// Markers of folders that a sync tool manages.
fn sync_tool(root: &Path) -> Option<&'static str> {
    for dir in root.ancestors() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if dir.join(".stfolder").exists() {
            return Some("Syncthing");
        }
        if dir.join(".dropbox").exists() || name == "dropbox" {
            return Some("Dropbox");
        }
        if name.starts_with("onedrive") {
            return Some("OneDrive");
        }
        if name == "mobile documents" || name.contains("icloud") {
            return Some("iCloud Drive");
        }
        if name == "google drive" || name == "my drive" {
            return Some("Google Drive");
        }
    }
    None
}

fn sync_folder(root: &Path) -> Option<Check> {
    let tool = sync_tool(root)?;
    let git_on = git2::Repository::open(root).is_ok();
    Some(if git_on {
        check(
            "sync",
            Level::Warn,
            format!(
                "the vault lives in a {tool} folder and git auto-commit is on: two sync tools fighting over one folder is the commonest cause of damage"
            ),
            Some(format!(
                "keep the vault out of {tool}, or turn git auto-commit off ([git] enabled = false)"
            )),
        )
    } else {
        check(
            "sync",
            Level::Ok,
            format!("the vault is synced by {tool}"),
            None,
        )
    })
}
