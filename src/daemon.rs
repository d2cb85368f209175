//! Daemon life: the lock, the watcher, one runner per consumer, signals and shutdown.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{Stream, StreamExt};
use tracing::{error, info, warn};

use crate::config::{Config, Loaded, Source};
use crate::consumer::{self, Consumer, RunnerSettings, RunnerSignals, RunnerStatus, StatusCell};
use crate::journal::Journal;
use crate::lock::DaemonLock;
use crate::paths::VaultPaths;
use crate::status::{DaemonStatus, write_status};
use crate::watch::Watcher;

/// What the outside world asks of the daemon (signals in production, a channel in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGINT/SIGTERM: stop gracefully; a second one exits at once.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGUSR1: consumers flush now (`vaultkeeper commit`).
    Flush,
}

/// The production request stream: Unix signals through signal-hook.
pub fn signal_requests() -> Result<impl Stream<Item = Request> + Unpin + Send> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let signals = signal_hook_tokio::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
        .context("cannot install signal handlers")?;
    Ok(signals.map(|s| match s {
        SIGHUP => Request::Reload,
        SIGUSR1 => Request::Flush,
        _ => Request::Stop,
    }))
}

struct Running {
    name: String,
    /// Each runner has its own thread and single-threaded runtime, so a consumer doing
    /// long synchronous work (a first full reindex, a big commit) never starves the others.
    thread: std::thread::JoinHandle<()>,
    done: tokio::sync::oneshot::Receiver<()>,
    status: StatusCell,
    flush: std::sync::Arc<tokio::sync::Notify>,
}

/// Spawns the consumers the configuration enables, each on the one runner.
struct Consumers<'a> {
    paths: &'a VaultPaths,
    settings: RunnerSettings,
    head: tokio::sync::watch::Receiver<u64>,
    stop: tokio_util::sync::CancellationToken,
    running: Vec<Running>,
    cells: std::sync::Arc<std::sync::Mutex<Vec<StatusCell>>>,
    /// The live configuration; consumers that follow reloads (rules) watch it.
    config: tokio::sync::watch::Receiver<std::sync::Arc<Config>>,
    /// Consumers left off, and why.
    off: Vec<crate::status::OffConsumer>,
}

impl Consumers<'_> {
    /// Counters for the AMQP heartbeat: journal head, each consumer's lag and errors.
    fn counters(&self) -> crate::amqp::Counters {
        let cells = std::sync::Arc::clone(&self.cells);
        let head = self.head.clone();
        std::sync::Arc::new(move || {
            let head = *head.borrow();
            let cells = cells.lock().map(|c| c.clone()).unwrap_or_default();
            let consumers: Vec<serde_json::Value> = cells
                .iter()
                .filter_map(|c| c.lock().ok().map(|s| s.clone()))
                .map(|s| {
                    serde_json::json!({
                        "name": s.name,
                        "cursor": s.cursor,
                        "lag": head.saturating_sub(s.cursor),
                        "dead_letters": s.dead_letters,
                        "error": s.last_error,
                    })
                })
                .collect();
            serde_json::json!({ "events": head, "consumers": consumers })
        })
    }

    fn spawn<C: Consumer>(&mut self, consumer: C) -> Result<()> {
        let name = consumer.name().to_string();
        let status: StatusCell = Default::default();
        let signals = RunnerSignals {
            stop: self.stop.clone(),
            flush: Default::default(),
        };
        let flush = signals.flush.clone();
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let journal = self.paths.journal();
        let head = self.head.clone();
        let settings = self.settings.clone();
        let cell = status.clone();
        let task_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vk-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!(consumer = %task_name, "cannot start its runtime: {e}");
                        return;
                    }
                };
                let result = runtime.block_on(consumer::run(
                    consumer, journal, head, settings, signals, cell,
                ));
                if let Err(e) = result {
                    error!(consumer = %task_name, "stopped on a journal error: {e}");
                }
                let _ = done_tx.send(());
            })
            .with_context(|| format!("cannot start the {name} consumer"))?;
        if let Ok(mut cells) = self.cells.lock() {
            cells.push(status.clone());
        }
        self.running.push(Running {
            name,
            thread,
            done,
            status,
            flush,
        });
        Ok(())
    }
}

/// Builds the enabled consumers. Each consumer is added here, once.
fn spawn_consumers(config: &Config, consumers: &mut Consumers<'_>) -> Result<()> {
    if config.cache.enabled {
        let paths = consumers.paths;
        let rules = std::sync::Arc::new(
            crate::watch::ignore::IgnoreRules::for_vault(paths, &config.watch).0,
        );
        let cache = crate::cache::CacheConsumer::open(
            &paths.cache(),
            Some(paths.root.clone()),
            &config.cache,
        )
        .with_context(|| format!("cannot open the shadow cache {}", paths.cache().display()))?
        .with_journal(paths.journal())
        .with_file_lister(Box::new(move |root: &std::path::Path| {
            Ok(crate::watch::scan::list_files(root, &rules))
        }));
        consumers.spawn(cache)?;
    }
    match crate::git::start(
        &consumers.paths.root,
        &config.git,
        &consumers.paths.name,
        &crate::watch::host_name(),
    )
    .context("git auto-commit")?
    {
        crate::git::GitStart::On(git) => {
            info!("git auto-commit is on");
            consumers.spawn(*git)?;
        }
        crate::git::GitStart::Off(reason) => {
            info!("git auto-commit is off: {reason}");
            consumers.off.push(crate::status::OffConsumer {
                name: "git".into(),
                reason,
            });
        }
    }
    if !config.rule.is_empty() {
        let rules = crate::rules::RulesConsumer::new(
            consumers.paths.root.clone(),
            consumers.paths.journal(),
            consumers.settings.max_attempts,
            consumers.config.clone(),
        )?;
        consumers.spawn(rules)?;
    }
    if config.amqp.effective_url().is_none() {
        consumers.off.push(crate::status::OffConsumer {
            name: "amqp".into(),
            reason: "no broker configured ([amqp] url or VAULTKEEPER_AMQP_URL)".into(),
        });
    } else {
        let counters = consumers.counters();
        let forwarder = crate::amqp::Forwarder::new(&config.amqp, &crate::watch::host_name())
            .context("RabbitMQ forwarder")?
            .with_counters(counters);
        info!(
            url = %config.amqp.redacted_url().unwrap_or_default(),
            exchange = %config.amqp.exchange,
            "publishing events to RabbitMQ"
        );
        consumers.spawn(forwarder)?;
    }
    Ok(())
}

/// Runs the daemon until a stop request, then shuts down cleanly.
pub async fn run(
    paths: VaultPaths,
    loaded: Loaded,
    mut requests: impl Stream<Item = Request> + Unpin + Send,
) -> Result<()> {
    let started = chrono::Utc::now();
    let config = loaded.config.clone();
    paths.ensure_state_dir()?;
    let _lock = DaemonLock::acquire(&paths.lock())?;
    // A damaged page reads as the end of the table: refuse the journal rather than go on
    // from a history that silently stops there.
    Journal::check_at_start(&paths.journal())?;
    let journal = Journal::open(&paths.journal())?;
    let (head_tx, head_rx) = tokio::sync::watch::channel(journal.head()?);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    info!(
        vault = %paths.root.display(),
        state = %paths.state_dir.display(),
        config = %match &loaded.source { Source::File(p) => p.display().to_string(), Source::Defaults => "defaults".into() },
        "starting vaultkeeper {}",
        env!("CARGO_PKG_VERSION")
    );
    let watcher = Watcher::spawn(
        &paths,
        config.watch.clone(),
        crate::watch::host_name(),
        head_tx,
        ready_tx,
    )?;

    let stop = tokio_util::sync::CancellationToken::new();
    let (config_tx, config_rx) = tokio::sync::watch::channel(std::sync::Arc::new(config.clone()));
    let mut consumers = Consumers {
        paths: &paths,
        settings: RunnerSettings::from(&config.runner),
        head: head_rx.clone(),
        stop: stop.clone(),
        running: Vec::new(),
        cells: Default::default(),
        config: config_rx,
        off: Vec::new(),
    };
    spawn_consumers(&config, &mut consumers)?;
    let running = consumers.running;
    let off = consumers.off;
    let names: Vec<&str> = running.iter().map(|r| r.name.as_str()).collect();
    journal.retain_cursors(&names)?;

    let status_of = |ready: bool| DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started,
        updated_at: chrono::Utc::now(),
        vault: paths.name.clone(),
        root: paths.root.display().to_string(),
        ready,
        stopping: false,
        head: *head_rx.borrow(),
        consumers: running
            .iter()
            .map(|r| {
                r.status
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|_| RunnerStatus::default())
            })
            .collect(),
        off: off.clone(),
        recent_problems: crate::logging::recent_problems(),
    };

    // Wait for the first reconcile, still answering a stop.
    tokio::select! {
        ready = ready_rx => {
            match ready {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.context("first scan of the vault failed")),
                Err(_) => anyhow::bail!("the watcher stopped during the first scan"),
            }
        }
        req = requests.next() => {
            if matches!(req, Some(Request::Stop) | None) {
                info!("stop requested during the first scan");
                let status = status_of(false);
                return shutdown(watcher, stop, running, &config, requests, &paths, status).await;
            }
        }
    }
    info!("ready");
    write_status(&paths, &status_of(true));
    crate::systemd::ready(&format!("watching {}", paths.root.display()));
    let watchdog = crate::systemd::watchdog_interval();
    let mut last_watchdog = Instant::now();

    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut last_prune = Instant::now();
    let mut reload_source = loaded.source.clone();
    loop {
        tokio::select! {
            req = requests.next() => match req {
                Some(Request::Stop) | None => break,
                Some(Request::Reload) => {
                    match reload(&reload_source, &paths) {
                        Ok(new) => {
                            watcher.control().reload(new.watch.clone());
                            if !new.rule.is_empty() && !running.iter().any(|r| r.name == crate::rules::NAME) {
                                warn!("rules were added while none were configured: they start on the next restart");
                            }
                            config_tx.send_replace(std::sync::Arc::new(new));
                            info!("configuration reloaded");
                            if let Source::File(p) = &reload_source { reload_source = Source::File(p.clone()); }
                        }
                        Err(e) => error!("configuration not reloaded, keeping the current one: {e:#}"),
                    }
                }
                Some(Request::Flush) => {
                    for r in &running {
                        r.flush.notify_one();
                    }
                }
            },
            _ = tick.tick() => {
                write_status(&paths, &status_of(true));
                if let Some(period) = watchdog {
                    // Ping only while the watcher and every runner are alive: a wedged
                    // daemon is then restarted by systemd.
                    let healthy = watcher.is_alive() && running.iter().all(|r| !r.thread.is_finished());
                    if healthy && last_watchdog.elapsed() >= period / 4 {
                        crate::systemd::watchdog();
                        last_watchdog = Instant::now();
                    } else if !healthy {
                        warn!("unhealthy (the watcher or a consumer stopped): withholding the watchdog ping");
                    }
                }
                if last_prune.elapsed() > Duration::from_secs(3600) {
                    last_prune = Instant::now();
                    match journal.prune(config.journal.retention) {
                        Ok(n) if n > 0 => info!(pruned = n, "journal retention"),
                        Ok(_) => {}
                        Err(e) => warn!("journal retention failed: {e}"),
                    }
                }
            }
        }
    }
    let status = status_of(true);
    shutdown(watcher, stop, running, &config, requests, &paths, status).await
}

fn reload(source: &Source, paths: &VaultPaths) -> Result<Config> {
    let mut config = match source {
        Source::File(p) => Config::read(p)?,
        Source::Defaults => Config::default(),
    };
    if let Source::File(p) = source {
        config.check_no_secrets_in_vault(p, &paths.root)?;
    }
    config.apply_env();
    Ok(config)
}

async fn shutdown(
    watcher: Watcher,
    stop: tokio_util::sync::CancellationToken,
    running: Vec<Running>,
    config: &Config,
    mut requests: impl Stream<Item = Request> + Unpin + Send,
    paths: &VaultPaths,
    mut status: DaemonStatus,
) -> Result<()> {
    info!("shutting down: journaling pending changes");
    crate::systemd::stopping();
    status.stopping = true;
    write_status(paths, &status);
    let graceful = async {
        // The watcher flushes its debounced changes into the journal before it returns.
        let _ = tokio::task::spawn_blocking(move || watcher.stop()).await;
        stop.cancel();
        let deadline = tokio::time::sleep(config.runner.shutdown_timeout);
        tokio::pin!(deadline);
        for r in running {
            let name = r.name.clone();
            let mut done = r.done;
            tokio::select! {
                _ = &mut done => {
                    let _ = r.thread.join();
                }
                _ = &mut deadline => {
                    // The process ends with the thread; its cursor stays at its last durable point.
                    warn!(consumer = %name, "did not drain within {:?}; leaving it", config.runner.shutdown_timeout);
                }
            }
        }
    };
    tokio::select! {
        _ = graceful => {}
        req = requests.next() => {
            if req == Some(Request::Stop) {
                // Every append and cursor move is a committed SQLite transaction, so the
                // journal is consistent whenever the process ends.
                warn!("second stop signal: exiting now");
                std::process::exit(130);
            }
        }
    }
    status.updated_at = chrono::Utc::now();
    write_status(paths, &status);
    info!("stopped");
    Ok(())
}
