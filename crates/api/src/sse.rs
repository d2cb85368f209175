//! Server-Sent Events: `id:` is the seq, a reset is `event: reset`, idle time gets a
//! comment heartbeat.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::follow::{Item, Items};

/// The SSE response for a client's stream.
pub(crate) fn respond(stream: Items, heartbeat: Duration) -> Response {
    let events = stream.map(|item| Ok::<_, Infallible>(to_sse(&item)));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response()
}

fn to_sse(item: &Item) -> Event {
    let id = item.id().to_string();
    // Serializing a reset cannot fail (no maps with non-string keys); an empty data line
    // would still carry the id.
    match item {
        Item::Event(e) => Event::default().id(id).data(e.json()),
        Item::Reset(r) => Event::default()
            .event("reset")
            .id(id)
            .data(serde_json::to_string(r).unwrap_or_default()),
    }
}
