//! The `amqp` section of the benchmark, against the real broker: events per second published
//! with confirms by the forwarder (from a Vec, and in runner-sized batches), next to a bare
//! lapin publisher that does nothing else (the broker's own limit on this machine) and a
//! Python pika publisher, sending the same message bodies in the same run; then publish →
//! remote consumer latency, and end to end: a file written into a running daemon's vault →
//! the remote consumer's ack.
//!
//! `cargo bench --bench bench -- amqp` (env: BENCH_N messages, default 20000; BENCH_SIZE
//! content bytes, default 1024; BENCH_E2E samples, default 200, 0 skips; BENCH_PYTHON=0
//! skips pika; BENCH_ROUTED=0 binds no queue; VAULTKEEPER_AMQP_URL; VAULTKEEPER_PYTHON).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio_util::sync::CancellationToken;
use vaultkeeper_amqp::{
    AmqpConfig, Forwarder, SecretUrl, consume_queue, dead_letter_exchange, dead_queue,
};
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind, Origin};
use vaultkeeper_testkit::stats::percentile;

use super::table;

/// Runs the section; a broker that cannot be reached is reported, not a panic.
pub fn run() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("amqp: no tokio runtime: {e}");
            return;
        }
    };
    if let Err(e) = runtime.block_on(bench()) {
        println!("amqp: benchmark failed (is RabbitMQ running on 127.0.0.1:5672?): {e:#}");
    }
}

/// The bare publisher: what the broker takes on this machine from a client that does
/// nothing else. One channel in confirm mode, bodies encoded and properties built before
/// the clock starts, each publish awaited only until lapin has queued its frames, and up to
/// `window` confirms outstanding, awaited in order.
async fn bare_publish(
    ch: &Channel,
    exchange: &str,
    messages: &[(String, Vec<u8>, BasicProperties)],
    window: usize,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut pending = VecDeque::with_capacity(window);
    for (key, body, props) in messages {
        if pending.len() >= window
            && let Some(confirm) = pending.pop_front()
        {
            check(confirm).await?;
        }
        let confirm = ch
            .basic_publish(
                exchange.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                props.clone(),
            )
            .await?;
        pending.push_back(confirm);
    }
    while let Some(confirm) = pending.pop_front() {
        check(confirm).await?;
    }
    Ok(t.elapsed())
}

async fn check(confirm: lapin::PublisherConfirm) -> anyhow::Result<()> {
    match confirm.await? {
        Confirmation::Ack(_) => Ok(()),
        other => anyhow::bail!("the broker did not ack: {other:?}"),
    }
}

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn make_events(n: usize, size: usize) -> Vec<Event> {
    let filler = "lorem ipsum dolor sit amet [[Link]] #tag ".repeat(size / 40 + 1);
    (0..n)
        .map(|i| {
            let content = filler[..size].to_string();
            let mut e = Event::builder(
                Kind::Modified,
                format!("Notes/folder-{}/note-{i}.md", i % 50),
            )
            .read(
                content.len() as u64,
                Some(blake3::hash(content.as_bytes()).to_hex().to_string()),
                Some(content),
            )
            .source("bench", "benchhost")
            .origin(Origin::Watch)
            .build();
            e.seq = i as u64 + 1;
            e
        })
        .collect()
}

async fn purge(ch: &Channel, queue: &str) {
    let _ = ch
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await;
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

struct LatencyRecorder(Arc<Mutex<Vec<Duration>>>);

impl Consumer for LatencyRecorder {
    fn name(&self) -> &str {
        "latency"
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let now = chrono::Utc::now();
        let mut v = self.0.lock().map_err(|_| ConsumerError::failed("lock"))?;
        for e in batch {
            v.push((now - e.timestamp).to_std().unwrap_or_default());
        }
        Ok(batch
            .last()
            .map_or(Durable::Unchanged, |e| Durable::Upto(e.seq)))
    }
}

/// Records when each file's event reached the remote consumer (just before its ack).
struct ArrivalRecorder(Arc<Mutex<Vec<(String, Instant)>>>);

impl Consumer for ArrivalRecorder {
    fn name(&self) -> &str {
        "arrivals"
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        let now = Instant::now();
        let mut v = self.0.lock().map_err(|_| ConsumerError::failed("lock"))?;
        for e in batch {
            v.push((e.file_path.clone(), now));
        }
        Ok(batch
            .last()
            .map_or(Durable::Unchanged, |e| Durable::Upto(e.seq)))
    }
}

/// The real daemon on a temporary vault publishing to `exchange`; a `consume_queue`
/// consumer in this process. One note written at a time, the next once the previous one
/// was handled: latency from the write to the consumer's handle, which acks right after.
async fn e2e_latency(url: &str, exchange: &str, tag: &str, samples: usize) -> anyhow::Result<()> {
    let vault = tempfile::tempdir()?;
    let state = tempfile::tempdir()?;
    let config = state.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[amqp]\nexchange = \"{exchange}\"\nheartbeat = \"0s\"\n"),
    )?;
    let log = state.path().join("daemon.log");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_vaultkeeper"))
        .arg("run")
        .env("VAULTKEEPER_VAULT", vault.path())
        .env("VAULTKEEPER_STATE_DIR", state.path().join("state"))
        .env("VAULTKEEPER_CONFIG", &config)
        .env("VAULTKEEPER_AMQP_URL", url)
        .env("XDG_CONFIG_HOME", state.path().join("xdg"))
        .env("VAULTKEEPER_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let queue = format!("vk-bench-e2e-{tag}");
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let token = CancellationToken::new();
    let cfg = AmqpConfig {
        url: Some(SecretUrl::new(url.to_string())),
        exchange: exchange.to_string(),
        heartbeat: Duration::ZERO,
        ..AmqpConfig::default()
    };
    let consumer = {
        let cfg = cfg.clone();
        let q = queue.clone();
        let t = token.clone();
        let rec = ArrivalRecorder(arrivals.clone());
        tokio::spawn(async move { consume_queue(&cfg, &q, &[], rec, t).await })
    };
    let arrived = |name: &str| {
        arrivals
            .lock()
            .map(|v| v.iter().find(|(p, _)| p == name).map(|(_, t)| *t))
            .unwrap_or(None)
    };
    // Warm up until the daemon is ready, the forwarder connected and the queue bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut warm = 0;
    'warm: loop {
        let name = format!("warmup-{warm}.md");
        std::fs::write(vault.path().join(&name), "warm")?;
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if arrived(&name).is_some() {
                break 'warm;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        warm += 1;
        anyhow::ensure!(
            Instant::now() < deadline,
            "the daemon never delivered: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let mut lat = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = format!("Notes/e2e-{i}.md");
        if i == 0 {
            std::fs::create_dir_all(vault.path().join("Notes"))?;
        }
        let written = Instant::now();
        std::fs::write(
            vault.path().join(&name),
            format!("# Note {i}\n[[Other]] #tag\n"),
        )?;
        let until = Instant::now() + Duration::from_secs(30);
        let at = loop {
            if let Some(t) = arrived(&name) {
                break t;
            }
            anyhow::ensure!(Instant::now() < until, "{name} never arrived");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        lat.push(at.saturating_duration_since(written));
    }
    token.cancel();
    let _ = consumer.await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    lat.sort();
    println!(
        "  end to end, file write → daemon (debounce 100ms default) → quorum queue → consume_queue ack ({} notes, one at a time): p50 {:.2?}  p95 {:.2?}  max {:.2?}",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.95),
        lat.last().copied().unwrap_or_default()
    );
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    for q in [queue.clone(), dead_queue(&queue)] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

async fn bench() -> anyhow::Result<()> {
    let n = env_num("BENCH_N", 20_000);
    let size = env_num("BENCH_SIZE", 1024);
    let url = std::env::var("VAULTKEEPER_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let exchange = format!("vk-bench-{tag}");
    let queue = format!("vk-bench-q-{tag}");

    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        exchange.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    // BENCH_ROUTED=0 leaves the exchange without a queue: the client-side ceiling.
    let routed = env_num("BENCH_ROUTED", 1) != 0;
    if routed {
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "file.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }

    let cfg = AmqpConfig {
        url: Some(SecretUrl::new(url.clone())),
        exchange: exchange.clone(),
        heartbeat: Duration::ZERO,
        ..AmqpConfig::default()
    };
    let events = make_events(n, size);
    let body_size = serde_json::to_vec(&events[0])?.len();
    println!(
        "amqp bench: {n} persistent messages of {body_size} bytes, {}, confirms on",
        if routed {
            "routed to one durable classic queue"
        } else {
            "no queue bound (unroutable)"
        }
    );
    // BENCH_PYTHON=0 skips the (slow) pika run.
    let with_python = env_num("BENCH_PYTHON", 1) != 0;

    let mut fwd = Forwarder::new(&cfg, "benchhost")?;
    fwd.publish_events(&events[..100]).await?; // connect and warm up
    purge(&ch, &queue).await;

    let t = Instant::now();
    fwd.publish_events(&events).await?;
    let vec_time = t.elapsed();
    println!(
        "  rust forwarder, one Vec (max_in_flight {}): {:>9.0} msg/s ({:.2?})",
        cfg.max_in_flight,
        rate(n, vec_time),
        vec_time
    );
    purge(&ch, &queue).await;

    // The runner hands the forwarder batches of `runner.batch_size` (500 by default).
    let mut runner_rate = 0.0;
    for batch in [100usize, 500] {
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            fwd.handle(chunk)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let d = t.elapsed();
        println!(
            "  rust forwarder, handle() batches of {batch:>4}:   {:>9.0} msg/s ({d:.2?})",
            rate(n, d)
        );
        runner_rate = rate(n, d);
        purge(&ch, &queue).await;
    }
    fwd.close().await;

    // The bare publisher, same bodies, properties, exchange and queue, on its own channel.
    let messages: Vec<(String, Vec<u8>, BasicProperties)> = events
        .iter()
        .map(|e| {
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_message_id(e.id.as_str().into())
                .with_timestamp(e.timestamp.timestamp().max(0) as u64)
                .with_app_id("vaultkeeper".into())
                .with_type(format!("file.{}", e.event.as_str()).into());
            Ok((e.routing_key(), serde_json::to_vec(e)?, props))
        })
        .collect::<anyhow::Result<_>>()?;
    let bare_ch = conn.create_channel().await?;
    bare_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    bare_publish(&bare_ch, &exchange, &messages[..100], cfg.max_in_flight).await?;
    purge(&ch, &queue).await;
    let bare = bare_publish(&bare_ch, &exchange, &messages, cfg.max_in_flight).await?;
    let bare_rate = rate(n, bare);
    println!(
        "  bare lapin publisher (confirms, window {}):    {:>9.0} msg/s ({bare:.2?})",
        cfg.max_in_flight, bare_rate
    );
    let _ = bare_ch.close(200, "done".into()).await;
    purge(&ch, &queue).await;

    // Python pika, same bodies, same exchange and queue.
    let mut bodies = tempfile::NamedTempFile::new()?;
    for e in &events {
        bodies.write_all(&serde_json::to_vec(e)?)?;
        bodies.write_all(b"\n")?;
    }
    bodies.flush()?;
    let python = std::env::var("VAULTKEEPER_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pika_publisher.py");
    let out = if with_python {
        tokio::process::Command::new(&python)
            .arg(script)
            .args(["--url", &url, "--exchange", &exchange, "--bodies"])
            .arg(bodies.path())
            .output()
            .await?
    } else {
        tokio::process::Command::new("true").output().await?
    };
    let mut pika = None;
    if !with_python {
    } else if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let per_second = v["per_second"].as_f64().unwrap_or(0.0);
        pika = Some(per_second);
        println!(
            "  python pika BlockingConnection + confirm_delivery: {:>9.0} msg/s ({:.2}s)",
            per_second,
            v["seconds"].as_f64().unwrap_or(0.0)
        );
    } else {
        println!(
            "  python pika publisher failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    purge(&ch, &queue).await;
    table::record(table::Row {
        figure: format!(
            "AMQP publish with confirms, persistent, {}, forwarder in batches of 500",
            if routed {
                "routed to a durable queue"
            } else {
                "unroutable"
            }
        ),
        ours: format!("{runner_rate:.0} msg/s"),
        against: format!(
            "bare lapin publisher {bare_rate:.0} msg/s ({:.0}%){}",
            100.0 * runner_rate / bare_rate.max(1.0),
            pika.map(|p| format!("; pika {p:.0} msg/s"))
                .unwrap_or_default()
        ),
        aim: "20,000 msg/s, or within 80% of the bare publisher".into(),
        reached: Some(runner_rate >= 20_000.0 || runner_rate >= 0.8 * bare_rate),
    });

    // Latency: events handed to the forwarder one at a time (as the runner does for a
    // single edit) to a remote consumer on a quorum queue; measured from the event's
    // creation to the consumer's handle (just before its ack).
    let lat_queue = format!("vk-bench-lat-{tag}");
    let samples = Arc::new(Mutex::new(Vec::new()));
    let token = CancellationToken::new();
    let consumer = {
        let cfg = cfg.clone();
        let q = lat_queue.clone();
        let t = token.clone();
        let rec = LatencyRecorder(samples.clone());
        tokio::spawn(async move { consume_queue(&cfg, &q, &[], rec, t).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // let it declare and bind
    let mut fwd = Forwarder::new(&cfg, "benchhost")?;
    let count = 1000;
    for i in 0..count {
        let mut e = make_events(1, size).remove(0);
        e.seq = i as u64 + 1;
        fwd.handle(std::slice::from_ref(&e))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples.lock().map(|v| v.len()).unwrap_or(0) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    let _ = consumer.await;
    fwd.close().await;
    let mut v = samples.lock().map(|v| v.clone()).unwrap_or_default();
    v.sort();
    println!(
        "  latency event → forwarder → quorum queue → consume_queue handle ({} events, one per handle): p50 {:.2?}  p95 {:.2?}  max {:.2?}",
        v.len(),
        percentile(&v, 0.50),
        percentile(&v, 0.95),
        v.last().copied().unwrap_or_default()
    );

    let e2e = env_num("BENCH_E2E", 200);
    if e2e > 0 {
        e2e_latency(&url, &exchange, &tag, e2e).await?;
    }

    for q in [queue.clone(), lat_queue.clone(), dead_queue(&lat_queue)] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for e in [exchange.clone(), dead_letter_exchange(&exchange)] {
        let _ = ch
            .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}
