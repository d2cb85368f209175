//! Registration: a consumer's first place in the journal, decided against the head at start.

use vaultkeeper_core::consumer::StartAt;

/// Gives `name` its place in the journal if it has none yet, and returns its cursor.
///
/// `start_head` is the journal's head when the daemon started, read before the watcher
/// could append anything. The daemon registers every enabled consumer this way before
/// its runner starts; [`crate::run`] does it too for a runner started on its own. A cursor once
/// registered is kept while the consumer is off (only [`Journal::forget_cursor`] removes
/// it), so a consumer that comes back resumes where it stopped.
///
/// [`Journal::forget_cursor`]: vaultkeeper_journal::Journal::forget_cursor
pub fn register(
    journal: &vaultkeeper_journal::Journal,
    name: &str,
    start: StartAt,
    start_head: u64,
) -> Result<Registered, vaultkeeper_journal::JournalError> {
    if let Some(c) = journal.cursor(name)? {
        return Ok(Registered {
            cursor: c,
            new: false,
        });
    }
    let cursor = match start {
        StartAt::Head => start_head,
        // Events appended since the start are above `start_head`, so the first held event
        // is at most one past it.
        StartAt::Beginning => journal
            .first_seq()?
            .map_or(start_head, |s| (s - 1).min(start_head)),
    };
    journal.set_cursor(name, cursor)?;
    Ok(Registered { cursor, new: true })
}

/// The outcome of [`register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The consumer's cursor.
    pub cursor: u64,
    /// True when the consumer had no cursor before.
    pub new: bool,
}
