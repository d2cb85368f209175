//! MCP over the streamable-HTTP transport: the same server as on stdio, as a tower service the
//! daemon mounts at `/mcp` on its local API (the Unix socket, and TCP behind the API's token).

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use vaultkeeper_vaultfs::paths::VaultPaths;

use crate::VaultServer;

/// The HTTP service type the API mounts.
pub type HttpService = StreamableHttpService<VaultServer, LocalSessionManager>;

/// A streamable-HTTP MCP service over the vault of `paths`, with the write tools when a
/// `writer` is given. `hosts` are the `Host` values accepted besides loopback ones (the API's
/// TCP address when it listens beyond loopback): the host check guards against DNS rebinding.
/// Sessions end when `stop` is cancelled.
pub fn http_service(
    paths: &VaultPaths,
    writer: Option<vaultkeeper_write::Writer>,
    hosts: &[String],
    stop: CancellationToken,
) -> HttpService {
    let mut server = VaultServer::new(paths.root.clone(), paths.cache(), paths.journal());
    if let Some(w) = writer {
        server = server.with_writer(w);
    }
    let mut allowed: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|h| h.to_string())
        .collect();
    allowed.extend(hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed)
        .with_cancellation_token(stop);
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
