//! The routes: one handler per endpoint, each a thin call into [`Backend`] or [`follow`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::backend::{Backend, Control, DeadLetterAction};
use crate::error::ApiError;
use crate::follow::{self, Filter, Source};

/// What every handler can reach.
pub(crate) struct App<B> {
    pub backend: Arc<B>,
    pub source: Source,
    pub heartbeat: Duration,
}

/// Every route; the TCP listener wraps it in the token check.
pub(crate) fn router<B: Backend>(app: Arc<App<B>>) -> Router {
    Router::new()
        .route("/", get(crate::page::page))
        .route("/v1/events", get(events::<B>))
        .route("/v1/events/ws", get(events_ws::<B>))
        .route("/v1/status", get(status::<B>))
        .route("/v1/commit", post(commit::<B>))
        .route("/v1/reload", post(reload::<B>))
        .route("/v1/stop", post(stop::<B>))
        .route("/v1/dead-letters", get(dead_letters::<B>))
        .route("/v1/dead-letters/{id}/retry", post(retry::<B>))
        .route(
            "/v1/dead-letters/{id}",
            axum::routing::delete(drop_letter::<B>),
        )
        .route("/v1/query/{name}", get(query::<B>))
        .fallback(|| async {
            ApiError::not_found("no such endpoint (see the README's API section)")
        })
        .with_state(app)
}

type AppState<B> = State<Arc<App<B>>>;

/// Runs a blocking backend call on the blocking pool.
async fn blocking<B: Backend, T: Send + 'static>(
    app: &App<B>,
    call: impl FnOnce(&B) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = Arc::clone(&app.backend);
    vaultkeeper_core::blocking::off_executor(move || call(&backend))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn status<B: Backend>(State(app): AppState<B>) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, |b| b.status()).await.map(axum::Json)
}

async fn commit<B: Backend>(State(app): AppState<B>) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, |b| b.commit()).await.map(axum::Json)
}

async fn reload<B: Backend>(State(app): AppState<B>) -> Result<Response, ApiError> {
    app.backend.control(Control::Reload)?;
    Ok(accepted("reload"))
}

async fn stop<B: Backend>(State(app): AppState<B>) -> Result<Response, ApiError> {
    app.backend.control(Control::Stop)?;
    Ok(accepted("stop"))
}

fn accepted(what: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "requested": what })),
    )
        .into_response()
}

async fn dead_letters<B: Backend>(State(app): AppState<B>) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, |b| b.dead_letters()).await.map(axum::Json)
}

async fn retry<B: Backend>(
    State(app): AppState<B>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, move |b| b.dead_letter(DeadLetterAction::Retry(id)))
        .await
        .map(axum::Json)
}

async fn drop_letter<B: Backend>(
    State(app): AppState<B>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, move |b| b.dead_letter(DeadLetterAction::Drop(id)))
        .await
        .map(axum::Json)
}

async fn query<B: Backend>(
    State(app): AppState<B>,
    Path(name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Value>, ApiError> {
    blocking(&app, move |b| b.query(&name, &params))
        .await
        .map(axum::Json)
}

/// `?since=`, `?kind=`, `?path=` of the event streams.
#[derive(Debug, Deserialize)]
struct EventsParams {
    since: Option<u64>,
    kind: Option<String>,
    path: Option<String>,
}

/// `Last-Event-ID` (a reconnecting EventSource) wins over `?since=`.
fn resume_point(headers: &HeaderMap, since: Option<u64>) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(since),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID: expected a sequence number")),
    }
}

async fn open_stream<B: Backend>(
    app: &App<B>,
    since: Option<u64>,
    params: &EventsParams,
) -> Result<follow::Items, ApiError> {
    let filter = Filter::parse(params.kind.as_deref(), params.path.as_deref())?;
    let source = app.source.clone();
    vaultkeeper_core::blocking::off_executor(move || follow::follow(source, since, filter))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn events<B: Backend>(
    State(app): AppState<B>,
    headers: HeaderMap,
    Query(params): Query<EventsParams>,
) -> Result<Response, ApiError> {
    let since = resume_point(&headers, params.since)?;
    let stream = open_stream(&app, since, &params).await?;
    Ok(crate::sse::respond(stream, app.heartbeat))
}

async fn events_ws<B: Backend>(
    State(app): AppState<B>,
    headers: HeaderMap,
    Query(params): Query<EventsParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let since = resume_point(&headers, params.since)?;
    let stream = open_stream(&app, since, &params).await?;
    let heartbeat = app.heartbeat;
    Ok(upgrade.on_upgrade(move |socket| crate::ws::pump(socket, stream, heartbeat)))
}
