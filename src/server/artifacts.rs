//! The on-disk artifact cache: verified artifacts named by their published digest under
//! `<data_dir>/artifacts/`, bounded by `upstream.artifact-cache-bytes` (oldest evicted).
//! Only bytes that matched their digest are ever stored, so a hit is served without
//! re-hashing; the policy gate still runs before every hit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::registry::Digest;

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    spool: PathBuf,
    capacity: u64,
    used: Mutex<u64>,
    spool_seq: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn open(data_dir: &Path, capacity: u64) -> std::io::Result<ArtifactCache> {
        let dir = data_dir.join("artifacts");
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        // Leftovers of a crash are unverified: drop them.
        for entry in std::fs::read_dir(&spool)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let used = std::fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        Ok(ArtifactCache {
            dir,
            spool,
            capacity,
            used: Mutex::new(used),
            spool_seq: AtomicU64::new(0),
        })
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.cache_key())
    }

    /// The cached file for `digest`, if present.
    pub(crate) fn get(&self, digest: &Digest) -> Option<PathBuf> {
        let p = self.path_of(digest);
        p.is_file().then_some(p)
    }

    /// A fresh spool path for one download.
    pub(crate) fn spool_path(&self) -> PathBuf {
        let n = self.spool_seq.fetch_add(1, Ordering::Relaxed);
        self.spool.join(format!("{}-{n}.part", std::process::id()))
    }

    /// Moves a verified spool file into the cache and evicts the oldest entries beyond the
    /// capacity. Returns the path to serve from (the spool file if it is not cached).
    pub(crate) fn insert(&self, digest: &Digest, spooled: &Path, size: u64) -> PathBuf {
        if size > self.capacity {
            return spooled.to_owned();
        }
        let target = self.path_of(digest);
        if std::fs::rename(spooled, &target).is_err() {
            return spooled.to_owned();
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used += size;
        if *used > self.capacity {
            *used = self.evict(&target, *used);
        }
        target
    }

    /// Removes the least recently modified files (never `keep`) until under capacity.
    fn evict(&self, keep: &Path, mut used: u64) -> u64 {
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                if !m.is_file() {
                    return None;
                }
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .filter(|(_, _, p)| p != keep)
            .collect();
        files.sort();
        for (_, len, path) in files {
            if used <= self.capacity {
                break;
            }
            // An open handle keeps serving an evicted file on Unix.
            if std::fs::remove_file(&path).is_ok() {
                used = used.saturating_sub(len);
            }
        }
        used
    }

    /// Removes a spool file that was served without being cached.
    pub(crate) fn discard_spool(&self, path: &Path) {
        if path.starts_with(&self.spool) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), 10).unwrap();
        let put = |n: u8| {
            let d = Digest::Sha1(vec![n; 20]);
            let p = cache.spool_path();
            std::fs::write(&p, [n; 6]).unwrap();
            let served = cache.insert(&d, &p, 6);
            std::thread::sleep(std::time::Duration::from_millis(20));
            (d, served)
        };
        let (d1, _) = put(1);
        assert!(cache.get(&d1).is_some());
        let (d2, _) = put(2);
        assert!(cache.get(&d1).is_none(), "oldest evicted");
        assert!(cache.get(&d2).is_some());
        // Larger than the whole cache: served from the spool, not cached.
        let d3 = Digest::Sha1(vec![3; 20]);
        let p = cache.spool_path();
        std::fs::write(&p, [3; 20]).unwrap();
        assert_eq!(cache.insert(&d3, &p, 20), p);
        assert!(cache.get(&d3).is_none());
    }
}
