//! `consume git`: mirrors events' content into a repository folder, then commits with the
//! git consumer, for a machine that sees the broker but not the vault.

use std::path::{Component, Path, PathBuf};

use crate::GitConsumer;
use vaultkeeper_core::consumer::{Consumer, ConsumerError, Durable};
use vaultkeeper_core::event::{Event, Kind};
use vaultkeeper_core::status::{ConsumerKind, ConsumerReport};

/// Writes each event's effect into `root`, then hands the batch to git.
pub struct MirrorConsumer {
    root: PathBuf,
    git: GitConsumer,
}

impl MirrorConsumer {
    /// A mirror into `root` (a git work tree) committing with `git`.
    pub fn new(root: PathBuf, git: GitConsumer) -> MirrorConsumer {
        MirrorConsumer { root, git }
    }

    /// The file for a vault path, refusing anything that would leave the folder.
    fn target(&self, rel: &str, seq: u64) -> Result<PathBuf, ConsumerError> {
        let p = Path::new(rel);
        if rel.is_empty()
            || p.components().any(|c| !matches!(c, Component::Normal(_)))
            || p.components()
                .next()
                .is_some_and(|c| c.as_os_str() == ".git")
        {
            return Err(ConsumerError::event(
                seq,
                format!("{rel}: not a safe vault path"),
            ));
        }
        Ok(self.root.join(p))
    }

    fn write(&self, e: &Event) -> Result<(), ConsumerError> {
        let path = self.target(&e.file_path, e.seq)?;
        let Some(content) = &e.content else {
            return Err(ConsumerError::event(
                e.seq,
                format!(
                    "{}: the event carries no content (binary, or over watch.max_content_bytes), cannot mirror it",
                    e.file_path
                ),
            ));
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                ConsumerError::event(e.seq, format!("{}: {err}", parent.display()))
            })?;
        }
        std::fs::write(&path, content)
            .map_err(|err| ConsumerError::event(e.seq, format!("{}: {err}", path.display())))
    }

    fn apply(&self, e: &Event) -> Result<(), ConsumerError> {
        match e.event {
            Kind::Created | Kind::Modified => self.write(e),
            Kind::Deleted => {
                let path = self.target(&e.file_path, e.seq)?;
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(ConsumerError::event(
                        e.seq,
                        format!("{}: {err}", path.display()),
                    )),
                }
            }
            Kind::Renamed => {
                if let Some(old) = &e.old_path {
                    let from = self.target(old, e.seq)?;
                    if from.exists() {
                        let _ = std::fs::remove_file(&from);
                    }
                }
                self.write(e)
            }
        }
    }
}

impl Consumer for MirrorConsumer {
    fn name(&self) -> &str {
        ConsumerKind::GitMirror.as_str()
    }

    async fn handle(&mut self, batch: &[Event]) -> Result<Durable, ConsumerError> {
        for e in batch {
            self.apply(e)?;
        }
        self.git.handle(batch).await
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        self.git.deadline()
    }

    async fn on_deadline(&mut self) -> Result<Durable, ConsumerError> {
        self.git.on_deadline().await
    }

    async fn flush(&mut self) -> Result<Durable, ConsumerError> {
        self.git.flush().await
    }

    fn status(&self) -> Option<ConsumerReport> {
        Some(ConsumerReport::GitMirror(self.git.status()))
    }
}
