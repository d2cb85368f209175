//! Checkpointing an SQLite database's WAL on a thread and connection of its own, so that a
//! writer never waits for one. The journal's appender uses it, and so does the cache's writer.
//!
//! SQLite checkpoints in the committing connection by default: the commit that crosses the
//! mark copies the whole WAL into the database and fsyncs both, while the writer waits (a
//! fifth of the time of 100,000 appends, in the profile of the `journal` benchmark, and an
//! eighth of the cache catching up after a burst of edits). Here the writer only counts what
//! it wrote and nudges this thread, which runs a PASSIVE checkpoint: it never blocks the
//! writer, and the WAL restarts from its start once a checkpoint caught up.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// The checkpointing thread, nudged by the writer; joined on drop.
pub struct Checkpointer {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes written since the last nudge (the writer's estimate).
    written: u64,
    /// Nudge once this many bytes were written.
    every: u64,
    /// What the database is, for logs ("journal", "cache").
    what: &'static str,
}

/// When checkpoints run (see [`Checkpointer::start`]).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Nudge once the writer reported this many bytes written ([`Checkpointer::wrote`]); a
    /// writer that calls [`Checkpointer::nudge`] after each commit instead leaves it at 0.
    pub every_bytes: u64,
    /// Least time between two checkpoints: nudges meanwhile are served by the next one.
    pub gap: Duration,
}

impl Checkpointer {
    /// Takes the checkpoints of `writer`'s database (at `path`) over: opens a second
    /// connection to it, starts the thread, then turns the writer's own checkpoints off. On
    /// an error the writer keeps checkpointing as SQLite does by default.
    pub fn start(
        writer: &Connection,
        path: &Path,
        pace: Pace,
        what: &'static str,
    ) -> std::io::Result<Checkpointer> {
        let conn = Connection::open(path)
            .and_then(|c| c.busy_timeout(Duration::from_secs(10)).map(|()| c))
            .map_err(std::io::Error::other)?;
        // One nudge pending is enough: the checkpoint it runs covers every later frame too.
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        let shown = path.display().to_string();
        let gap = pace.gap;
        let thread = std::thread::Builder::new()
            .name("vk-checkpoint".into())
            .spawn(move || run(&conn, &nudged, &shown, gap, what))?;
        let started = Checkpointer {
            nudge: Some(nudge),
            thread: Some(thread),
            written: 0,
            every: pace.every_bytes,
            what,
        };
        // Dropping `started` on an error ends its thread.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(std::io::Error::other)?;
        Ok(started)
    }

    /// Counts `bytes` written by a commit; nudges the thread once enough were.
    pub fn wrote(&mut self, bytes: u64) {
        self.written = self.written.saturating_add(bytes);
        if self.written >= self.every {
            self.nudge();
        }
    }

    /// Asks for a checkpoint soon (within the pace's gap).
    pub fn nudge(&mut self) {
        self.written = 0;
        if let Some(nudge) = &self.nudge {
            match nudge.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!(
                        what = self.what,
                        "the checkpoint thread is gone; the WAL grows until restart"
                    );
                }
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; a checkpoint under way finishes first.
        drop(self.nudge.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, nudged: &Receiver<()>, path: &str, gap: Duration, what: &str) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending = false;
    loop {
        if !pending && nudged.recv().is_err() {
            return;
        }
        pending = false;
        let started = std::time::Instant::now();
        checkpoint(conn, path, what);
        // Wait out the gap; a nudge meanwhile is served by a checkpoint right after it.
        while let Some(rest) = gap.checked_sub(started.elapsed()).filter(|r| !r.is_zero()) {
            match nudged.recv_timeout(rest) {
                Ok(()) => pending = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    // The writer is gone: what it wrote last is checkpointed before the end.
                    if pending {
                        checkpoint(conn, path, what);
                    }
                    return;
                }
            }
        }
    }
}

fn checkpoint(conn: &Connection, path: &str, what: &str) {
    let started = std::time::Instant::now();
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match done {
        Ok((frames, copied)) => tracing::debug!(
            what,
            path,
            frames,
            copied,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint"
        ),
        // Busy or failed: the WAL only grows until the next nudge's checkpoint.
        Err(e) => tracing::debug!(what, path, error = %e, "checkpoint did not run"),
    }
}
