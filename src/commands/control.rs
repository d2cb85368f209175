//! `start`, `stop`, `restart`: the daemon in the background, controlled through its API
//! (a signal only when it does not answer); `open` and `token`: how to reach the API.

use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::Context;
use crate::cli::GlobalArgs;
use vaultkeeper_journal::JournalReader;

/// How long `start` waits for the first scan of the vault.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// Starts a detached daemon and waits until its API says it is ready.
pub fn start(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    if let Some(pid) = crate::lock::holder(&ctx.paths.lock()) {
        match crate::unit::of_pid(pid) {
            Some(unit) => println!("already running (pid {pid}, systemd unit {})", unit.name),
            None => println!("already running (pid {pid})"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    start_daemon(global, &ctx)?;
    Ok(ExitCode::SUCCESS)
}

fn start_daemon(global: &GlobalArgs, ctx: &Context) -> Result<()> {
    ctx.paths.ensure_state_dir()?;
    let log_path = ctx.paths.state_dir.join("daemon.log");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the daemon log {}", log_path.display()))?;
    let from = log.seek(std::io::SeekFrom::End(0)).unwrap_or(0);
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run").arg(&ctx.paths.root);
    if let Some(config) = &global.config {
        cmd.arg("--config").arg(config);
    }
    if let Some(format) = global.log_format {
        cmd.arg("--log-format").arg(match format {
            crate::config::LogFormat::Human => "human",
            crate::config::LogFormat::Json => "json",
        });
    }
    // Its own process group: a Ctrl-C in this terminal does not reach it.
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().context("the daemon log")?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("cannot start the daemon")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(exit) = child.try_wait()? {
            bail!(
                "the daemon exited ({exit}) before it was ready; its log ({}):\n{}",
                log_path.display(),
                log_since(&log_path, from)
            );
        }
        if let Ok(status) = crate::api::call(&ctx.paths, "GET", "/v1/status")
            && status["daemon"]["ready"] == true
        {
            println!("started (pid {}); log {}", child.id(), log_path.display());
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon (pid {}) is not ready after {} s; see its log {}",
                child.id(),
                START_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_since(path: &std::path::Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(std::io::SeekFrom::Start(from));
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Stops the daemon and waits for it to let go of the vault.
pub fn stop(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    match stop_daemon(&ctx)? {
        Some(summary) => println!("{summary}"),
        None => println!("not running"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the daemon to stop (the API; SIGTERM when it does not answer) and waits; returns
/// what it got done, or `None` when none ran.
fn stop_daemon(ctx: &Context) -> Result<Option<String>> {
    let Some(pid) = crate::lock::holder(&ctx.paths.lock()) else {
        return Ok(None);
    };
    // A daemon systemd runs is stopped by systemd, so the unit ends stopped, not failed, and
    // systemd's own stop timeout applies.
    if let Some(unit) = crate::unit::of_pid(pid) {
        unit.systemctl("stop")?;
        wait_released(ctx, pid)?;
        return Ok(Some(format!(
            "{} (systemd unit {})",
            flushed(ctx, pid),
            unit.name
        )));
    }
    match crate::api::call(&ctx.paths, "POST", "/v1/stop") {
        Ok(_) => {}
        Err(e) => {
            tracing::debug!("stop without the API: {e}");
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .context("cannot signal the daemon")?;
            if !sent.success() {
                bail!("cannot signal the daemon (pid {pid})");
            }
        }
    }
    wait_released(ctx, pid)?;
    Ok(Some(flushed(ctx, pid)))
}

/// Waits until daemon `pid` has let go of the vault's lock.
fn wait_released(ctx: &Context, pid: u32) -> Result<()> {
    let timeout = ctx.loaded.config.runner.shutdown_timeout + Duration::from_secs(30);
    let deadline = Instant::now() + timeout;
    while crate::lock::holder(&ctx.paths.lock()) == Some(pid) {
        if Instant::now() > deadline {
            bail!(
                "the daemon (pid {pid}) has not stopped after {} s; `kill -TERM {pid}` twice ends it at once",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `stopped (pid N): journal head H; git at H, cache at H`.
fn flushed(ctx: &Context, pid: u32) -> String {
    let Ok(journal) = JournalReader::open(&ctx.paths.journal()) else {
        return format!("stopped (pid {pid})");
    };
    let head = journal.head().unwrap_or(0);
    let cursors: Vec<String> = journal
        .cursors()
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let behind = head.saturating_sub(c.seq);
            if behind == 0 {
                format!("{} caught up", c.consumer)
            } else {
                format!("{} {behind} behind", c.consumer)
            }
        })
        .collect();
    format!(
        "stopped (pid {pid}): journal head {head}; {}",
        if cursors.is_empty() {
            "no consumers".to_string()
        } else {
            cursors.join(", ")
        }
    )
}

/// Stops the daemon if one runs, then starts one.
pub fn restart(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    // Under systemd the unit restarts it: a daemon started here instead would run outside
    // the unit, which systemd would then see as stopped.
    if let Some(pid) = crate::lock::holder(&ctx.paths.lock())
        && let Some(unit) = crate::unit::of_pid(pid)
    {
        unit.systemctl("restart")?;
        println!("restarted by systemd (unit {})", unit.name);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(summary) = stop_daemon(&ctx)? {
        println!("{summary}");
    }
    start_daemon(global, &ctx)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints where the page and the API are; opens the page when it can.
pub fn open(global: &GlobalArgs, json: bool) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    let socket = ctx.paths.socket();
    let url = match &ctx.loaded.config.api.listen {
        Some(listen) => {
            let token = vaultkeeper_api::token::load_or_create(&vaultkeeper_api::token::path(
                &ctx.paths.state_dir,
            ))?;
            // In the fragment: the browser never sends it in a request line or a log.
            Some(format!("http://{listen}/#token={token}"))
        }
        None => None,
    };
    if json {
        let doc = serde_json::json!({ "socket": socket, "url": url });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &url {
        Some(url) => {
            println!("{url}");
            let desktop = std::env::var_os("DISPLAY").is_some()
                || std::env::var_os("WAYLAND_DISPLAY").is_some();
            if desktop {
                let _ = std::process::Command::new("xdg-open")
                    .arg(url)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
            }
        }
        None => {
            println!(
                "the API is on the socket {} (e.g. `curl --unix-socket {} http://localhost/v1/status`);\n\
                 for the page in a browser, set `[api] listen = \"127.0.0.1:8750\"` and restart",
                socket.display(),
                socket.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the API's bearer token, making one if there is none.
pub fn token(global: &GlobalArgs) -> Result<ExitCode> {
    let ctx = Context::resolve(global, None)?;
    ctx.paths.ensure_state_dir()?;
    let token = vaultkeeper_api::token::load_or_create(&vaultkeeper_api::token::path(
        &ctx.paths.state_dir,
    ))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
