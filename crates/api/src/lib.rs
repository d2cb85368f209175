//! The daemon's local HTTP API: a Unix socket (always) and an optional loopback TCP
//! address (bearer token), serving the live event stream (SSE and WebSocket) from the
//! journal by each client's own cursor, status and control, the cache's queries and a page.
//!
//! The daemon owns what the API reports and does, through [`Backend`]; this crate owns the
//! HTTP side only, so the JSON of a status or a query is the one the CLI prints.

pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod follow;
mod listen;
mod page;
pub mod recent;
mod routes;
mod sse;
pub mod token;
mod ws;

/// Routes a caller mounts beside the API's own (see [`serve`]).
pub use axum::Router;
pub use backend::{Backend, Control, DeadLetterAction};
pub use config::ApiConfig;
pub use error::{ApiError, ServeError};
pub use listen::{Server, serve};
