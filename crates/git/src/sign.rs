//! Signed commits: follow `commit.gpgsign` / `gpg.format` as git does, or refuse; never sign silently less.

use std::io::Write;
use std::process::Stdio;

use git2::Repository;

use super::config::GitConfig;

/// Why a commit cannot be signed as the configuration asks; the commit is then refused,
/// never made unsigned.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The repository's git config cannot be read.
    #[error("cannot read git config: {source}")]
    Config {
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// `commit.gpgsign` is set to something that is not a boolean.
    #[error("commit.gpgsign in git config is not a boolean: {source}")]
    NotABoolean {
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// SSH signing without a key.
    #[error(
        "commit.gpgsign = true with gpg.format = ssh but no user.signingkey (or git.sign_key) is set; refusing to commit unsigned"
    )]
    NoSshKey,
    /// A `gpg.format` git does not know either.
    #[error("commit.gpgsign = true with unknown gpg.format = {0:?}; refusing to commit unsigned")]
    UnknownFormat(String),
    /// [`sign`] called for [`Signing::Unsigned`] (a bug).
    #[error("internal: sign() called for an unsigned commit")]
    Unsigned,
    /// The literal ssh public key could not be written for `ssh-keygen`.
    #[error("cannot write the ssh public key to a temporary file: {source}")]
    KeyFile {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The signing program could not be started.
    #[error(
        "cannot run signing program `{program}`: {source}; refusing to commit unsigned (commit.gpgsign = true; set gpg.program / gpg.ssh.program or git.sign_program)"
    )]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the running signing program failed.
    #[error("signing program `{program}`: {source}")]
    Io {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The program ran and refused (or did not say it signed).
    #[error(
        "signing with `{command}` failed ({status}): {stderr}; refusing to commit unsigned (commit.gpgsign = true)"
    )]
    Failed {
        /// The command line, key included (a key id or file, never a secret).
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// The program printed more output than is kept (256 KiB).
    #[error(
        "signing program `{program}` printed more than {MAX_OUTPUT} bytes; refusing to commit with a truncated signature"
    )]
    TooLong {
        /// The program.
        program: String,
    },
    /// The signature is not UTF-8.
    #[error("{program} printed a signature that is not text")]
    NotText {
        /// The program.
        program: String,
    },
    /// The program succeeded but printed nothing.
    #[error("{program} printed no signature; refusing to commit unsigned")]
    Empty {
        /// The program.
        program: String,
    },
}

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
pub fn signing(repo: &Repository, cfg: &GitConfig, committer: &str) -> Result<Signing, SignError> {
    // A snapshot, so that values do not change between reads.
    let config = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(|source| SignError::Config { source })?;
    let sign = match config.get_bool("commit.gpgsign") {
        Ok(b) => b,
        Err(e) if e.code() == git2::ErrorCode::NotFound => false,
        Err(source) => return Err(SignError::NotABoolean { source }),
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
            let key = key.ok_or(SignError::NoSshKey)?;
            Ok(Signing::Ssh { program, key })
        }
        other => Err(SignError::UnknownFormat(other.to_string())),
    }
}

/// Signs `payload` (the commit buffer); returns the armored signature.
pub fn sign(signing: &Signing, payload: &str) -> Result<String, SignError> {
    match signing {
        Signing::Unsigned => Err(SignError::Unsigned),
        Signing::Gpg { program, key } => {
            let out = run(program, &["--status-fd=2", "-bsau", key], payload)?;
            let status = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || !status.contains("[GNUPG:] SIG_CREATED ") {
                return Err(SignError::Failed {
                    command: format!("{program} -bsau {key}"),
                    status: out.status,
                    stderr: status.trim().to_string(),
                });
            }
            signature_text(program, out.stdout)
        }
        Signing::Ssh { program, key } => {
            let mut literal = None;
            let key_file = if let Some(public) = key.strip_prefix("key::") {
                let file = tempfile_with(public).map_err(|source| SignError::KeyFile { source })?;
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
                return Err(SignError::Failed {
                    command: format!("{program} -Y sign -n git -f {key_file}"),
                    status: out.status,
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            signature_text(program, out.stdout)
        }
    }
}

fn signature_text(program: &str, stdout: Vec<u8>) -> Result<String, SignError> {
    let sig = String::from_utf8(stdout).map_err(|_| SignError::NotText {
        program: program.to_string(),
    })?;
    if sig.trim().is_empty() {
        return Err(SignError::Empty {
            program: program.to_string(),
        });
    }
    Ok(sig)
}

/// Most bytes kept of a signing program's stdout (the signature) and of its stderr.
const MAX_OUTPUT: usize = 256 * 1024;

fn run(program: &str, args: &[&str], payload: &str) -> Result<std::process::Output, SignError> {
    let io = |source| SignError::Io {
        program: program.to_string(),
        source,
    };
    let mut child = vaultkeeper_core::child::command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SignError::Spawn {
            program: program.to_string(),
            source,
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
        Some(out) => vaultkeeper_core::child::read_capped(out, MAX_OUTPUT).map_err(io)?,
        None => vaultkeeper_core::child::Capped::default(),
    };
    let stderr = match err_reader.join() {
        Ok(Some(Ok(c))) => c,
        _ => vaultkeeper_core::child::Capped::default(),
    };
    let _ = feeder.join();
    let status = child.wait().map_err(io)?;
    if stdout.dropped > 0 {
        return Err(SignError::TooLong {
            program: program.to_string(),
        });
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
