//! vaultkeeper, the binary's crate: the command line, the commands, and the daemon that
//! wires the library crates together.
//!
//! The data flow lives in the crates under `crates/`, one job each:
//! - `vaultkeeper-watch` turns changes on disk into events (kernel notifications are only
//!   hints; every flush compares the disk with a snapshot), reading the vault through
//!   `vaultkeeper-vaultfs`,
//! - `vaultkeeper-journal` keeps them durably in SQLite, the embedded bus,
//! - `vaultkeeper-runner` is the one runner that feeds every consumer from its cursor,
//! - the consumers: `vaultkeeper-cache`, `vaultkeeper-git`, `vaultkeeper-amqp`,
//!   `vaultkeeper-rules`; `vaultkeeper-mcp` serves the cache to assistants.
//!
//! Here: [`cli`] is the front door; `commands` runs each subcommand; `daemon` wires the
//! watcher, journal and runners and owns shutdown; `config` is the TOML file.

mod api;
pub mod cli;
mod commands;
mod config;
mod daemon;
mod lock;
mod logging;
mod render;
mod status;
mod systemd;
mod unit;
