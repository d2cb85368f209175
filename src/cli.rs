//! The command line: clap definitions and dispatch to the commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

/// vaultkeeper: watches a markdown vault, journals every change, and feeds a shadow
/// cache, git and RabbitMQ.
#[derive(Debug, Parser)]
#[command(name = "vaultkeeper", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// The vault folder (default: found from the current folder upwards).
    #[arg(long, global = true, env = "VAULTKEEPER_VAULT")]
    pub vault: Option<PathBuf>,
    /// The configuration file (default: $VAULTKEEPER_CONFIG, <vault>/.vaultkeeper.toml,
    /// then $XDG_CONFIG_HOME/vaultkeeper/config.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Print JSON (one document, or one object per line for event streams).
    #[arg(long, global = true)]
    pub json: bool,
    /// Query this shadow cache file instead of the vault's (e.g. one built by
    /// `consume cache --into DIR`: DIR/cache.db); no vault needed.
    #[arg(long, global = true, env = "VAULTKEEPER_CACHE", value_name = "FILE")]
    pub cache: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon on a vault until SIGINT/SIGTERM.
    Run {
        /// The vault folder (same as --vault).
        vault: Option<PathBuf>,
    },
    /// Write a starter configuration into a vault.
    Init {
        /// The vault folder (default: the current folder).
        vault: Option<PathBuf>,
        /// Overwrite an existing .vaultkeeper.toml.
        #[arg(long)]
        force: bool,
        /// Also make the vault a git repository (with a sensible .gitignore), for auto-commit.
        #[arg(long)]
        git: bool,
    },
    /// Print the journal's events, one per line.
    Events {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep printing new events as they are journaled.
        #[arg(long, short)]
        follow: bool,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Show whether a daemon runs for the vault and how its consumers are doing.
    Status,
    /// Start a daemon for the vault in the background; returns once it is ready, or with
    /// its error (its log: daemon.log in the state folder).
    Start,
    /// Stop the vault's daemon gracefully (pending changes are committed first), wait for
    /// it, and say how far each consumer got.
    Stop,
    /// Stop the vault's daemon if one runs, then start one.
    Restart,
    /// Print the page's URL (and open it when a desktop session is at hand).
    Open,
    /// Print the bearer token TCP clients of the API send (made if there is none).
    Token,
    /// Check the set-up and say what to fix.
    Doctor,
    /// List events consumers gave up on; retry or drop them.
    DeadLetters {
        /// Hand this dead letter to its consumer again.
        #[arg(long, value_name = "ID", conflicts_with = "drop")]
        retry: Option<i64>,
        /// Forget this dead letter.
        #[arg(long, value_name = "ID")]
        drop: Option<i64>,
    },
    /// Drop a consumer's cursor on purpose: one that is off for good (e.g. no broker any
    /// more) and holds back journal retention. `status` lists such consumers. If it is
    /// turned on again later, it starts afresh (see `[amqp] start`).
    Forget {
        /// The consumer's name as `status` shows it (`amqp`, `git`, `rules`, `cache`).
        consumer: String,
    },
    /// Install or remove the user service (systemd on Linux, launchd on macOS).
    Service {
        /// install or uninstall.
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Commit pending changes now (flush git auto-commit).
    Commit,
    /// Run a consumer on this machine from a RabbitMQ queue (no vault needed with --into).
    Consume {
        /// What to do with the events.
        #[arg(value_enum)]
        target: ConsumeTarget,
        /// The durable queue to consume (declared and bound if needed; `<NAME>.dead` too).
        #[arg(long, value_name = "NAME")]
        queue: String,
        /// A routing key to bind the queue with (repeatable; default `file.#`).
        #[arg(long = "bind", value_name = "KEY")]
        binds: Vec<String>,
        /// The folder to build into (cache: DIR/cache.db; git: the repository).
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Publish events to RabbitMQ outside the journal.
    Publish {
        /// One `origin: snapshot` event per current file of the vault.
        #[arg(long, required = true)]
        snapshot: bool,
    },
    /// Rebuild the shadow cache from the vault (also done on its own after a schema change).
    Reindex,
    /// Recover from a damaged journal: keep it as journal.db.damaged-<time>, copy what can be
    /// read into a new journal; the next start rescans the vault (the daemon must be stopped).
    Salvage,
    /// Query the shadow cache.
    #[command(flatten)]
    Query(crate::render::query::QueryCommand),
    /// Serve the vault to AI assistants: a Model Context Protocol server on stdin/stdout
    /// (search, notes, backlinks, tags, tasks, recent changes, SQL; writes with --write).
    Mcp {
        /// Offer the write tools (each write is checked, atomic and its own git commit);
        /// same as `[mcp] write = true`.
        #[arg(long)]
        write: bool,
    },
    /// Move or rename a note or a folder, rewriting the links that would break (each in the
    /// form it was written); one git commit holds the move and the rewrites.
    Mv {
        /// The note or folder (vault path).
        from: String,
        /// The new vault path (must not exist).
        to: String,
        /// Print the move and the link changes, write nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// What `vaultkeeper consume` feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsumeTarget {
    /// A shadow cache built from the events' content.
    Cache,
    /// A git repository mirroring the vault.
    Git,
    /// The rules consumer (user commands).
    Exec,
}

/// `vaultkeeper service …`.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write and enable the unit for the current user, printing what was done.
    Install {
        /// Only write the unit file; do not call systemctl/launchctl.
        #[arg(long)]
        no_enable: bool,
    },
    /// Disable and remove the unit.
    Uninstall,
}

/// The clap command, for completions and the man page.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    // The same binary is the rule supervisor (see `vaultkeeper_rules::supervise`).
    if let Some(code) = vaultkeeper_rules::supervise::run_if_asked() {
        return code;
    }
    #[cfg(target_os = "linux")]
    vaultkeeper_rules::supervise::enable("/proc/self/exe".into());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.global.json;
    match crate::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if json => crate::render::error::print_json(&e),
        Err(e) => {
            eprintln!("vaultkeeper: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused: under `--json` the same error document as a failed command
/// (scripts read errors where they read results); help, version and plain use as clap does.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let info = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    let json = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if info || !json {
        e.exit();
    }
    let message = e.render().to_string();
    let message = message.trim().trim_start_matches("error: ").to_string();
    crate::render::error::print_json(&anyhow::anyhow!(message))
}

/// A closed stdout (`| head`): the reader has what it wanted. serde_json keeps the I/O error
/// inside its own error (its `source()` skips it), so that is looked into too.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
