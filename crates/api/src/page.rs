//! `GET /`: the page, embedded in the binary (no build step, no CDN).

use axum::response::Html;

const PAGE: &str = include_str!("page.html");

pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}
