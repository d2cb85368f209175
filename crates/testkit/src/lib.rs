//! vaultkeeper-testkit: what the tests and benchmarks share (dev-only, never in the binary).
//!
//! - [`vaultgen`]: generated vaults of any size, deterministic from a seed.

pub mod vaultgen;
