//! Running one rule's command for one event: environment, stdin, output to the log, timeout.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tracing::{info, warn};

use super::config::Rule;
use vaultkeeper_core::event::Event;

/// Longest line logged from a command's output; longer lines are split.
const MAX_LINE: usize = 8 * 1024;

/// Most output bytes (stdout and stderr together) logged per run; the rest is read and
/// dropped, so an endless printer can neither fill the log nor block on its pipe.
pub const MAX_LOGGED: usize = 64 * 1024;

/// How long output is still read after the command exited (a background child may
/// keep the pipe open; we stop logging it rather than wait for it).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Why a run failed; the consumer turns each into a failure of the event.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started (not found, not executable, bad `cwd`).
    #[error("cannot start `{program}` in {cwd}: {source}")]
    Spawn {
        /// `run[0]`.
        program: String,
        /// The working directory.
        cwd: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ended unsuccessfully.
    #[error("`{program}` {status}")]
    Exit {
        /// `run[0]`.
        program: String,
        /// `exited with code 3` or `killed by signal 9`.
        status: String,
    },
    /// The command ran past the rule's timeout; its process group was killed.
    #[error("`{program}` timed out after {after:?}; its process group was killed")]
    Timeout {
        /// `run[0]`.
        program: String,
        /// The rule's timeout.
        after: Duration,
    },
    /// Waiting for the command failed.
    #[error("waiting for `{program}` failed: {source}")]
    Wait {
        /// `run[0]`.
        program: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Ends a run's processes when dropped, unless disarmed: so a timeout, or the daemon
/// dropping the run on shutdown, leaves nothing behind.
///
/// Supervised (see [`super::supervise`]), the supervisor gets SIGTERM and kills the whole
/// tree, including processes that left the group. Otherwise the command was started with
/// `process_group(0)`, so its pid is its group id, and the group gets SIGKILL.
/// `rustix::process::kill_process_group` is `killpg(2)` behind a safe API, which keeps
/// the crate free of `unsafe`; tokio's `Child::kill` would only reach the direct child.
struct GroupGuard {
    pgid: Option<rustix::process::Pid>,
    supervised: bool,
}

impl GroupGuard {
    fn kill(&mut self) {
        match self.pgid {
            Some(pid) if self.supervised => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            _ => self.kill_group(),
        }
    }

    /// SIGKILL to the whole group, whatever the mode: the last resort.
    fn kill_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (the group is already gone) is the normal case after an exit.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long the supervisor may take to end a run's tree before its group is killed.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(10);

/// The environment a command sees for `event` (besides the daemon's own).
pub fn environment(rule: &Rule, event: &Event, vault: &Path) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "VAULTKEEPER_EVENT",
            format!("file.{}", event.event.as_str()),
        ),
        ("VAULTKEEPER_PATH", event.file_path.clone()),
        (
            "VAULTKEEPER_ABS_PATH",
            vault.join(&event.file_path).to_string_lossy().into_owned(),
        ),
        ("VAULTKEEPER_SEQ", event.seq.to_string()),
        ("VAULTKEEPER_EVENT_ID", event.id.clone()),
        // The vault folder, as the CLI reads it, so a rule can call `vaultkeeper` itself.
        ("VAULTKEEPER_VAULT", vault.to_string_lossy().into_owned()),
        ("VAULTKEEPER_VAULT_NAME", event.vault.clone()),
        ("VAULTKEEPER_RULE", rule.name.clone()),
    ];
    if let Some(old) = &event.old_path {
        env.push(("VAULTKEEPER_OLD_PATH", old.clone()));
    }
    env
}

/// Runs `rule`'s command for `event`: argv as written (no shell), the event in the
/// environment and as JSON on stdin, output lines logged, killed with its process
/// group at the rule's timeout. Ok only for exit code 0.
pub async fn run(rule: &Rule, event: &Event, vault: &Path) -> Result<(), ExecError> {
    let program = rule.run[0].clone();
    let supervisor = super::supervise::program();
    let mut cmd = match supervisor {
        Some(exe) => {
            let mut c = vaultkeeper_core::child::command(exe);
            c.arg(super::supervise::ARG).arg(&program);
            c
        }
        None => vaultkeeper_core::child::command(&program),
    };
    cmd.args(&rule.run[1..])
        .current_dir(&rule.cwd)
        // Not inherited from the daemon's environment when the event has no old path.
        .env_remove("VAULTKEEPER_OLD_PATH");
    // Handed on by name: the user asked for these despite their look.
    for name in &rule.pass_env {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(&rule.env).envs(environment(rule, event, vault));
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // A supervisor must live to end its tree: the guard asks it to, on drop.
        .kill_on_drop(supervisor.is_none());
    let mut child = cmd.spawn().map_err(|source| ExecError::Spawn {
        program: program.clone(),
        cwd: rule.cwd.display().to_string(),
        source,
    })?;
    let mut guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw),
        supervised: supervisor.is_some(),
    };

    // Written from a task so a command that prints a lot before reading stdin cannot
    // deadlock against us; one that never reads it just gets EPIPE here, ignored.
    let body = serde_json::to_vec(event).unwrap_or_default();
    let writer = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        })
    });
    let mut readers = Vec::new();
    let budget = Arc::new(AtomicUsize::new(MAX_LOGGED));
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(log_lines(
            out,
            false,
            rule.name.clone(),
            event.file_path.clone(),
            Arc::clone(&budget),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(log_lines(
            err,
            true,
            rule.name.clone(),
            event.file_path.clone(),
            Arc::clone(&budget),
        )));
    }

    let outcome = match tokio::time::timeout(rule.timeout, child.wait()).await {
        Ok(Ok(status)) => {
            // Background processes the command left on purpose are its business.
            guard.disarm();
            if status.success() {
                Ok(())
            } else {
                Err(ExecError::Exit {
                    program,
                    status: describe(status),
                })
            }
        }
        Ok(Err(source)) => Err(ExecError::Wait { program, source }),
        Err(_) => {
            guard.kill();
            if supervisor.is_some() {
                // It exits once the tree is dead; past the grace, fall back to the group.
                let _ = tokio::time::timeout(SUPERVISOR_GRACE, child.wait()).await;
            }
            guard.kill_group();
            // Also the child itself, in case its group could not be signalled.
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(ExecError::Timeout {
                program,
                after: rule.timeout,
            })
        }
    };
    if let Some(w) = writer {
        w.abort();
    }
    let deadline = tokio::time::Instant::now() + OUTPUT_GRACE;
    for mut r in readers {
        if tokio::time::timeout_at(deadline, &mut r).await.is_err() {
            r.abort();
        }
    }
    outcome
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// Logs each output line with the rule and path; stderr at warn level. Lines are taken
/// from `budget`, shared by the run's two streams; once it is spent the rest is drained
/// unlogged and its size reported in one line at the end.
async fn log_lines(
    stream: impl AsyncRead + Unpin,
    stderr: bool,
    rule: String,
    path: String,
    budget: Arc<AtomicUsize>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut dropped: u64 = 0;
    loop {
        line.clear();
        // Bounded so one endless line cannot grow memory without limit.
        let mut limited = (&mut reader).take(MAX_LINE as u64);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let taken = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(line.len())
        });
        if taken.is_err() {
            budget.store(0, Ordering::Relaxed);
            dropped += line.len() as u64;
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if stderr {
            warn!(rule = %rule, path = %path, stream = "stderr", "{text}");
        } else {
            info!(rule = %rule, path = %path, stream = "stdout", "{text}");
        }
    }
    if dropped > 0 {
        let stream = if stderr { "stderr" } else { "stdout" };
        warn!(rule = %rule, path = %path, stream,
            "{dropped} more bytes of output not logged (at most {MAX_LOGGED} bytes are logged per run)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleConfig, RulesSection};
    use vaultkeeper_core::event::{Kind, Origin};

    fn rule(run: &[&str], timeout: Duration, vault: &Path) -> Rule {
        let c = RuleConfig {
            name: Some("t".into()),
            run: run.iter().map(|s| s.to_string()).collect(),
            timeout,
            ..RuleConfig::default()
        };
        let set =
            crate::config::RuleSet::compile(&[c], &RulesSection::default(), vault).expect("valid");
        set.rules[0].clone()
    }

    fn event(path: &str) -> Event {
        let mut e = Event::builder(Kind::Renamed, path)
            .old_path(Some("old one.md".into()))
            .read(1, None, Some("body ✓".into()))
            .source("v", "h")
            .origin(Origin::Watch)
            .build();
        e.seq = 7;
        e
    }

    #[tokio::test]
    async fn environment_and_stdin_reach_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let script = format!(
            "printf '%s|%s|%s|%s|%s|%s\\n' \"$VAULTKEEPER_EVENT\" \"$VAULTKEEPER_PATH\" \
             \"$VAULTKEEPER_OLD_PATH\" \"$VAULTKEEPER_SEQ\" \"$VAULTKEEPER_RULE\" \"$PWD\" > '{o}'; cat >> '{o}'",
            o = out.display()
        );
        let r = rule(&["sh", "-c", &script], Duration::from_secs(10), dir.path());
        let e = event("a b/it's \"q\".md");
        run(&r, &e, dir.path()).await.expect("runs");
        let text = std::fs::read_to_string(&out).expect("out");
        let (first, json) = text.split_once('\n').expect("two parts");
        assert_eq!(
            first,
            format!(
                "file.renamed|a b/it's \"q\".md|old one.md|7|t|{}",
                dir.path().display()
            )
        );
        let back: Event = serde_json::from_str(json).expect("json on stdin");
        assert_eq!(back, e);
    }

    #[tokio::test]
    async fn failures_and_timeouts_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = rule(&["sh", "-c", "exit 3"], Duration::from_secs(10), dir.path());
        let err = run(&r, &event("x.md"), dir.path())
            .await
            .expect_err("fails");
        assert!(err.to_string().contains("exited with code 3"), "{err}");

        let r = rule(&["/no/such/program"], Duration::from_secs(10), dir.path());
        let err = run(&r, &event("x.md"), dir.path())
            .await
            .expect_err("missing");
        assert!(matches!(err, ExecError::Spawn { .. }), "{err}");

        // The grandchild (`sleep` under `sh`) dies with the group: its pipe closes and
        // the marker it would write never appears.
        let marker = dir.path().join("late");
        let script = format!("sleep 600; touch '{}'", marker.display());
        let r = rule(
            &["sh", "-c", &script],
            Duration::from_millis(200),
            dir.path(),
        );
        let started = std::time::Instant::now();
        let err = run(&r, &event("x.md"), dir.path())
            .await
            .expect_err("hangs");
        assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!marker.exists());
    }
}
