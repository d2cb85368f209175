//! The API's errors: what a request gets back (one JSON shape), and why a listener failed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A request that could not be served; its body is the CLI's `--json` error document,
/// `{"error": {"message": "...", "causes": []}}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// 400: the request itself is wrong (a bad parameter, a path outside the vault).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }

    /// 409: not possible in the daemon's state (git off, shutting down).
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 409,
            message: message.into(),
        }
    }

    /// 500: the daemon failed (the journal or cache could not be read).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            axum::Json(serde_json::json!({ "error": { "message": self.message, "causes": [] } })),
        )
            .into_response()
    }
}

/// Why the API could not listen; each names the address or file.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket's folder or the socket could not be made.
    #[error("cannot listen on the socket {path}: {source}")]
    Socket {
        /// The socket file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The socket path is longer than a Unix socket address holds.
    #[error(
        "the socket path {path} is too long for a Unix socket (at most 107 bytes); set XDG_RUNTIME_DIR to a shorter folder"
    )]
    SocketTooLong {
        /// The socket file.
        path: std::path::PathBuf,
    },
    /// `[api] listen` is not an address, or not loopback without `allow_remote`.
    #[error("[api] listen = {listen:?}: {message}")]
    Address {
        /// The configured value.
        listen: String,
        /// What is wrong.
        message: String,
    },
    /// The TCP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Tcp {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The token file could not be read or written.
    #[error("the API token {path}: {source}")]
    Token {
        /// The token file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
