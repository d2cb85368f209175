//! Integration tests: the real binary on temporary vaults.

mod amqp_daemon;
mod amqp_lib;
mod cache_lib;
mod daemon_life;
mod service;
mod util;
mod watch;
