//! The same stream over WebSocket: one text message per item (an event's JSON, or
//! `{"reset": ...}`), a ping per heartbeat; resume with `?since=`.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};

use crate::follow::{Item, Items};

/// Sends the stream until it ends or the client goes away.
pub(crate) async fn pump(socket: WebSocket, mut stream: Items, heartbeat: Duration) {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(heartbeat);
    ping.tick().await;
    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                let text = match &item {
                    Item::Event(e) => Ok(e.json().to_string()),
                    Item::Reset(r) => serde_json::to_string(&serde_json::json!({ "reset": r })),
                };
                let Ok(text) = text else { break };
                // Awaiting the send is the backpressure: a client that does not read
                // holds only this one message.
                if tx.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            msg = rx.next() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}
