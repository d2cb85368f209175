//! The bearer token TCP clients must send: made once into the state folder (mode 0600),
//! read back on each start and by `vaultkeeper token`.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::ServeError;

/// The token file in the state folder `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("api.token")
}

/// Reads the token at `file`, making a new random one (0600) if there is none.
pub fn load_or_create(file: &Path) -> Result<String, ServeError> {
    let err = |source| ServeError::Token {
        path: file.to_path_buf(),
        source,
    };
    if let Some(token) = read(file).map_err(err)? {
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(err)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(err)?;
    f.write_all(token.as_bytes()).map_err(err)?;
    Ok(token)
}

/// The token at `file`, if one was made.
pub fn read(file: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Compares in time independent of where the strings differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = path(dir.path());
        let a = load_or_create(&file).expect("made");
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&file).expect("read"), a);
        assert!(same(&a, &a));
        assert!(!same(&a, &a[1..]));
    }
}
