//! Integration tests: the real binary on temporary vaults.

mod amqp_daemon;
mod amqp_lib;
mod cache_daemon;
mod cache_lib;
mod daemon_life;
mod git_daemon;
mod git_lib;
mod integrity;
mod mcp;
mod rules;
mod service;
mod status;
mod util;
mod watch;
