//! Walking an archive's entries with bounded work: zip (wheels) through the `zip` crate,
//! gzip'd tar (npm tarballs, sdists, `.crate` files) through `flate2` and `tar`.
//!
//! Nothing is unpacked to disk. Each regular file is read only as far as the visitor asks:
//! its first [`super::rules::NATIVE_HEAD`] bytes, or, for the files the rules read whole,
//! all of it in overlapping windows of `max-file-bytes` ([`Window`]), so a 4 MB install
//! script (Shai-Hulud's `bundle.js` is 3.6 MB) is read to the end in bounded memory. A
//! zip's central directory is read whole by the `zip` crate: its size is bounded by the
//! artifact's (`upstream.max-artifact-bytes`), and the entry count is checked right after. A tar stream is decompressed through a reader that fails past
//! `max-unpacked-bytes`, and GNU long names and pax headers (which the `tar` crate would
//! read into memory whole) are read here, at most 64 KiB each. A walk that hits a limit or
//! meets a malformed archive returns why, as text for the finding.

use std::io::{self, BufReader, Read, Seek};

use super::rules::NATIVE_HEAD;

/// The limits of one walk (`policy.content.*`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_unpacked: u64,
    pub max_entries: u64,
    pub max_file: u64,
}

/// One window of a file the rules read whole: `max-file-bytes` at a time, each window
/// starting with the last [`OVERLAP`] bytes of the one before, so a match across a window
/// boundary (shorter than that) is still seen and memory stays bounded whatever the size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    pub bytes: &'a [u8],
    /// The file's first window (it starts at byte 0).
    pub first: bool,
    /// The file's last window (the file ends in it).
    pub last: bool,
}

/// How much of a window the next one repeats.
pub(crate) const OVERLAP: usize = 4096;

/// What a walk reports to.
pub(crate) trait Visit {
    /// Whether the rules read this file whole, window by window.
    fn wants(&self, path: &str) -> bool;
    /// A regular file: its first bytes (empty after the first window) and, when wanted,
    /// one window of its body; a wanted file is reported once per window.
    fn file(&mut self, path: &str, head: &[u8], body: Option<Window<'_>>);
    /// A directory, link or other non-file entry.
    fn other(&mut self, path: &str);
}

/// The longest GNU long name or pax header read.
const MAX_HEADER_EXTENSION: u64 = 64 * 1024;

/// Reads `from` into `buf` up to `cap` bytes (one more tells that it was longer).
fn read_capped(from: &mut impl Read, cap: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    from.take(cap + 1).read_to_end(buf)?;
    if buf.len() as u64 > cap {
        buf.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    }
    Ok(())
}

/// Reads one file for the visitor: only its head when not wanted, else window by window.
/// Returns the bytes read.
fn read_file(
    v: &mut impl Visit,
    path: &str,
    from: &mut impl Read,
    wanted: bool,
    max_file: u64,
    buf: &mut Vec<u8>,
) -> io::Result<u64> {
    if !wanted {
        read_capped(from, NATIVE_HEAD as u64, buf)?;
        v.file(path, buf, None);
        return Ok(buf.len() as u64);
    }
    let window = usize::try_from(max_file)
        .unwrap_or(usize::MAX)
        .max(2 * OVERLAP)
        .max(NATIVE_HEAD);
    buf.clear();
    let mut total = 0u64;
    let mut first = true;
    loop {
        let want = window - buf.len();
        let n = from.by_ref().take(want as u64).read_to_end(buf)?;
        total += n as u64;
        let last = n < want;
        let head = if first {
            &buf[..buf.len().min(NATIVE_HEAD)]
        } else {
            &[][..]
        };
        let body = Window {
            bytes: buf,
            first,
            last,
        };
        v.file(path, head, Some(body));
        if last {
            return Ok(total);
        }
        first = false;
        buf.drain(..buf.len() - OVERLAP);
    }
}

/// Walks a zip archive (a wheel). Only the bytes read count towards `max_unpacked`: a
/// wheel's large binaries are read for their first kilobyte.
pub(crate) fn walk_zip<R: Read + Seek>(
    reader: R,
    limits: Limits,
    v: &mut impl Visit,
) -> Result<(), String> {
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| format!("not a readable zip archive: {e}"))?;
    if zip.len() as u64 > limits.max_entries {
        return Err(format!(
            "{} entries, more than the {} limit (policy.content.max-entries)",
            zip.len(),
            limits.max_entries
        ));
    }
    let mut unpacked = 0u64;
    let mut buf = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip
            .by_index(i)
            .map_err(|e| format!("zip entry {i} cannot be read: {e}"))?;
        let path = file.name().to_owned();
        if file.is_dir() {
            v.other(&path);
            continue;
        }
        let wanted = v.wants(&path);
        // A wanted file is bounded by what is left of `max_unpacked`.
        let left = limits.max_unpacked.saturating_sub(unpacked);
        let mut bounded = (&mut file).take(left + 1);
        unpacked += read_file(v, &path, &mut bounded, wanted, limits.max_file, &mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
        if unpacked > limits.max_unpacked {
            return Err(too_large(limits));
        }
    }
    Ok(())
}

fn too_large(limits: Limits) -> String {
    format!(
        "decompresses to more than {} bytes (policy.content.max-unpacked-bytes)",
        limits.max_unpacked
    )
}

/// A reader that fails once more than `max` bytes went through it: the decompressed tar
/// stream, so that a gzip bomb ends the walk instead of the process.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::other(format!(
                "decompresses to more than {} bytes (policy.content.max-unpacked-bytes)",
                self.max
            )));
        }
        Ok(n)
    }
}

/// The `path` record of a pax extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return None;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"path=") {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &rest[len..];
    }
    None
}

/// Walks a gzip'd tar archive (npm tarball, sdist, `.crate`).
pub(crate) fn walk_tar_gz<R: Read>(
    reader: R,
    limits: Limits,
    v: &mut impl Visit,
) -> Result<(), String> {
    let gz = flate2::read::GzDecoder::new(BufReader::new(reader));
    let bounded = Bounded {
        inner: gz,
        read: 0,
        max: limits.max_unpacked,
    };
    let mut archive = tar::Archive::new(bounded);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a readable tar.gz archive: {e}"))?
        .raw(true);
    let mut count = 0u64;
    let mut long_name: Option<String> = None;
    let mut buf = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("malformed tar.gz archive: {e}"))?;
        count += 1;
        if count > limits.max_entries {
            return Err(format!(
                "more than {} entries (policy.content.max-entries)",
                limits.max_entries
            ));
        }
        let kind = entry.header().entry_type();
        let extension = |entry: &mut tar::Entry<'_, _>, buf: &mut Vec<u8>| {
            if entry.size() > MAX_HEADER_EXTENSION {
                return Err(format!(
                    "a tar header extension of {} bytes (more than {MAX_HEADER_EXTENSION})",
                    entry.size()
                ));
            }
            read_capped(entry, MAX_HEADER_EXTENSION, buf)
                .map_err(|e| format!("malformed tar.gz archive: {e}"))
        };
        if kind.is_gnu_longname() {
            extension(&mut entry, &mut buf)?;
            let name = buf.split(|&b| b == 0).next().unwrap_or_default();
            long_name = Some(String::from_utf8_lossy(name).into_owned());
            continue;
        }
        if kind.is_pax_local_extensions() {
            extension(&mut entry, &mut buf)?;
            if let Some(path) = pax_path(&buf) {
                long_name = Some(path);
            }
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_gnu_longlink() {
            extension(&mut entry, &mut buf)?;
            continue;
        }
        let path = long_name
            .take()
            .unwrap_or_else(|| String::from_utf8_lossy(&entry.header().path_bytes()).into_owned());
        let path = path.trim_start_matches("./").to_owned();
        if !(kind.is_file() || kind.is_contiguous()) {
            v.other(&path);
            continue;
        }
        let wanted = v.wants(&path);
        // The rest of an entry read only for its head is skipped (decompressed, counted
        // against `max_unpacked` by `Bounded`) by the next step.
        read_file(v, &path, &mut entry, wanted, limits.max_file, &mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Paths(Vec<String>);
    impl Visit for Paths {
        fn wants(&self, _: &str) -> bool {
            false
        }
        fn file(&mut self, path: &str, _: &[u8], body: Option<Window<'_>>) {
            if body.is_none_or(|w| w.first) {
                self.0.push(path.to_owned());
            }
        }
        fn other(&mut self, _: &str) {}
    }

    const LIMITS: Limits = Limits {
        max_unpacked: 1 << 20,
        max_entries: 100,
        max_file: 4096,
    };

    #[test]
    fn pax_path_records() {
        assert_eq!(
            pax_path(b"30 mtime=1350244992.023960108\n17 path=a/b/c.js\n").as_deref(),
            Some("a/b/c.js")
        );
        assert_eq!(pax_path(b"99 path=x\n"), None);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let mut tar = tar::Builder::new(Vec::new());
        let zeros = vec![0u8; 4 << 20];
        let mut header = tar::Header::new_gnu();
        header.set_size(zeros.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "package/big.bin", &zeros[..])
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut v = Paths::default();
        let err = walk_tar_gz(&gz[..], LIMITS, &mut v).unwrap_err();
        assert!(err.contains("max-unpacked-bytes"), "{err}");
    }

    #[test]
    fn garbage_is_a_reason_not_a_panic() {
        let mut v = Paths::default();
        assert!(walk_tar_gz(&b"not gzip at all"[..], LIMITS, &mut v).is_err());
        assert!(walk_zip(std::io::Cursor::new(b"PK\x03\x04 nope"), LIMITS, &mut v).is_err());
        // gzip of a truncated tar
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &[b'a'; 700]).unwrap();
        let gz = gz.finish().unwrap();
        let _ = walk_tar_gz(&gz[..], LIMITS, &mut v);
    }

    #[test]
    fn too_many_entries() {
        let mut tar = tar::Builder::new(Vec::new());
        for i in 0..101 {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, format!("package/{i}"), &[][..])
                .unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let err = walk_tar_gz(&gz.finish().unwrap()[..], LIMITS, &mut Paths::default());
        assert!(err.unwrap_err().contains("max-entries"));
    }

    #[test]
    fn long_names_are_read_bounded() {
        let mut tar = tar::Builder::new(Vec::new());
        let long = format!("package/{}/x.js", "d".repeat(200));
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        tar.append_data(&mut header, &long, &b"x"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let mut v = Paths::default();
        walk_tar_gz(&gz.finish().unwrap()[..], LIMITS, &mut v).unwrap();
        assert_eq!(v.0, [long]);
    }
}
