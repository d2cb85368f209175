//! `vaultkeeper init`: a starter configuration in the vault.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::cli::GlobalArgs;
use crate::config::{VAULT_CONFIG_NAME, starter};

/// Writes `<vault>/.vaultkeeper.toml`.
pub fn init(global: &GlobalArgs, vault: Option<&Path>, force: bool, git: bool) -> Result<ExitCode> {
    let root = match vault.or(global.vault.as_deref()) {
        Some(v) => v.to_path_buf(),
        None => std::env::current_dir()?,
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("vault folder {} is not accessible", root.display()))?;
    let file = root.join(VAULT_CONFIG_NAME);
    if file.exists() && !force {
        bail!(
            "{} exists already (use --force to overwrite)",
            file.display()
        );
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vault".into());
    std::fs::write(&file, starter(&name))
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("wrote {}", file.display());
    if git {
        let state = std::env::var_os("VAULTKEEPER_STATE_DIR").map(std::path::PathBuf::from);
        let paths = vaultkeeper_vaultfs::paths::VaultPaths::new(&root, None, state.as_deref())?;
        let outcome = vaultkeeper_git::init_repo(&root, paths.state_dir_in_vault().as_deref())?;
        if outcome.created {
            println!("created a git repository in {}", root.display());
        } else {
            println!("{} is already in a git repository", root.display());
        }
        if !outcome.gitignore_added.is_empty() {
            println!(
                "added to .gitignore: {}",
                outcome.gitignore_added.join(", ")
            );
        }
    }
    println!("start the daemon with: vaultkeeper run {}", root.display());
    Ok(ExitCode::SUCCESS)
}
