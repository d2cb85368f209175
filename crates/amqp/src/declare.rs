//! The broker objects a queue consumer needs, declared again on every session: the events
//! exchange, the queue with its dead-letter arguments, `<exchange>.dlx` and `<queue>.dead`.

use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::config::{AmqpConfig, QueueType};
use crate::connection::Link;
use crate::error::AmqpError;
use crate::publish::declare_exchange;

/// The dead-letter exchange of `exchange`: `<exchange>.dlx` (direct, keyed by queue name).
pub fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dlx")
}

/// The dead-letter queue of `queue`: `<queue>.dead`.
pub fn dead_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

fn queue_args(cfg: &AmqpConfig, dead_letter_to: Option<(&str, &str)>) -> FieldTable {
    let mut args = FieldTable::default();
    let kind = match cfg.queue_type {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    };
    args.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
    if let Some((dlx, key)) = dead_letter_to {
        if cfg.queue_type == QueueType::Quorum {
            // RabbitMQ 3.10 has no default limit: without it a poison message loops forever.
            let limit = i64::from(cfg.delivery_limit.max(1));
            args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        }
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(key.into()),
        );
    }
    args
}

async fn declare_queue(
    link: &Link,
    ch: &Channel,
    name: &str,
    args: FieldTable,
) -> Result<(), AmqpError> {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        args,
    )
    .await
    .map(|_| ())
    .map_err(|e| link.map_err(&format!("declaring queue {name}"), &e))
}

async fn bind(
    link: &Link,
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), AmqpError> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| {
        link.map_err(
            &format!("binding queue {queue} to {exchange} with {key}"),
            &e,
        )
    })
}

/// Opens a fresh channel, redoes every declaration, and starts consuming.
pub(crate) async fn open_session(
    link: &mut Link,
    cfg: &AmqpConfig,
    queue: &str,
    keys: &[String],
) -> Result<(Channel, lapin::Consumer), AmqpError> {
    let (ch, _) = link.channel().await?;
    let dlx = dead_letter_exchange(&cfg.exchange);
    let dead = dead_queue(queue);
    declare_exchange(link, &ch, &cfg.exchange, ExchangeKind::Topic).await?;
    declare_exchange(link, &ch, &dlx, ExchangeKind::Direct).await?;
    declare_queue(link, &ch, &dead, queue_args(cfg, None)).await?;
    bind(link, &ch, &dead, &dlx, queue).await?;
    declare_queue(link, &ch, queue, queue_args(cfg, Some((&dlx, queue)))).await?;
    for key in keys {
        bind(link, &ch, queue, &cfg.exchange, key).await?;
    }
    ch.basic_qos(cfg.prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(|e| link.map_err("setting prefetch", &e))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| link.map_err("enabling publisher confirms", &e))?;
    let deliveries = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| link.map_err(&format!("consuming from {queue}"), &e))?;
    Ok((ch, deliveries))
}
