//! Who holds an `index.lock` vaultkeeper took: the lock says so in its contents, so that a
//! lock left by a vaultkeeper that was killed mid-commit (OOM, power loss, `kill -9`) is
//! recognised and removed, while a foreign git's lock is never touched.
//!
//! git writes the new index into `index.lock` and renames it over the index, so its lock
//! says nothing about its owner. Ours holds a marker instead (host, boot, pid and process
//! start time) while the new index is written beside it; see `index_file`. An owner is
//! dead when it is on this host and its boot is over, its pid is gone, or the pid now
//! belongs to a process that started at another time. Anything else (another host sharing
//! the folder, no `/proc`, a marker that does not parse) counts as alive.

use std::io::Read;
use std::path::Path;

/// The first line of every lock vaultkeeper takes.
const MAGIC: &str = "vaultkeeper index.lock";

/// One process, as far as its liveness can be told apart from a later one with its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    host: String,
    boot: String,
    pid: u32,
    /// Field 22 of `/proc/PID/stat`: clock ticks since boot when the process started.
    start: u64,
}

impl Owner {
    /// This process, or `None` where `/proc` cannot tell (then locks are never taken back).
    /// Read once: it cannot change while the process runs.
    fn current() -> Option<&'static Owner> {
        static CURRENT: std::sync::OnceLock<Option<Owner>> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                Some(Owner {
                    host: vaultkeeper_vaultfs::host_name(),
                    boot: boot_id()?,
                    pid,
                    start: start_time(pid)?,
                })
            })
            .as_ref()
    }

    fn encode(&self) -> String {
        format!(
            "{MAGIC}\nhost={}\nboot={}\npid={}\nstart={}\n",
            self.host, self.boot, self.pid, self.start
        )
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |key: &str| {
            lines
                .next()?
                .strip_prefix(key)?
                .strip_prefix('=')
                .map(str::to_string)
        };
        Some(Owner {
            host: field("host")?,
            boot: field("boot")?,
            pid: field("pid")?.parse().ok()?,
            start: field("start")?.parse().ok()?,
        })
    }

    /// Certainly gone: same host, and another boot, or no such process, or another process.
    fn is_dead(&self, now: &Owner) -> bool {
        if self.host != now.host {
            return false;
        }
        if self.boot != now.boot {
            return true;
        }
        start_time(self.pid) != Some(self.start)
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string())
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from the last `)`.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// What to write into a lock this process takes (empty where owners cannot be told).
pub(crate) fn marker() -> Vec<u8> {
    Owner::current()
        .map(|o| o.encode().into_bytes())
        .unwrap_or_default()
}

/// Removes `lock` when it is one vaultkeeper took and its owner is dead; true if it did.
pub(crate) fn take_back_orphan(lock: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(lock) else {
        return false;
    };
    let mut head = Vec::with_capacity(256);
    if file.by_ref().take(256).read_to_end(&mut head).is_err() {
        return false;
    }
    let Some(owner) = std::str::from_utf8(&head).ok().and_then(Owner::parse) else {
        return false;
    };
    let Some(now) = Owner::current() else {
        return false;
    };
    if !owner.is_dead(now) {
        return false;
    }
    // The file read must still be the one at the path (not a lock taken meanwhile).
    let same = match (file.metadata(), std::fs::symlink_metadata(lock)) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.dev() == b.dev() && a.ino() == b.ino()
        }
        _ => false,
    };
    if !same || std::fs::remove_file(lock).is_err() {
        return false;
    }
    tracing::warn!(
        lock = %lock.display(),
        pid = owner.pid,
        "git: removed an index.lock left by a vaultkeeper that died while committing (pid {})",
        owner.pid
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_and_this_process_is_alive() {
        let me = Owner::current().expect("/proc on Linux");
        let back = Owner::parse(&me.encode()).expect("parses");
        assert_eq!(&back, me);
        assert!(!back.is_dead(me));
    }

    #[test]
    fn other_boots_pids_and_start_times_are_dead_other_hosts_are_not() {
        let me = Owner::current().expect("/proc on Linux");
        let other_boot = Owner {
            boot: "another".into(),
            ..me.clone()
        };
        assert!(other_boot.is_dead(me));
        let reused_pid = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(reused_pid.is_dead(me));
        let elsewhere = Owner {
            host: "another-host".into(),
            boot: "another".into(),
            ..me.clone()
        };
        assert!(!elsewhere.is_dead(me), "a shared folder's other host");
    }

    #[test]
    fn foreign_and_garbled_locks_are_left_alone() {
        let t = tempfile::tempdir().expect("tempdir");
        let lock = t.path().join("index.lock");
        for contents in [
            &b""[..],
            b"DIRC\0\0\0\x02",
            b"vaultkeeper index.lock\nhost=x\n",
        ] {
            std::fs::write(&lock, contents).expect("write");
            assert!(!take_back_orphan(&lock));
            assert!(lock.exists());
        }
    }
}
