//! Child processes of the daemon (rule commands, signing programs, `git push`): the one place
//! that builds their environment without the daemon's secrets, and the capped output reader.
//!
//! A child inherits the daemon's environment minus anything that looks like a credential:
//! the broker URL variables, `VAULTKEEPER_*` variables that hold secrets, any name containing
//! `PASSWORD`, `PASSWD`, `TOKEN`, `SECRET` or `CREDENTIAL` (any case), and any value that is a
//! URL with a password in it. A rule can still hand one on explicitly (`pass_env`, `env`).

use std::ffi::{OsStr, OsString};
use std::io::Read;

/// Variables never inherited, whatever their value.
const DENIED: &[&str] = &[
    "VAULTKEEPER_AMQP_URL",
    "RABBITMQ_URL",
    "AMQP_URL",
    "CLOUDAMQP_URL",
];

/// Parts of a name that mark a credential (compared upper-cased).
const SECRET_WORDS: &[&str] = &["PASSWORD", "PASSWD", "TOKEN", "SECRET", "CREDENTIAL"];

/// True when the variable `name=value` must not reach a child process.
pub fn is_secret(name: &OsStr, value: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    if DENIED.contains(&upper.as_str())
        || upper.ends_with("_AMQP_URL")
        || SECRET_WORDS.iter().any(|w| upper.contains(w))
    {
        return true;
    }
    // `DATABASE_URL=postgres://u:pw@host`, `https_proxy=http://u:pw@proxy`: whatever the name.
    let value = value.to_string_lossy();
    value.contains("://")
        && value.contains('@')
        && url::Url::parse(value.trim()).is_ok_and(|u| u.password().is_some())
}

/// The daemon's environment without its secrets (see the module docs).
pub fn scrubbed_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, v)| !is_secret(k, v))
        .collect()
}

/// A [`std::process::Command`] for `program` whose environment is [`scrubbed_env`]. Every
/// child the daemon starts is built here; add variables on purpose with `.env()`.
pub fn command(program: impl AsRef<OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear().envs(scrubbed_env());
    cmd
}

/// Output kept by [`read_capped`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capped {
    /// The first bytes, at most the cap.
    pub bytes: Vec<u8>,
    /// How many bytes were read past the cap and dropped.
    pub dropped: u64,
}

impl Capped {
    /// The kept text (lossy), with a note when some was dropped.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!(" […{} more bytes not kept]", self.dropped));
        }
        s
    }
}

/// Reads `reader` to its end, keeping only the first `cap` bytes. The rest is read and
/// dropped rather than left in the pipe, so a chatty child never blocks on a full pipe and
/// never grows our memory.
pub fn read_capped(mut reader: impl Read, cap: usize) -> std::io::Result<Capped> {
    let mut out = Capped::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = cap.saturating_sub(out.bytes.len()).min(n);
        out.bytes.extend_from_slice(&buf[..room]);
        out.dropped += (n - room) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(k: &str, v: &str) -> bool {
        is_secret(OsStr::new(k), OsStr::new(v))
    }

    #[test]
    fn credentials_are_recognised_by_name_and_value() {
        assert!(secret("VAULTKEEPER_AMQP_URL", "amqp://h/"));
        assert!(secret("RABBITMQ_URL", "x"));
        assert!(secret("AMQP_URL", "x"));
        assert!(secret("MY_AMQP_URL", "x"));
        assert!(secret("db_password", "x"));
        assert!(secret("GITHUB_TOKEN", "x"));
        assert!(secret("ClientSecret", "x"));
        assert!(secret("AWS_CREDENTIALS", "x"));
        assert!(secret("DATABASE_URL", "postgres://u:pw@db/x"));
        assert!(!secret("DATABASE_URL", "postgres://u@db/x"));
        assert!(!secret("PATH", "/usr/bin:/bin"));
        assert!(!secret("HOME", "/home/u"));
        assert!(!secret("VAULTKEEPER_VAULT", "/v"));
        assert!(!secret("SSH_AUTH_SOCK", "/run/agent"));
    }

    #[test]
    fn reads_everything_but_keeps_the_cap() {
        let data = vec![b'x'; 100_000];
        let c = read_capped(&data[..], 1000).expect("read");
        assert_eq!(c.bytes.len(), 1000);
        assert_eq!(c.dropped, 99_000);
        assert!(c.text().ends_with("[…99000 more bytes not kept]"));
        let small = read_capped(&b"hi"[..], 1000).expect("read");
        assert_eq!((small.bytes.as_slice(), small.dropped), (&b"hi"[..], 0));
    }
}
