//! The integration tests' end of the shared harness (`vaultkeeper-testkit`): the binary
//! under test, which only this crate can name, and the harness items the tests use.

pub use vaultkeeper_testkit::{Daemon, TestVault, hash, live_paths, summary, wait_until};

/// The binary under test, handed to `TestVault` and `GitVault` constructors.
pub const BIN: &str = env!("CARGO_BIN_EXE_vaultkeeper");
