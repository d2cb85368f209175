//! Integration tests: the real binary on temporary vaults.

mod daemon_life;
mod util;
mod watch;
