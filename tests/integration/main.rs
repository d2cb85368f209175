//! Integration tests: the real binary on temporary vaults.

mod cache_daemon;
mod cache_lib;
mod daemon_life;
mod service;
mod util;
mod watch;
