//! The `[mcp]` configuration section.

use serde::{Deserialize, Serialize};

/// Settings of `vaultkeeper mcp` (`[mcp]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Offer the write tools (also `vaultkeeper mcp --write`). Off by default.
    pub write: bool,
    /// The largest file a write tool may leave, in bytes.
    pub max_write_bytes: u64,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            write: false,
            max_write_bytes: vaultkeeper_write::DEFAULT_MAX_BYTES,
        }
    }
}
