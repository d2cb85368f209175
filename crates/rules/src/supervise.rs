//! The rule supervisor: a small process (the vaultkeeper binary itself, started with
//! [`ARG`]) between the daemon and a rule's command. It is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so everything the command starts stays among its
//! descendants even after `setsid` or a double fork; on SIGTERM (the rule's timeout, the
//! daemon stopping) or when the daemon dies, it kills all of them.
//!
//! Why a separate process rather than the daemon as subreaper: orphans would then become
//! the daemon's children, which its async runtime does not reap, and the daemon could not
//! tell which rule run left them. The supervisor has exactly one run's tree and reaps it all.
//! Why not a cgroup: it needs a delegated cgroup v2 subtree, which a user service or a
//! container often does not have; the subreaper works for any unprivileged process.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
#[cfg(target_os = "linux")]
use {
    rustix::process::{Pid, Signal, WaitOptions},
    std::collections::{HashMap, HashSet},
    std::sync::Arc,
    std::sync::atomic::{AtomicBool, Ordering},
    std::time::{Duration, Instant},
};

/// The first argument that turns the binary into the supervisor: `vaultkeeper ARG PROGRAM ARGS…`.
pub const ARG: &str = "__vaultkeeper-rule-supervisor";

/// Exit code when the command cannot be started (as a shell says "not found").
const CANNOT_START: u8 = 127;

#[cfg(target_os = "linux")]
/// Longest time spent killing a tree (each round SIGKILLs what is left).
const KILL_FOR: Duration = Duration::from_secs(5);

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Makes rule runs go through the supervisor, started from `exe` (the binary's own path;
/// `/proc/self/exe` keeps working when the file is replaced by an upgrade). Without it
/// (the library in unit tests) a rule's command is started directly and only its process
/// group is killed at the timeout.
pub fn enable(exe: PathBuf) {
    let _ = PROGRAM.set(exe);
}

/// The supervisor's program, when enabled.
pub(crate) fn program() -> Option<&'static PathBuf> {
    PROGRAM.get()
}

/// When the process was started as the supervisor, runs it and returns its exit code.
pub fn run_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(ARG)) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(supervise(&rest))
}

#[cfg(target_os = "linux")]
fn supervise(argv: &[OsString]) -> ExitCode {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("vaultkeeper rule supervisor: no command given");
        return ExitCode::from(CANNOT_START);
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .and_then(|_| {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
                .map_err(Into::into)
        })
    {
        eprintln!("vaultkeeper rule supervisor: cannot set up: {e}");
        return ExitCode::from(CANNOT_START);
    }
    // If the daemon dies (kill -9) we are re-parented: the run ends then rather than living
    // on unseen. Polled, since PR_SET_PDEATHSIG follows the spawning *thread*, and a runtime
    // thread may end while the daemon lives on.
    let parent = rustix::process::getppid();
    let child = match std::process::Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "cannot start `{}`: {e}",
                std::path::Path::new(program).display()
            );
            return ExitCode::from(CANNOT_START);
        }
    };
    let main = Pid::from_raw(child.id() as i32);
    // The child is reaped below with waitpid(-1), together with every orphan.
    drop(child);
    loop {
        if stop.load(Ordering::Relaxed) || rustix::process::getppid() != parent {
            kill_tree();
            return ExitCode::from(128 + 15);
        }
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if Some(pid) == main => {
                    return mirror(status);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(target_os = "linux")]
/// Elsewhere there is no subreaper: the supervisor is never enabled.
#[cfg(not(target_os = "linux"))]
fn supervise(_argv: &[OsString]) -> ExitCode {
    eprintln!("vaultkeeper rule supervisor: only available on Linux");
    ExitCode::from(CANNOT_START)
}

/// Ends the supervisor as the command ended: same exit code, or killed by the same signal.
fn mirror(status: rustix::process::WaitStatus) -> ExitCode {
    if let Some(code) = status.exit_status() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if let Some(sig) = status.terminating_signal() {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        return ExitCode::from(u8::try_from(128 + sig).unwrap_or(1));
    }
    ExitCode::from(1)
}

#[cfg(target_os = "linux")]
/// SIGKILLs every descendant, round after round (a process may fork while we look), and
/// reaps them, until none is left or [`KILL_FOR`] has passed.
fn kill_tree() {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let deadline = Instant::now() + KILL_FOR;
    loop {
        let tree = descendants(me);
        for pid in &tree {
            if let Some(p) = Pid::from_raw(*pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
        if tree.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(target_os = "linux")]
/// Live (non-zombie) descendants of `root`, from `/proc/*/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut zombies = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let Some(ppid) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if state == "Z" {
            zombies.insert(pid);
        }
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            stack.push(c);
            if !zombies.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}
