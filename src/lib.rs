//! vaultkeeper: a daemon beside a markdown vault.
//!
//! The data flow, one module each:
//! - [`watch`] turns changes on disk into [`event::Event`]s (kernel notifications are
//!   only hints; every flush compares the disk with a snapshot),
//! - [`journal`] keeps them durably in SQLite, the embedded bus,
//! - [`consumer`] is the one runner that feeds every consumer from its cursor,
//! - [`daemon`] wires them together and owns shutdown,
//! - [`cli`] and [`commands`] are the binary's front door; [`config`] and [`paths`]
//!   say where everything is.

pub mod amqp;
pub mod cache;
pub mod child;
pub mod cli;
pub mod commands;
pub mod config;
pub mod consumer;
pub mod daemon;
pub mod event;
pub mod git;
pub mod journal;
pub mod lock;
pub mod logging;
pub mod mcp;
pub mod paths;
pub mod retry;
pub mod rules;
pub mod status;
pub mod systemd;
pub mod vaultgen;
pub mod watch;
