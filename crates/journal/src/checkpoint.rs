//! Checkpointing the journal's WAL on a thread and connection of its own, so that an append
//! never waits for one.
//!
//! SQLite checkpoints in the committing connection by default: the append that crosses the
//! mark copies the whole WAL into the database and fsyncs both, while the watcher waits (a
//! fifth of the time of 100,000 appends, in the profile of the `journal` benchmark). Here the
//! appender only counts what it wrote and nudges this thread, which runs a PASSIVE checkpoint:
//! it never blocks the writer, and the WAL restarts from its start once a checkpoint caught up.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// The checkpointing thread, nudged by the appender; joined on drop.
pub(crate) struct Checkpointer {
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes appended since the last nudge (an estimate: bodies, paths, a row's overhead).
    written: u64,
    /// Nudge once this many bytes were appended.
    every: u64,
}

impl Checkpointer {
    /// Opens a second connection to `path` (here, so that a failure is the caller's to
    /// see) and starts the thread.
    pub(crate) fn start(path: &Path, every: u64) -> std::io::Result<Checkpointer> {
        let conn = Connection::open(path)
            .and_then(|c| c.busy_timeout(Duration::from_secs(10)).map(|()| c))
            .map_err(std::io::Error::other)?;
        // One nudge pending is enough: the checkpoint it runs covers every later frame too.
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("vk-checkpoint".into())
            .spawn(move || run(&conn, &nudged, &shown))?;
        Ok(Checkpointer {
            nudge: Some(nudge),
            thread: Some(thread),
            written: 0,
            every: every.max(1),
        })
    }

    /// Counts `bytes` appended; nudges the thread once enough were.
    pub(crate) fn appended(&mut self, bytes: u64) {
        self.written += bytes;
        if self.written < self.every {
            return;
        }
        self.written = 0;
        if let Some(nudge) = &self.nudge {
            match nudge.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!(
                        "journal: the checkpoint thread is gone; the WAL grows until restart"
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

fn run(conn: &Connection, nudged: &Receiver<()>, path: &str) {
    while nudged.recv().is_ok() {
        let started = std::time::Instant::now();
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match done {
            Ok((frames, copied)) => tracing::debug!(
                path,
                frames,
                copied,
                ms = started.elapsed().as_millis() as u64,
                "journal checkpoint"
            ),
            // Busy or failed: the WAL only grows until the next nudge's checkpoint.
            Err(e) => tracing::debug!(path, error = %e, "journal checkpoint did not run"),
        }
    }
}
