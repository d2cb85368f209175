//! Daemon life: the lock, the watcher, one runner per consumer, signals and shutdown.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{Stream, StreamExt};
use tracing::{error, info, warn};

use crate::config::{Config, Loaded, Source};
use crate::lock::DaemonLock;
use crate::status::{DaemonStatus, write_status};
use vaultkeeper_core::consumer::{Consumer, StartAt};
use vaultkeeper_core::status::ConsumerKind;
use vaultkeeper_journal::Journal;
use vaultkeeper_runner::{
    self as consumer, RunnerSettings, RunnerSignals, RunnerStatus, StatusCell,
};
use vaultkeeper_vaultfs::paths::VaultPaths;
use vaultkeeper_watch::Watcher;

/// What the outside world asks of the daemon (signals in production, a channel in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGINT/SIGTERM: stop gracefully; a second one exits at once.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGUSR1: consumers flush now (`vaultkeeper commit`).
    Flush,
    /// SIGUSR2: the cache consumer serves a rebuild asked for by `vaultkeeper reindex`,
    /// inside its runner, so no event slips between the rebuild and the live updates.
    Reindex,
}

/// The production request stream: Unix signals through signal-hook.
pub fn signal_requests() -> Result<impl Stream<Item = Request> + Unpin + Send> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    let signals = signal_hook_tokio::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])
        .context("cannot install signal handlers")?;
    Ok(signals.map(|s| match s {
        SIGHUP => Request::Reload,
        SIGUSR1 => Request::Flush,
        SIGUSR2 => Request::Reindex,
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
    /// Where each new consumer's cursor is registered before its runner starts.
    journal: &'a Journal,
    /// The journal's head when the daemon started, before the first scan appended anything.
    start_head: u64,
    settings: RunnerSettings,
    head: tokio::sync::watch::Receiver<u64>,
    stop: tokio_util::sync::CancellationToken,
    running: Vec<Running>,
    cells: std::sync::Arc<std::sync::Mutex<Vec<StatusCell>>>,
    /// The live configuration; consumers that follow reloads (rules) watch it.
    config: tokio::sync::watch::Receiver<std::sync::Arc<Config>>,
    /// Consumers left off, and why.
    off: Vec<crate::status::OffConsumer>,
    /// The journal's head at READY, set then; see [`vaultkeeper_rules::RulesConsumer::skipping_inventory`].
    inventory: std::sync::Arc<std::sync::OnceLock<u64>>,
}

impl Consumers<'_> {
    /// Counters for the AMQP heartbeat: journal head, each consumer's lag and errors.
    fn counters(&self) -> vaultkeeper_amqp::Counters {
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

    fn spawn<C: Consumer>(&mut self, consumer: C) -> Result<consumer::Registered> {
        let name = consumer.name().to_string();
        let registered =
            consumer::register(self.journal, &name, consumer.start_at(), self.start_head)
                .with_context(|| format!("cannot register the {name} consumer"))?;
        if registered.new {
            info!(consumer = %name, cursor = registered.cursor, "new consumer: it starts after this seq");
        }
        // Named now, so the status file lists it before its runner has started.
        let status: StatusCell = std::sync::Arc::new(std::sync::Mutex::new(RunnerStatus {
            name: name.clone(),
            cursor: registered.cursor,
            read: registered.cursor,
            ..RunnerStatus::default()
        }));
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
        Ok(registered)
    }
}

/// Builds the enabled consumers. Each consumer is added here, once.
fn spawn_consumers(config: &Config, consumers: &mut Consumers<'_>) -> Result<()> {
    if config.cache.enabled {
        let paths = consumers.paths;
        let rules = std::sync::Arc::new(
            vaultkeeper_vaultfs::ignore::IgnoreRules::for_vault(paths, &config.watch).0,
        );
        let cache = vaultkeeper_cache::CacheConsumer::open(
            &paths.cache(),
            Some(paths.root.clone()),
            &config.cache,
        )
        .with_context(|| format!("cannot open the shadow cache {}", paths.cache().display()))?
        .with_journal(paths.journal())
        .with_file_lister(Box::new(move |root: &std::path::Path| {
            Ok(vaultkeeper_vaultfs::list_files(root, &rules).files)
        }));
        consumers.spawn(cache)?;
    }
    match vaultkeeper_git::start(
        &consumers.paths.root,
        &config.git,
        &consumers.paths.name,
        &vaultkeeper_vaultfs::host_name(),
    )
    .context("git auto-commit")?
    {
        vaultkeeper_git::GitStart::On(git) => {
            info!("git auto-commit is on");
            consumers.spawn(*git)?;
        }
        vaultkeeper_git::GitStart::Off(reason) => {
            info!("git auto-commit is off: {reason}");
            consumers.off.push(crate::status::OffConsumer {
                name: ConsumerKind::Git.as_str().into(),
                reason,
            });
        }
    }
    if !config.rule.is_empty() {
        let rules = vaultkeeper_rules::RulesConsumer::new(
            consumers.paths.root.clone(),
            consumers.config.clone(),
        )?;
        // An empty journal: the first scan lists the vault, it does not change it.
        let rules = if consumers.start_head == 0 {
            rules.skipping_inventory(consumers.inventory.clone())
        } else {
            rules
        };
        consumers.spawn(rules)?;
    }
    if config.amqp.effective_url().is_none() {
        consumers.off.push(crate::status::OffConsumer {
            name: ConsumerKind::Amqp.as_str().into(),
            reason: "no broker configured ([amqp] url or VAULTKEEPER_AMQP_URL)".into(),
        });
    } else {
        let counters = consumers.counters();
        let forwarder =
            vaultkeeper_amqp::Forwarder::new(&config.amqp, &vaultkeeper_vaultfs::host_name())
                .context("RabbitMQ forwarder")?
                .with_counters(counters);
        info!(
            url = %config.amqp.redacted_url().unwrap_or_default(),
            exchange = %config.amqp.exchange,
            "publishing events to RabbitMQ"
        );
        let start = forwarder.start_at();
        let registered = consumers.spawn(forwarder)?;
        if registered.new && start == StartAt::Beginning && registered.cursor > 0 {
            warn!(
                "amqp: the journal no longer holds events 1..={}: files unchanged since then are \
                 not published; `vaultkeeper publish --snapshot` sends every current file",
                registered.cursor
            );
        }
    }
    Ok(())
}

/// What the daemon says about itself now, for the status file.
fn daemon_status(
    paths: &VaultPaths,
    started: chrono::DateTime<chrono::Utc>,
    ready: bool,
    head: u64,
    consumers: Vec<RunnerStatus>,
    off: Vec<crate::status::OffConsumer>,
) -> DaemonStatus {
    DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started,
        updated_at: chrono::Utc::now(),
        vault: paths.name.clone(),
        root: paths.root.display().to_string(),
        ready,
        stopping: false,
        head,
        consumers,
        off,
        recent_problems: crate::logging::recent_problems(),
    }
}

/// Where the daemon stands, for its live status (the API's).
#[derive(Debug, Default)]
struct Phase {
    ready: std::sync::atomic::AtomicBool,
    stopping: std::sync::atomic::AtomicBool,
}

impl Phase {
    fn set_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn set_stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The outside world's requests and the API's, as one stream that ends when `outside`
/// does (the API's sender lives as long as the daemon).
fn with_api_requests(
    outside: impl Stream<Item = Request> + Unpin + Send + 'static,
    api: tokio::sync::mpsc::UnboundedReceiver<Request>,
) -> impl Stream<Item = Request> + Unpin + Send {
    let api = futures::stream::unfold(
        api,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let merged = futures::stream::select(
        outside.map(Some).chain(futures::stream::iter([None])),
        api.map(Some),
    )
    .take_while(|r| futures::future::ready(r.is_some()))
    .filter_map(futures::future::ready);
    Box::pin(merged)
}

/// Runs the daemon until a stop request, then shuts down cleanly; its API listens from
/// before the first scan until the very end.
pub async fn run(
    paths: VaultPaths,
    loaded: Loaded,
    requests: impl Stream<Item = Request> + Unpin + Send + 'static,
) -> Result<()> {
    let (api_tx, api_rx) = tokio::sync::mpsc::unbounded_channel();
    let requests = with_api_requests(requests, api_rx);
    let mut api = None;
    let result = run_daemon(paths, loaded, requests, api_tx, &mut api).await;
    if let Some(server) = api {
        server.shutdown().await;
    }
    result
}

async fn run_daemon(
    paths: VaultPaths,
    loaded: Loaded,
    mut requests: impl Stream<Item = Request> + Unpin + Send,
    api_tx: tokio::sync::mpsc::UnboundedSender<Request>,
    api: &mut Option<vaultkeeper_api::Server>,
) -> Result<()> {
    let started = chrono::Utc::now();
    let config = loaded.config.clone();
    let lock =
        DaemonLock::acquire_for_vault(
            &paths.root,
            &paths.lock(),
            || Ok(paths.ensure_state_dir()?),
        )?;
    // A damaged page reads as the end of the table: refuse the journal rather than go on
    // from a history that silently stops there.
    Journal::check_at_start(&paths.journal())?;
    let journal = Journal::open(&paths.journal())?;
    // Read before the watcher starts: new consumers start from here, whatever the first
    // scan appends and however fast it is.
    let start_head = journal.head()?;
    let (head_tx, head_rx) = tokio::sync::watch::channel(start_head);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    info!(
        vault = %paths.root.display(),
        state = %paths.state_dir.display(),
        config = %match &loaded.source { Source::File(p) => p.display().to_string(), Source::Defaults => "defaults".into() },
        "starting vaultkeeper {}",
        env!("CARGO_PKG_VERSION")
    );
    // Written before the first scan, so `status` never takes the last run's file for this
    // daemon while it scans.
    write_status(
        &paths,
        &daemon_status(
            &paths,
            started,
            false,
            *head_rx.borrow(),
            Vec::new(),
            Vec::new(),
        ),
    );
    let watcher = Watcher::spawn(
        &paths,
        config.watch.clone(),
        vaultkeeper_vaultfs::host_name(),
        head_tx,
        ready_tx,
    )?;

    let stop = tokio_util::sync::CancellationToken::new();
    let (config_tx, config_rx) = tokio::sync::watch::channel(std::sync::Arc::new(config.clone()));
    let mut consumers = Consumers {
        paths: &paths,
        journal: &journal,
        start_head,
        settings: RunnerSettings::from(&config.runner),
        head: head_rx.clone(),
        stop: stop.clone(),
        running: Vec::new(),
        cells: Default::default(),
        config: config_rx,
        off: Vec::new(),
        inventory: Default::default(),
    };
    let inventory = consumers.inventory.clone();
    spawn_consumers(&config, &mut consumers)?;
    let cells = std::sync::Arc::clone(&consumers.cells);
    let running = consumers.running;
    let off = consumers.off;
    let phase = std::sync::Arc::new(Phase::default());
    *api = Some(start_api(
        &paths,
        &config,
        LiveParts {
            started,
            head: head_rx.clone(),
            cells,
            off: off.clone(),
            phase: std::sync::Arc::clone(&phase),
        },
        api_tx,
    )?);
    // Cursors of consumers that are off stay: such a consumer resumes where it stopped
    // (`vaultkeeper forget NAME` drops one on purpose).

    let status_of = |ready: bool| {
        let consumers = running
            .iter()
            .map(|r| {
                r.status
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|_| RunnerStatus::default())
            })
            .collect();
        daemon_status(
            &paths,
            started,
            ready,
            *head_rx.borrow(),
            consumers,
            off.clone(),
        )
    };

    let mut server = Server {
        source: loaded.source.clone(),
        paths: &paths,
        watcher: watcher.control(),
        config_tx,
        has_rules: running.iter().any(|r| r.name == vaultkeeper_rules::NAME),
    };
    // Wait for the first reconcile. Only a stop ends the wait: a flush is served now (the
    // consumers already run) and a reload is queued until the scan is done, so the daemon
    // never reports READY early nor loses the request.
    let mut ready_rx = ready_rx;
    let mut reload_queued = false;
    let mut tick = tokio::time::interval(crate::status::REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(why) = lock.check() {
                    let lost = state_lost(&paths, &why);
                    phase.set_stopping();
                    let status = status_of(false);
                    let result = shutdown(watcher, stop, running, &config, requests, &paths, status).await;
                    return result.and(Err(lost));
                }
                write_status(&paths, &status_of(false));
            }
            ready = &mut ready_rx => {
                match ready {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => return Err(anyhow::Error::new(e).context("first scan of the vault failed")),
                    Err(_) => anyhow::bail!("the watcher stopped during the first scan"),
                }
            }
            req = requests.next() => match req {
                Some(Request::Stop) | None => {
                    info!("stop requested during the first scan");
                    phase.set_stopping();
                    let status = status_of(false);
                    return shutdown(watcher, stop, running, &config, requests, &paths, status).await;
                }
                Some(Request::Reload) => {
                    info!("reload requested during the first scan: applied once it is done");
                    reload_queued = true;
                }
                Some(other @ (Request::Flush | Request::Reindex)) => server.serve(other, &running),
            }
        }
    }
    // Everything the first scan appended is below this head.
    let _ = inventory.set(journal.head()?);
    info!("ready");
    phase.set_ready();
    write_status(&paths, &status_of(true));
    crate::systemd::ready(&format!("watching {}", paths.root.display()));
    if reload_queued {
        server.serve(Request::Reload, &running);
    }
    let mut lost = None;
    let watchdog = crate::systemd::watchdog_interval();
    let mut last_watchdog = Instant::now();

    let mut last_prune = Instant::now();
    let mut pruning: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            req = requests.next() => match req {
                Some(Request::Stop) | None => break,
                Some(other) => server.serve(other, &running),
            },
            _ = tick.tick() => {
                if let Err(why) = lock.check() {
                    lost = Some(state_lost(&paths, &why));
                    break;
                }
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
                // One prune at a time, off this loop: a long delete never delays a signal.
                if last_prune.elapsed() > PRUNE_EVERY && pruning.as_ref().is_none_or(|p| p.is_finished()) {
                    last_prune = Instant::now();
                    pruning = Some(spawn_prune(paths.journal(), config.journal.retention));
                }
            }
        }
    }
    phase.set_stopping();
    let status = status_of(true);
    let result = shutdown(watcher, stop, running, &config, requests, &paths, status).await;
    match lost {
        Some(lost) => result.and(Err(lost)),
        None => result,
    }
}

/// What the live status is made of.
struct LiveParts {
    started: chrono::DateTime<chrono::Utc>,
    head: tokio::sync::watch::Receiver<u64>,
    cells: std::sync::Arc<std::sync::Mutex<Vec<StatusCell>>>,
    off: Vec<crate::status::OffConsumer>,
    phase: std::sync::Arc<Phase>,
}

/// Starts the API on the socket (and `[api] listen`); a failure to listen stops the start.
fn start_api(
    paths: &VaultPaths,
    config: &Config,
    live: LiveParts,
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
) -> Result<vaultkeeper_api::Server> {
    use std::sync::atomic::Ordering;
    let head = live.head.clone();
    let status_paths = paths.clone();
    let status: crate::api::LiveStatus = std::sync::Arc::new(move || {
        let consumers = live
            .cells
            .lock()
            .map(|cells| {
                cells
                    .iter()
                    .filter_map(|c| c.lock().ok().map(|s| s.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut s = daemon_status(
            &status_paths,
            live.started,
            live.phase.ready.load(Ordering::SeqCst),
            *live.head.borrow(),
            consumers,
            live.off.clone(),
        );
        s.stopping = live.phase.stopping.load(Ordering::SeqCst);
        s.updated_at = crate::status::vouched_at(live.started, s.updated_at);
        s
    });
    let backend = std::sync::Arc::new(crate::api::DaemonApi::new(paths.clone(), requests, status));
    // Streams end when the server shuts down, after the daemon's last event is journaled.
    let stop = tokio_util::sync::CancellationToken::new();
    let source = vaultkeeper_api::follow::Source {
        journal: paths.journal(),
        head,
        stop: stop.clone(),
        recent: Default::default(),
    };
    let server = vaultkeeper_api::serve(
        backend,
        &config.api,
        &paths.socket(),
        &vaultkeeper_api::token::path(&paths.state_dir),
        source,
        mcp_routes(paths, config, stop)?,
    )
    .context("the local API")?;
    Ok(server)
}

/// MCP over streamable HTTP at `/mcp` on the API's listeners, with the write tools when
/// `[mcp] write` says so (the same rule as `vaultkeeper mcp`).
fn mcp_routes(
    paths: &VaultPaths,
    config: &Config,
    stop: tokio_util::sync::CancellationToken,
) -> Result<vaultkeeper_api::Router> {
    let writer = crate::commands::mcp::writer(paths, config, false)
        .context("the MCP write tools ([mcp] write)")?;
    // A listener beyond loopback is reached by its own address: let its host through the
    // MCP transport's DNS-rebinding check (the API's token still guards it).
    let hosts: Vec<String> = config
        .api
        .listen
        .iter()
        .filter_map(|l| l.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.ip().to_string())
        .collect();
    let service = vaultkeeper_mcp::http_service(paths, writer, &hosts, stop);
    Ok(vaultkeeper_api::Router::new().nest_service("/mcp", service))
}

/// How often the journal's retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Applies the journal's retention on the blocking pool, through its own connection (a
/// connection is not shared across threads). Its outcome is logged; nothing waits for it.
fn spawn_prune(journal: std::path::PathBuf, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let pruned = Journal::open(&journal).and_then(|j| j.prune(retention));
        match pruned {
            Ok(n) if n > 0 => info!(pruned = n, "journal retention"),
            Ok(_) => {}
            Err(e) => warn!("journal retention failed: {e}"),
        }
    })
}

/// Says loudly that the state folder went away under the daemon, and why it stops. The
/// journal and cache are unlinked files then, so carrying on would journal into nothing;
/// a restart rebuilds them from the vault. Meanwhile the lock on the vault folder keeps a
/// second daemon out.
fn state_lost(paths: &VaultPaths, why: &str) -> anyhow::Error {
    let message = format!(
        "the state folder {} was deleted or replaced under the running daemon ({why}); \
         its journal and cache went with it. Stopping after committing what is pending; \
         start the daemon again to rebuild them from the vault",
        paths.state_dir.display()
    );
    error!("{message}");
    crate::systemd::status("stopped: state folder deleted");
    anyhow::anyhow!(message)
}

/// Serves the requests that do not end the daemon, the same way whenever they arrive.
struct Server<'a> {
    source: Source,
    paths: &'a VaultPaths,
    watcher: vaultkeeper_watch::Control,
    config_tx: tokio::sync::watch::Sender<std::sync::Arc<Config>>,
    has_rules: bool,
}

impl Server<'_> {
    fn serve(&mut self, req: Request, running: &[Running]) {
        match req {
            Request::Stop => {}
            Request::Reload => match reload(&self.source, self.paths) {
                Ok(new) => {
                    self.watcher.reload(new.watch.clone());
                    if !new.rule.is_empty() && !self.has_rules {
                        warn!(
                            "rules were added while none were configured: they start on the next restart"
                        );
                    }
                    self.config_tx.send_replace(std::sync::Arc::new(new));
                    info!("configuration reloaded");
                }
                Err(e) => error!("configuration not reloaded, keeping the current one: {e:#}"),
            },
            Request::Flush => {
                info!("flush requested");
                for r in running {
                    r.flush.notify_one();
                }
            }
            // The cache's flush serves a pending rebuild request (see cache::apply).
            Request::Reindex => match running.iter().find(|r| r.name == vaultkeeper_cache::NAME) {
                Some(r) => r.flush.notify_one(),
                None => warn!("reindex asked for, but the cache consumer is off"),
            },
        }
    }
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
    tokio::pin!(graceful);
    // Only a second stop cuts the drain short; anything else is answered and the drain
    // goes on, so pending changes are never left behind by a stray signal.
    let mut open = true;
    // Still refreshed while draining: a long drain is alive, not wedged.
    let mut tick = tokio::time::interval(crate::status::REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = &mut graceful => break,
            _ = tick.tick() => {
                status.updated_at = chrono::Utc::now();
                write_status(paths, &status);
            }
            req = requests.next(), if open => match req {
                Some(Request::Stop) => {
                    // Every append and cursor move is a committed SQLite transaction, so the
                    // journal is consistent whenever the process ends.
                    warn!("second stop signal: exiting now");
                    std::process::exit(130);
                }
                Some(Request::Reload) => info!(
                    "reload requested while shutting down: not applied; the next start reads the configuration"
                ),
                Some(Request::Flush) => info!(
                    "flush requested while shutting down: every consumer flushes as it drains"
                ),
                Some(Request::Reindex) => info!(
                    "reindex requested while shutting down: the cache serves it at its next start"
                ),
                None => open = false,
            }
        }
    }
    status.updated_at = chrono::Utc::now();
    write_status(paths, &status);
    info!("stopped");
    Ok(())
}
