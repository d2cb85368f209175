//! Integration tests: the real binary on temporary vaults.

mod amqp_daemon;
mod amqp_lib;
mod cache_daemon;
mod cache_lib;
mod crash;
mod cursors_amqp;
mod cursors_reindex;
mod daemon_life;
mod git_daemon;
mod git_lib;
mod life_lock;
mod life_push;
mod life_signals;
mod life_status;
mod mcp;
mod rules;
mod secrets_children;
mod secrets_escape;
mod secrets_login;
mod secrets_redact;
mod secrets_sql;
mod service;
mod status;
mod util;
mod watch;
mod watch_faults;
