//! vaultkeeper-testkit: what the tests and benchmarks share (dev-only: only
//! `[dev-dependencies]` name it, and the boundary test checks the binary never does).
//!
//! A tour, in the order a test meets them:
//!
//! - [`wait`]: [`wait_until`] and its async form [`wait_for`], the one way to wait
//!   (a deadline and a name for the failure, never a bare sleep).
//! - [`vault`]: [`TestVault`], a temporary vault with its own state folder and config,
//!   and the binary under test run on it. The binary's path comes from the test crate
//!   (`env!("CARGO_BIN_EXE_vaultkeeper")` is only set there), handed to the constructors.
//!   Also the journal readings many tests make: [`live_paths`], [`summary`], [`hash`].
//! - [`daemon`]: [`Daemon`], a running daemon: its log, signals, a clean stop, killed on
//!   drop (its log printed when the test is failing).
//! - [`git`]: [`GitVault`], a vault that is a git repository with git's configuration
//!   isolated, and the `git` CLI readings the git tests check.
//! - [`cache`]: the shadow cache read back as rows, and the check that a live cache
//!   equals a fresh `reindex`.
//! - [`broker`]: the test side of RabbitMQ: the one [`Probe`] (declares test queues,
//!   reads, publishes raw messages, removes what it declared even when a test fails),
//!   the [`BROKER`] lock, and [`StoppedBroker`], which puts the broker back on drop.
//! - [`stats`]: figures over timing samples ([`stats::percentile`]), for the benchmarks.
//! - [`vaultgen`]: generated vaults of any size, deterministic from a seed.

pub mod broker;
pub mod cache;
pub mod daemon;
pub mod git;
pub mod stats;
pub mod vault;
pub mod vaultgen;
pub mod wait;

pub use broker::{BROKER, Probe, StoppedBroker, broker_url, unique};
pub use daemon::Daemon;
pub use git::GitVault;
pub use vault::{TestVault, hash, live_paths, summary};
pub use wait::{wait_for, wait_until};
