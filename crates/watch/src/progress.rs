//! The spinner of a first scan on a terminal: nothing else draws on stderr.

use std::io::IsTerminal;
use std::time::Duration;

/// A progress spinner, drawn only when asked for and stderr is a terminal.
pub(crate) struct ScanProgress(Option<indicatif::ProgressBar>);

impl ScanProgress {
    /// A spinner when `wanted` (a first scan) and stderr is a terminal; else nothing.
    pub(crate) fn start(wanted: bool) -> ScanProgress {
        ScanProgress((wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} files")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message("scanning the vault");
            bar
        }))
    }

    /// One more file walked.
    pub(crate) fn file(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// The walk is done; `n` changes are being journaled.
    pub(crate) fn journaling(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("journaling {n} files"));
        }
    }

    /// Clears the spinner.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}
