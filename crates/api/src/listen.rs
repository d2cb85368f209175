//! Where the API listens: the Unix socket (0600, always) and the optional TCP address
//! (token required; loopback unless `allow_remote`).

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::config::ApiConfig;
use crate::error::{ApiError, ServeError};
use crate::follow::Source;
use crate::routes::{App, router};

/// The running listeners; [`Server::shutdown`] ends them and removes the socket.
#[derive(Debug)]
pub struct Server {
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// The Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The TCP address actually bound, when one is configured.
    pub fn tcp(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// Ends every stream and listener, waits a little for them, removes the socket file.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Binds the socket (and the TCP address) now, so a failure is the caller's to report,
/// and serves on the current runtime until `source.stop` is cancelled. `mounted` holds routes
/// the caller serves beside the API's own (MCP at `/mcp`); over TCP they need the token too.
pub fn serve<B: Backend>(
    backend: Arc<B>,
    config: &ApiConfig,
    socket: &Path,
    token_file: &Path,
    source: Source,
    mounted: axum::Router,
) -> Result<Server, ServeError> {
    let stop = source.stop.clone();
    let app = Arc::new(App {
        backend,
        source,
        heartbeat: config.heartbeat,
    });
    let unix = bind_socket(socket)?;
    let mut tasks = Vec::new();
    let routes = router(app).merge(mounted);
    let shutdown = stop.clone();
    let unix_routes = routes.clone();
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(unix, unix_routes)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!("the API socket stopped: {e}");
        }
    }));
    let mut tcp = None;
    if let Some(listen) = &config.listen {
        let addr = tcp_address(listen, config.allow_remote)?;
        let token = crate::token::load_or_create(token_file)?;
        let std_listener =
            std::net::TcpListener::bind(addr).map_err(|source| ServeError::Tcp { addr, source })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| ServeError::Tcp { addr, source })?;
        let bound = std_listener.local_addr().unwrap_or(addr);
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|source| ServeError::Tcp { addr, source })?;
        let guarded = routes.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        ));
        let shutdown = stop.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, guarded)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!("the API's TCP listener stopped: {e}");
            }
        }));
        tracing::info!(address = %bound, "API listening on TCP (bearer token required)");
        tcp = Some(bound);
    }
    tracing::info!(socket = %socket.display(), "API listening");
    Ok(Server {
        socket: socket.to_path_buf(),
        tcp,
        stop,
        tasks,
    })
}

/// A Unix socket only its owner can connect to, in a folder only its owner can enter.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, ServeError> {
    // sun_path holds 108 bytes with the terminating NUL.
    if path.as_os_str().len() > 107 {
        return Err(ServeError::SocketTooLong {
            path: path.to_path_buf(),
        });
    }
    let err = |source| ServeError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    // The caller holds the vault's lock: a socket file left here is a dead daemon's.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    tokio::net::UnixListener::from_std(listener).map_err(err)
}

/// Parses `[api] listen`, refusing a non-loopback address unless allowed explicitly.
fn tcp_address(listen: &str, allow_remote: bool) -> Result<SocketAddr, ServeError> {
    let addr: SocketAddr = listen.parse().map_err(|e| ServeError::Address {
        listen: listen.to_string(),
        message: format!("expected IP:PORT ({e})"),
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(ServeError::Address {
            listen: listen.to_string(),
            message: "not a loopback address; set `allow_remote = true` to listen there (the token is still required)".into(),
        });
    }
    Ok(addr)
}

/// TCP requests need `Authorization: Bearer <token>` (or `?token=` for a browser's
/// EventSource, which cannot set headers). The page itself holds no data and is open.
async fn require_token(State(token): State<Arc<String>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/" {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string)
    });
    match header.or(query) {
        Some(given) if crate::token::same(&given, &token) => next.run(req).await,
        _ => {
            let mut res = ApiError {
                status: 401,
                message: "a bearer token is required (`vaultkeeper token` shows it)".into(),
            }
            .into_response();
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_address_needs_saying_so() {
        assert!(tcp_address("127.0.0.1:0", false).is_ok());
        assert!(tcp_address("[::1]:0", false).is_ok());
        let refused = tcp_address("0.0.0.0:8750", false).expect_err("refused");
        assert!(refused.to_string().contains("allow_remote"), "{refused}");
        assert!(tcp_address("0.0.0.0:8750", true).is_ok());
        assert!(tcp_address("localhost", false).is_err());
    }
}
