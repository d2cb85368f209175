//! One module per command; `dispatch` finds the vault and calls it.

mod commit;
mod consume;
mod control;
mod deadletters;
mod doctor;
mod events;
mod forget;
mod init;
pub(crate) mod mcp;
mod mv;
mod publish;
mod query;
mod reindex;
mod run;
mod salvage;
mod service;
pub(crate) mod status;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{self, Loaded};
use vaultkeeper_vaultfs::paths::{self, VaultPaths};

/// A vault, its configuration and its state folder: what every command starts from.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where things are.
    pub paths: VaultPaths,
    /// The configuration and its source.
    pub loaded: Loaded,
}

impl Context {
    /// The one way to find the vault: the positional argument or `--vault`, else the
    /// config's `vault`, else the nearest vault from the current folder upwards.
    pub fn resolve(global: &GlobalArgs, vault: Option<&Path>) -> Result<Context> {
        let explicit = vault.or(global.vault.as_deref());
        let root = match explicit {
            Some(v) => v.to_path_buf(),
            None => {
                let pre = config::load(global.config.as_deref(), None)?;
                match pre.config.vault {
                    Some(v) => v,
                    None => paths::discover(&std::env::current_dir()?)?,
                }
            }
        };
        let root = expand_home(&root);
        let loaded = config::load(global.config.as_deref(), Some(&root))?;
        let state_dir = loaded.config.state_dir.as_deref().map(expand_home);
        let paths = VaultPaths::new(&root, loaded.config.name.as_deref(), state_dir.as_deref())?;
        Ok(Context { paths, loaded })
    }
}

fn expand_home(p: &Path) -> std::path::PathBuf {
    match (p.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Run { vault } => run::run(&global, vault.as_deref()),
        Command::Init { vault, force, git } => init::init(&global, vault.as_deref(), force, git),
        Command::Commit => commit::commit(&global),
        Command::Events {
            since,
            follow,
            limit,
        } => events::events(&global, since, follow, global.json, limit),
        Command::Status => status::status(&global, global.json),
        Command::Start => control::start(&global),
        Command::Stop => control::stop(&global),
        Command::Restart => control::restart(&global),
        Command::Open => control::open(&global, global.json),
        Command::Token => control::token(&global),
        Command::Forget { consumer } => forget::forget(&global, &consumer),
        Command::Doctor => doctor::doctor(&global, global.json),
        Command::DeadLetters { retry, drop } => {
            deadletters::dead_letters(&global, retry, drop, global.json)
        }
        Command::Consume {
            target,
            queue,
            binds,
            into,
        } => consume::consume(&global, target, &queue, &binds, into.as_deref()),
        Command::Publish { snapshot } => publish::publish(&global, snapshot),
        Command::Reindex => reindex::reindex(&global),
        Command::Salvage => salvage::salvage(&global, global.json),
        Command::Query(q) => query::query(&global, &q),
        Command::Service { action } => service::service(&global, action),
        Command::Mcp { write } => mcp::mcp(&global, write),
        Command::Mv { from, to, dry_run } => mv::mv(&global, &from, &to, dry_run),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut crate::cli::command(),
                "vaultkeeper",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(crate::cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
