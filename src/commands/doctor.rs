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
    checks.extend(git_blocked(root));
    checks.push(journal_integrity(&ctx));
    checks.extend(cache_integrity(&ctx));
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
        vaultkeeper_vaultfs::ignore::IgnoreRules::for_vault(&ctx.paths, &ctx.loaded.config.watch);
    let rules = std::sync::Arc::new(rules);
    // Listing only stats: no file is read to count the folders.
    let folders = vaultkeeper_vaultfs::list_files(&ctx.paths.root, &rules).folders;
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
        .map(|rt| rt.block_on(vaultkeeper_amqp::check_login(cfg)));
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
        Ok(Err(e @ vaultkeeper_amqp::AmqpError::AccessRefused { .. })) => {
            check("broker", Level::Fail, e.to_string(), Some(fix_url.into()))
        }
        Ok(Err(e @ vaultkeeper_amqp::AmqpError::InvalidUrl { .. })) => {
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

/// Whether the repository lets vaultkeeper commit now: a rebase or merge under way, or an
/// `index.lock` (with its age; an old one is probably left by a git that was killed).
fn git_blocked(root: &Path) -> Option<Check> {
    use vaultkeeper_git::Blocked;
    let repo = git2::Repository::discover(root).ok()?;
    let blocked = vaultkeeper_git::safety::check(&repo).err()?;
    let fix = match &blocked {
        Blocked::IndexLocked { lock, age } if *age >= vaultkeeper_git::safety::STALE_AFTER => {
            format!(
                "if no git process is running (`pgrep -a git`), remove it: rm '{}'",
                lock.display()
            )
        }
        Blocked::IndexLocked { .. } => {
            "wait for the other git command to finish; commits resume on their own".into()
        }
        _ => "finish what git is doing (`git status` says how); commits resume on their own".into(),
    };
    let level = match &blocked {
        Blocked::IndexLocked { age, .. } if *age >= vaultkeeper_git::safety::STALE_AFTER => {
            Level::Fail
        }
        _ => Level::Warn,
    };
    Some(check("git state", level, blocked.to_string(), Some(fix)))
}

/// The full `PRAGMA integrity_check` of the journal (the daemon's start runs the quicker one).
fn journal_integrity(ctx: &Context) -> Check {
    let path = ctx.paths.journal();
    if !path.exists() {
        return check("journal", Level::Ok, "no journal yet", None);
    }
    match vaultkeeper_journal::check_file(&path, true) {
        Ok(problems) if problems.is_empty() => check(
            "journal",
            Level::Ok,
            format!("{} passes the integrity check", path.display()),
            None,
        ),
        Ok(problems) => check(
            "journal",
            Level::Fail,
            format!(
                "{} is damaged: {}",
                path.display(),
                vaultkeeper_journal::summarize(&problems)
            ),
            Some(
                "stop the daemon, then run `vaultkeeper salvage`: it copies what can be read into a new journal, keeps the damaged file beside it, and the next start rescans the vault"
                    .into(),
            ),
        ),
        Err(e) => check(
            "journal",
            Level::Fail,
            format!("cannot check: {e}"),
            Some("make the state folder readable".into()),
        ),
    }
}

/// The full integrity check of the shadow cache; damage there costs a rebuild, nothing more.
fn cache_integrity(ctx: &Context) -> Option<Check> {
    let path = ctx.paths.cache();
    if !path.exists() {
        return None;
    }
    Some(match vaultkeeper_journal::check_file(&path, true) {
        Ok(problems) if problems.is_empty() => check(
            "cache",
            Level::Ok,
            format!("{} passes the integrity check", path.display()),
            None,
        ),
        Ok(problems) => check(
            "cache",
            Level::Warn,
            format!(
                "{} is damaged: {}",
                path.display(),
                vaultkeeper_journal::summarize(&problems)
            ),
            Some(
                "it is rebuilt from the vault at the next start, or now with `vaultkeeper reindex`"
                    .into(),
            ),
        ),
        Err(e) => check("cache", Level::Warn, format!("cannot check: {e}"), None),
    })
}
