//! The sled store under the data directory (`--data-dir`, default `.depfw`).
//!
//! One sled database per data directory holds everything depfw must keep across restarts:
//! synced feeds, the metadata cache, decision records and overrides. sled allows one open
//! handle per directory and process, so every subsystem takes its own named tree from the
//! one [`Store`] rather than opening the database itself.

pub mod decisions;

use std::path::{Path, PathBuf};

/// A store that could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the depfw store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("depfw store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in the depfw store ({what}): {detail}")]
    Corrupt { what: String, detail: String },
}

/// Handle to the data directory's sled database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|source| StoreError::Open { path, source })?;
        Ok(Store { db })
    }

    /// An in-memory store for tests and one-shot commands without a data directory.
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store {
            db: sled::Config::new().temporary(true).open()?,
        })
    }

    /// The named tree (e.g. `feeds`, `decisions`, `metadata-cache`).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes to disk; call before reporting a write as done.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
