//! The persisted generation counter of the store.
//!
//! The counter goes up by one on every committed write, whatever the path
//! (file load, SPARQL update, Graph Store Protocol write), so that later parts
//! (label index, result cache) can tell cheaply that the graph changed.
//!
//! Write-ahead rule: the next value is made durable (write to a temporary
//! file, fsync, rename) *before* the write is committed to the store. If the
//! process dies between the two, the counter has moved without a change: a
//! spurious invalidation, which is safe. The opposite order could leave a
//! committed change under an old generation, which is not.

use super::GraphError;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter persisted in one small file.
#[derive(Debug)]
pub struct Generation {
    /// The file, or `None` for a store that lives in memory only.
    path: Option<PathBuf>,
    current: AtomicU64,
}

impl Generation {
    /// Opens the counter stored at `path`, starting at 0 when the file is absent.
    ///
    /// # Errors
    /// [`GraphError::Io`] if the file cannot be read, [`GraphError::Storage`]
    /// if it does not hold a number.
    pub fn open(path: &Path) -> Result<Self, GraphError> {
        let current = match fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                GraphError::Storage(format!(
                    "generation file {} is corrupt ({e}): {text:?}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(GraphError::io(Some(path.to_owned()), e)),
        };
        Ok(Self {
            path: Some(path.to_owned()),
            current: AtomicU64::new(current),
        })
    }

    /// A counter kept in memory only, starting at 0 (for an in-memory store).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            current: AtomicU64::new(0),
        }
    }

    /// The current value (the number of committed writes since the store was created).
    pub fn get(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Durably records `value` on disk without publishing it.
    pub(crate) fn persist(&self, value: u64) -> Result<(), GraphError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        let io = |e| GraphError::io(Some(tmp.clone()), e);
        let mut file = fs::File::create(&tmp).map_err(io)?;
        writeln!(file, "{value}").map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(|e| GraphError::io(Some(path.clone()), e))
    }

    /// Makes `value` the value readers see. Callers hold the store's write lock.
    pub(crate) fn publish(&self, value: u64) {
        self.current.store(value, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generation");
        let g = Generation::open(&path).unwrap();
        assert_eq!(g.get(), 0);
        g.persist(7).unwrap();
        g.publish(7);
        assert_eq!(Generation::open(&path).unwrap().get(), 7);
        fs::write(&path, "seven").unwrap();
        assert!(matches!(
            Generation::open(&path),
            Err(GraphError::Storage(_))
        ));
    }
}
