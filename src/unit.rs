//! Which systemd unit, if any, runs a daemon: read from its cgroup, so that `stop` and
//! `restart` go through systemd instead of around it (a daemon restarted behind systemd's back
//! would leave the unit failed, or two daemons fighting for the lock).

/// A systemd service running a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name, e.g. `vaultkeeper.service`.
    pub name: String,
    /// Run by the user's service manager (`systemctl --user`), not the system's.
    pub user: bool,
}

impl Unit {
    /// `systemctl [--user] VERB UNIT`, run to its end.
    pub fn systemctl(&self, verb: &str) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let mut cmd = std::process::Command::new("systemctl");
        if self.user {
            cmd.arg("--user");
        }
        let status = cmd
            .arg(verb)
            .arg(&self.name)
            .status()
            .with_context(|| format!("cannot run systemctl {verb} {}", self.name))?;
        anyhow::ensure!(
            status.success(),
            "systemctl {verb} {} failed ({status})",
            self.name
        );
        Ok(())
    }
}

/// The unit of process `pid`, from `/proc/PID/cgroup`; `None` when it was not started by
/// systemd (a terminal, a desktop session's scope) or the file cannot be read.
pub fn of_pid(pid: u32) -> Option<Unit> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    from_cgroup(&cgroup)
}

/// The service a process belongs to, from the text of its `/proc/PID/cgroup`: the last
/// component of its unified (or `name=systemd`) hierarchy path, when that is a service other
/// than the user manager itself.
fn from_cgroup(text: &str) -> Option<Unit> {
    let path = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        ((id == "0" && controllers.is_empty()) || controllers == "name=systemd").then_some(path)
    })?;
    let last = path.rsplit('/').next()?;
    if !last.ends_with(".service") || last.starts_with("user@") {
        return None;
    }
    Some(Unit {
        name: last.to_string(),
        user: path.split('/').any(|c| c.starts_with("user@")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_service_a_system_service_and_a_terminal() {
        let user =
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vaultkeeper.service\n";
        assert_eq!(
            from_cgroup(user),
            Some(Unit {
                name: "vaultkeeper.service".into(),
                user: true
            })
        );
        let instance = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vaultkeeper@home-me-notes.service\n";
        assert_eq!(
            from_cgroup(instance).map(|u| u.name),
            Some("vaultkeeper@home-me-notes.service".into())
        );
        let system = "12:pids:/system.slice/vaultkeeper.service\n1:name=systemd:/system.slice/vaultkeeper.service\n0::/system.slice/vaultkeeper.service\n";
        assert_eq!(
            from_cgroup(system),
            Some(Unit {
                name: "vaultkeeper.service".into(),
                user: false
            })
        );
        // Started from a terminal in a desktop session, or in a login session's scope.
        let terminal = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope\n";
        assert_eq!(from_cgroup(terminal), None);
        assert_eq!(
            from_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n"),
            None
        );
        // The user manager's own cgroup is not a unit of ours; nor is a machine without systemd.
        assert_eq!(
            from_cgroup("0::/user.slice/user-1000.slice/user@1000.service\n"),
            None
        );
        assert_eq!(from_cgroup("0::/\n"), None);
        assert_eq!(from_cgroup(""), None);
    }
}
