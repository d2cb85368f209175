//! Signed commits: follow `commit.gpgsign` / `gpg.format` as git does, or refuse; never sign silently less.

use std::io::Write;
use std::process::Stdio;

use git2::Repository;

use super::config::GitConfig;

/// How commits must be signed, read from the repository's git config at commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// `commit.gpgsign` is unset or false.
    Unsigned,
    /// OpenPGP or X.509: `<program> --status-fd=2 -bsau <key>`.
    Gpg {
        /// `gpg.program` (or `gpg.x509.program`), default `gpg` (`gpgsm`).
        program: String,
        /// `user.signingkey`, default the committer's `Name <email>`.
        key: String,
    },
    /// SSH: `<program> -Y sign -n git -f <key>`.
    Ssh {
        /// `gpg.ssh.program`, default `ssh-keygen`.
        program: String,
        /// `user.signingkey`: a key file, or `key::<public key>` (then the agent signs).
        key: String,
    },
}

fn config_string(cfg: &git2::Config, key: &str) -> Option<String> {
    cfg.get_string(key).ok().filter(|s| !s.trim().is_empty())
}

/// Reads `commit.gpgsign`, `gpg.format`, the program and the key; `committer` is the
/// default OpenPGP key id as git uses it.
pub fn signing(repo: &Repository, cfg: &GitConfig, committer: &str) -> Result<Signing, String> {
    let mut config = repo
        .config()
        .map_err(|e| format!("cannot read git config: {e}"))?;
    // A snapshot, so that values do not change between reads.
    let config = config
        .snapshot()
        .map_err(|e| format!("cannot read git config: {e}"))?;
    let sign = match config.get_bool("commit.gpgsign") {
        Ok(b) => b,
        Err(e) if e.code() == git2::ErrorCode::NotFound => false,
        Err(e) => {
            return Err(format!(
                "commit.gpgsign in git config is not a boolean: {e}"
            ));
        }
    };
    if !sign {
        return Ok(Signing::Unsigned);
    }
    let format = config_string(&config, "gpg.format").unwrap_or_else(|| "openpgp".into());
    let key = cfg
        .sign_key
        .clone()
        .or_else(|| config_string(&config, "user.signingkey"));
    match format.as_str() {
        "openpgp" | "x509" => {
            let (prog_key, default_prog) = if format == "x509" {
                ("gpg.x509.program", "gpgsm")
            } else {
                ("gpg.program", "gpg")
            };
            let program = cfg
                .sign_program
                .clone()
                .or_else(|| config_string(&config, prog_key))
                .or_else(|| {
                    (format == "openpgp")
                        .then(|| config_string(&config, "gpg.openpgp.program"))
                        .flatten()
                })
                .unwrap_or_else(|| default_prog.into());
            Ok(Signing::Gpg {
                program,
                key: key.unwrap_or_else(|| committer.to_string()),
            })
        }
        "ssh" => {
            let program = cfg
                .sign_program
                .clone()
                .or_else(|| config_string(&config, "gpg.ssh.program"))
                .unwrap_or_else(|| "ssh-keygen".into());
            let key = key.ok_or_else(|| {
                "commit.gpgsign = true with gpg.format = ssh but no user.signingkey (or git.sign_key) is set; refusing to commit unsigned".to_string()
            })?;
            Ok(Signing::Ssh { program, key })
        }
        other => Err(format!(
            "commit.gpgsign = true with unknown gpg.format = {other:?}; refusing to commit unsigned"
        )),
    }
}

/// Signs `payload` (the commit buffer); returns the armored signature.
pub fn sign(signing: &Signing, payload: &str) -> Result<String, String> {
    match signing {
        Signing::Unsigned => Err("internal: sign() called for an unsigned commit".into()),
        Signing::Gpg { program, key } => {
            let out = run(program, &["--status-fd=2", "-bsau", key], payload)?;
            let status = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || !status.contains("[GNUPG:] SIG_CREATED ") {
                return Err(format!(
                    "signing with `{program} -bsau {key}` failed ({}): {}; refusing to commit unsigned (commit.gpgsign = true)",
                    out.status,
                    status.trim()
                ));
            }
            signature_text(program, out.stdout)
        }
        Signing::Ssh { program, key } => {
            let mut literal = None;
            let key_file = if let Some(public) = key.strip_prefix("key::") {
                let file = tempfile_with(public).map_err(|e| {
                    format!("cannot write the ssh public key to a temporary file: {e}")
                })?;
                let path = file.display().to_string();
                literal = Some(file);
                path
            } else {
                expand_home(key)
            };
            let mut args = vec!["-Y", "sign", "-n", "git", "-f", key_file.as_str()];
            if literal.is_some() {
                args.push("-U");
            }
            let out = run(program, &args, payload);
            if let Some(file) = literal {
                let _ = std::fs::remove_file(file);
            }
            let out = out?;
            if !out.status.success() {
                return Err(format!(
                    "signing with `{program} -Y sign -n git -f {key_file}` failed ({}): {}; refusing to commit unsigned (commit.gpgsign = true)",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            signature_text(program, out.stdout)
        }
    }
}

fn signature_text(program: &str, stdout: Vec<u8>) -> Result<String, String> {
    let sig = String::from_utf8(stdout)
        .map_err(|_| format!("{program} printed a signature that is not text"))?;
    if sig.trim().is_empty() {
        return Err(format!(
            "{program} printed no signature; refusing to commit unsigned"
        ));
    }
    Ok(sig)
}

/// Most bytes kept of a signing program's stdout (the signature) and of its stderr.
const MAX_OUTPUT: usize = 256 * 1024;

fn run(program: &str, args: &[&str], payload: &str) -> Result<std::process::Output, String> {
    let mut child = vaultkeeper_core::child::command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run signing program `{program}`: {e}; refusing to commit unsigned (commit.gpgsign = true; set gpg.program / gpg.ssh.program or git.sign_program)"
            )
        })?;
    let stdin = child.stdin.take();
    let payload = payload.as_bytes().to_vec();
    // Fed from a thread so a program that writes before it reads cannot deadlock with us.
    let feeder = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A program that exits early closes its stdin; its exit status tells why.
            let _ = stdin.write_all(&payload);
        }
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        stderr.map(|e| vaultkeeper_core::child::read_capped(e, MAX_OUTPUT))
    });
    let stdout = match child.stdout.take() {
        Some(out) => vaultkeeper_core::child::read_capped(out, MAX_OUTPUT)
            .map_err(|e| format!("signing program `{program}`: {e}"))?,
        None => vaultkeeper_core::child::Capped::default(),
    };
    let stderr = match err_reader.join() {
        Ok(Some(Ok(c))) => c,
        _ => vaultkeeper_core::child::Capped::default(),
    };
    let _ = feeder.join();
    let status = child
        .wait()
        .map_err(|e| format!("signing program `{program}`: {e}"))?;
    if stdout.dropped > 0 {
        return Err(format!(
            "signing program `{program}` printed more than {MAX_OUTPUT} bytes; refusing to commit with a truncated signature"
        ));
    }
    Ok(std::process::Output {
        status,
        stdout: stdout.bytes,
        stderr: stderr.text().into_bytes(),
    })
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest).display().to_string(),
        _ => path.to_string(),
    }
}

fn tempfile_with(content: &str) -> std::io::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "vaultkeeper-signing-{}-{}.pub",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::write(&path, format!("{}\n", content.trim()))?;
    Ok(path)
}
