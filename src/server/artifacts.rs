//! The on-disk artifact cache: verified artifacts named by their published digest under
//! `<data_dir>/artifacts/`, bounded by `upstream.artifact-cache-bytes` (oldest evicted).
//! Only bytes that matched their digest are stored, and a hit is hashed again before it is
//! served ([`ArtifactCache::lookup`]): the files sit on a disk that other processes (or a
//! bad sector) can change, and depfw promises that every byte it serves matches the
//! registry's published digest. A file that no longer matches is removed, so the caller
//! fetches it again. Hashing a hit costs about a millisecond per MB (SHA-512). A hit of at
//! most [`INLINE_BYTES`] (most npm tarballs and crates) is read once, into memory, and those
//! very bytes are hashed and served: no second read, and nothing can change them between the
//! check and the client.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::registry::Digest;

/// Hits up to this size are served from the bytes that were hashed ([`Hit::bytes`]);
/// larger ones are streamed from the file. It bounds what one request in flight holds.
pub(crate) const INLINE_BYTES: u64 = 1 << 20;

/// What the cache holds for a digest.
pub(crate) enum Lookup {
    /// A file whose bytes hash to the digest (checked just now).
    Verified(Hit),
    /// Nothing cached.
    Miss,
    /// A cached file that no longer matched its digest; it has been removed. The text says
    /// what was found, for the decision log.
    Corrupt(String),
}

/// A verified cache hit.
pub(crate) struct Hit {
    pub path: PathBuf,
    /// The file's bytes, the ones that matched the digest, when it is at most
    /// [`INLINE_BYTES`]; `None` for a larger file, which is served from `path`.
    pub bytes: Option<bytes::Bytes>,
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
        let file = match std::fs::File::open(&path) {
            Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => file,
            _ => {
                crate::observe::cache_lookup("artifact", false);
                return Lookup::Miss;
            }
        };
        let found = match verify(file, digest) {
            Ok(Checked::Matches(bytes)) => {
                crate::observe::cache_lookup("artifact", true);
                return Lookup::Verified(Hit { path, bytes });
            }
            Ok(Checked::Differs(found)) => format!(
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

/// What hashing a cached file found.
enum Checked {
    /// It matches the digest; with the bytes themselves when it is small enough to keep.
    Matches(Option<bytes::Bytes>),
    /// It hashes to this instead.
    Differs(Vec<u8>),
}

/// Hashes `file` with `digest`'s algorithm. A file of at most [`INLINE_BYTES`] is read
/// whole (one read, no 256 KiB buffer for a 20 KiB tarball) and, when it matches, kept.
fn verify(file: std::fs::File, digest: &Digest) -> std::io::Result<Checked> {
    fn run<H: sha2::Digest>(mut file: std::fs::File, expected: &[u8]) -> std::io::Result<Checked> {
        let len = file.metadata()?.len();
        let mut hasher = H::new();
        if len <= INLINE_BYTES {
            // Bounded even if the file grows meanwhile: whatever was read is what is hashed
            // and, if it matches, served.
            let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
            (&mut file).take(INLINE_BYTES + 1).read_to_end(&mut bytes)?;
            hasher.update(&bytes);
            let found = hasher.finalize();
            return Ok(if found.as_slice() == expected {
                Checked::Matches(Some(bytes.into()))
            } else {
                Checked::Differs(found.to_vec())
            });
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let found = hasher.finalize();
        Ok(if found.as_slice() == expected {
            Checked::Matches(None)
        } else {
            Checked::Differs(found.to_vec())
        })
    }
    let expected = digest.bytes();
    match digest {
        Digest::Sha512(_) => run::<Sha512>(file, expected),
        Digest::Sha256(_) => run::<Sha256>(file, expected),
        Digest::Sha1(_) => run::<Sha1>(file, expected),
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
        match cache.lookup(&digest) {
            Lookup::Verified(hit) => {
                assert_eq!(hit.path, path);
                assert_eq!(
                    hit.bytes.as_deref(),
                    Some(&bytes[..]),
                    "a small hit is kept"
                );
            }
            _ => panic!("the cached file must verify"),
        }

        std::fs::write(&path, b"the published bytez").unwrap();
        match cache.lookup(&digest) {
            Lookup::Corrupt(found) => assert!(found.contains(&digest.hex()), "{found}"),
            _ => panic!("a changed file must not verify"),
        }
        assert!(!path.exists(), "the corrupt file is evicted");
        assert!(matches!(cache.lookup(&digest), Lookup::Miss));
    }

    #[test]
    fn a_hit_larger_than_the_inline_bound_is_verified_and_served_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), 8 << 20).unwrap();
        let bytes: Vec<u8> = (0..INLINE_BYTES + 3).map(|i| (i % 251) as u8).collect();
        let digest = Digest::Sha512(Sha512::digest(&bytes).to_vec());
        let spool = cache.spool_path();
        std::fs::write(&spool, &bytes).unwrap();
        let path = cache.insert(&digest, &spool, bytes.len() as u64);
        match cache.lookup(&digest) {
            Lookup::Verified(hit) => {
                assert_eq!(hit.path, path);
                assert!(hit.bytes.is_none(), "a large hit is not held in memory");
            }
            _ => panic!("the cached file must verify"),
        }
    }
}
