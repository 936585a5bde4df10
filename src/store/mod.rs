//! The sled store under the data directory (`--data-dir`, default `.depfw`).
//!
//! One sled database per data directory holds everything depfw must keep across restarts:
//! synced feeds, the metadata cache, decision records and overrides. sled allows one open
//! handle per directory and process, so every subsystem takes its own named tree from the
//! one [`Store`] rather than opening the database itself.

pub mod agents;
pub mod content;
pub mod decisions;
pub mod feeds;
pub mod overrides;
pub mod pg;
pub mod quarantine;
pub mod repo;
pub mod signing;
pub(crate) mod tx;

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
    #[error(transparent)]
    Key(#[from] signing::KeyError),
    /// A PostgreSQL failure; the text never holds the connection URL or its password.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// A record (`what`: "override", "agent", ...) that does not decode or encode.
    pub(crate) fn corrupt(what: &str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            what: what.to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// sled reports a held directory lock as `WouldBlock`, or wrapped in an `Other` error whose
/// text names the lock.
pub(crate) fn is_lock_busy(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || error.to_string().contains("could not acquire lock")
}

/// Creates `data_dir` (and missing parents) if it does not exist, mode 0700: the store,
/// the signing key and the cached artifacts are depfw's alone. An existing directory keeps
/// the mode it has.
pub fn create_data_dir(data_dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(data_dir)
}

/// Handle to the data directory's sled database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// Set by [`Store::inject_write_fault`]; shared by every clone.
    fault: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The data directory; `None` for [`Store::temporary`]. The decision log keeps its
    /// signing key here, beside (not inside) the database.
    data_dir: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    ///
    /// sled releases its directory lock from a background thread after the last handle is
    /// dropped (spacejam/sled#1234), so a reopen right after a close (a CLI command after
    /// another, a test reopening its store) briefly sees the lock held: retry for up to 5 s (machines under load are slow to release it).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join("store");
        create_data_dir(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_owned(),
            source: sled::Error::Io(e),
        })?;
        let mut attempts = 0;
        loop {
            match sled::Config::new().path(&path).open() {
                Ok(db) => {
                    return Ok(Store {
                        db,
                        fault: std::sync::Arc::default(),
                        data_dir: Some(data_dir.to_owned()),
                    })
                }
                Err(sled::Error::Io(e)) if is_lock_busy(&e) && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => return Err(StoreError::Open { path, source }),
            }
        }
    }

    /// An in-memory store for tests and one-shot commands without a data directory.
    pub fn temporary() -> Result<Store, StoreError> {
        Ok(Store {
            db: sled::Config::new().temporary(true).open()?,
            fault: std::sync::Arc::default(),
            data_dir: None,
        })
    }

    /// The named tree (e.g. `feeds`, `decisions`, `metadata-cache`).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// The data directory this store was opened in; `None` for a temporary store.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Whether the store takes a write now: a tiny record in the `health` tree, flushed.
    /// sled keeps the first I/O error it meets (a full disk) and fails every later write
    /// with it until the store is reopened, so this is what `/readyz` asks.
    pub(crate) fn probe_write(&self) -> Result<(), StoreError> {
        if self.fault.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                "injected write failure",
            ))));
        }
        let stamp = chrono::Utc::now().timestamp_millis().to_be_bytes();
        self.db.open_tree("health")?.insert("probe", &stamp)?;
        self.flush()
    }

    /// Makes [`Store::probe_write`] fail until turned off again: for tests of the readiness
    /// report, since a full disk cannot be made portably.
    #[doc(hidden)]
    pub fn inject_write_fault(&self, on: bool) {
        self.fault.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Flushes to disk; call before reporting a write as done.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
