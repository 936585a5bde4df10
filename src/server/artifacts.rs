//! The on-disk artifact cache: verified artifacts named by their published digest under
//! `<data_dir>/artifacts/`, bounded by `upstream.artifact-cache-bytes` (oldest evicted).
//! Only bytes that matched their digest are stored, and a hit is hashed again before it is
//! served ([`ArtifactCache::lookup`]): the files sit on a disk that other processes (or a
//! bad sector) can change, and depfw promises that every byte it serves matches the
//! registry's published digest. A file that no longer matches is removed, so the caller
//! fetches it again. Hashing a hit costs about a millisecond per MB (SHA-512).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::registry::Digest;

/// What the cache holds for a digest.
pub(crate) enum Lookup {
    /// A file whose bytes hash to the digest (checked just now).
    Verified(PathBuf),
    /// Nothing cached.
    Miss,
    /// A cached file that no longer matched its digest; it has been removed. The text says
    /// what was found, for the decision log.
    Corrupt(String),
}

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

    /// The bytes the cache holds, as counted against `upstream.artifact-cache-bytes`.
    pub(crate) fn used_bytes(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.cache_key())
    }

    /// The size of the cached file for `digest`, if any: for `HEAD`, which sends no bytes.
    pub(crate) fn cached_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.path_of(digest))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
    }

    /// The cached file for `digest`, hashed again; a file that no longer matches (or can no
    /// longer be read) is removed. Blocking: it reads the whole file.
    pub(crate) fn lookup(&self, digest: &Digest) -> Lookup {
        let path = self.path_of(digest);
        if !path.is_file() {
            crate::observe::cache_lookup("artifact", false);
            return Lookup::Miss;
        }
        let found = match hash_file(&path, digest) {
            Ok(found) if found == digest.bytes() => {
                crate::observe::cache_lookup("artifact", true);
                return Lookup::Verified(path);
            }
            Ok(found) => format!(
                "cached file {} hashes to {} {}, not the published {}",
                path.display(),
                digest.algorithm(),
                hex::encode(found),
                digest.hex()
            ),
            Err(e) => format!("cached file {} unreadable: {e}", path.display()),
        };
        if let Ok(meta) = std::fs::metadata(&path) {
            if std::fs::remove_file(&path).is_ok() {
                let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
                *used = used.saturating_sub(meta.len());
            }
        }
        Lookup::Corrupt(found)
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
                crate::observe::cache_evicted("artifact");
                used = used.saturating_sub(len);
            }
        }
        used
    }
}

/// The digest of a file's bytes with `digest`'s algorithm.
fn hash_file(path: &Path, digest: &Digest) -> std::io::Result<Vec<u8>> {
    fn run<H: sha2::Digest>(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
        let mut hasher = H::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(hasher.finalize().to_vec());
            }
            hasher.update(&buf[..n]);
        }
    }
    let file = std::fs::File::open(path)?;
    match digest {
        Digest::Sha512(_) => run::<Sha512>(file),
        Digest::Sha256(_) => run::<Sha256>(file),
        Digest::Sha1(_) => run::<Sha1>(file),
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

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
        assert!(cache.cached_size(&d1).is_some());
        let (d2, _) = put(2);
        assert!(cache.cached_size(&d1).is_none(), "oldest evicted");
        assert!(cache.cached_size(&d2).is_some());
        // Larger than the whole cache: served from the spool, not cached.
        let d3 = Digest::Sha1(vec![3; 20]);
        let p = cache.spool_path();
        std::fs::write(&p, [3; 20]).unwrap();
        assert_eq!(cache.insert(&d3, &p, 20), p);
        assert!(cache.cached_size(&d3).is_none());
    }

    #[test]
    fn a_hit_that_no_longer_matches_its_digest_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), 1 << 20).unwrap();
        let bytes = b"the published bytes";
        let digest = Digest::Sha256(Sha256::digest(bytes).to_vec());
        let spool = cache.spool_path();
        std::fs::write(&spool, bytes).unwrap();
        let path = cache.insert(&digest, &spool, bytes.len() as u64);
        assert!(matches!(cache.lookup(&digest), Lookup::Verified(p) if p == path));

        std::fs::write(&path, b"the published bytez").unwrap();
        match cache.lookup(&digest) {
            Lookup::Corrupt(found) => assert!(found.contains(&digest.hex()), "{found}"),
            _ => panic!("a changed file must not verify"),
        }
        assert!(!path.exists(), "the corrupt file is evicted");
        assert!(matches!(cache.lookup(&digest), Lookup::Miss));
    }
}
