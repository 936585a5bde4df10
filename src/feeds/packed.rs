//! The bundled snapshot as the binary carries it: `feeds/advisories-<ecosystem>.idx`, one
//! ecosystem's advisories in small compressed blocks behind a per-package index.
//!
//! `depfw audit` of a Cargo.lock needs the advisories of the few crates in it that have
//! any. Inflating and skimming the whole `advisories-crates-io.json.gz` for them was about
//! 40% of such an audit; with this layout a scan looks each of its packages up in the
//! index (a binary search, no decompression) and inflates only the blocks holding the
//! advisories of the packages that have some. Loading everything (`depfw serve`) inflates
//! every block. `depfw feeds snapshot` writes these files next to the `.json.gz` ones they
//! are laid out from, and a test fails while they differ.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! MAGIC (16 bytes)  u32 entry count  u32 block count
//! entries: per package, sorted by hash: u64 hash of the key (FNV-1a), u32 block,
//!          u32 start, u32 end (its records' byte range in the inflated block)
//! blocks:  u32 start, u32 end (in the data), u32 inflated length (top bit: stored)
//! data:    the blocks, each a run of advisory records, raw deflate or (a small
//!          ecosystem, [`STORE_BELOW`]) as they are, in the snapshot's order; a
//!          package's records are never split between blocks
//! record:  str id, list aliases, u8 ecosystem, str package, u8 kind, u8 severity,
//!          date published, date modified, u32 range count, per range (u8 kind, u32 event
//!          count, per event u8 kind and str version), list versions, u8 all_versions
//!          (str: u32 length and UTF-8 bytes; list: u32 count and that many str; date:
//!          u8 0 for none, or 1, i64 seconds and u32 nanoseconds since the epoch)
//! ```
//!
//! The records are binary, not JSON lines, because decoding them is most of what reading
//! a package's advisories costs: JSON lines took ~15k instructions per advisory (two RFC
//! 3339 dates and externally tagged range events among them), about a sixth of a whole
//! `depfw audit` of a 400-crate Cargo.lock; these take a few hundred plus the allocations.
//!
//! A hash names a package to one in 2^64, and every record read is checked against the
//! package asked for anyway, so a collision costs a decode, never a wrong answer.

use std::borrow::Cow;
use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::{Decompress, FlushDecompress, Status};

use chrono::{DateTime, Utc};

use super::matcher::{AffectedRange, RangeEvent, RangeKind};
use super::model::{Advisory, AdvisoryKind};
use super::FeedError;
use crate::diag::Severity;
use crate::package::Ecosystem;

/// The file header; bump it with any change to the layout, the record encoding or [`hash`].
const MAGIC: &[u8; 16] = b"depfw-advidx-2\n\0";
const HEADER: usize = MAGIC.len() + 8;
/// One index entry: hash (u64), block, start, end (u32 each).
const ENTRY: usize = 20;
/// One block record: data start, data end, inflated length (u32 each).
const BLOCK: usize = 12;
/// Inflated size after which a block is closed (at the next package): small enough that
/// a lookup inflates little besides the records it wants, large enough that the blocks
/// compress within 30% of the whole file compressed at once.
const BLOCK_TARGET: usize = 8 * 1024;
/// An ecosystem whose advisories take less than this is stored uncompressed (crates.io:
/// ~175 KB): then a scan inflates nothing at all, for a few hundred KB of binary.
const STORE_BELOW: usize = 1024 * 1024;
/// Set in a block's length when the block is stored, not deflated.
const STORED: u32 = 1 << 31;
/// Largest inflated block accepted: bounds a corrupt file (the largest real one, PyPA's
/// hundreds of advisories about one package, is well under 1 MiB).
const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// FNV-1a, 64 bits: stable across builds and platforms, as a file written once needs.
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The little-endian `u32` at `at`, or 0 past the end: callers check lengths first, and a
/// damaged file reads as empty rather than panicking. Also read by the prebuilt typosquat
/// tables (`policy::typosquat::table`).
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The little-endian `u64` at `at`, or 0 past the end (see [`u32_at`]).
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn corrupt(detail: impl std::fmt::Display) -> FeedError {
    FeedError::Snapshot(format!("corrupt advisories index: {detail}"))
}

fn offset(n: usize) -> Result<u32, FeedError> {
    u32::try_from(n).map_err(|_| FeedError::Snapshot("advisories index: more than 4 GiB".into()))
}

/// Lays `advisories` (one ecosystem's, grouped by package as the snapshot sorts them) out
/// in the format above.
pub(crate) fn pack(advisories: &[Advisory]) -> Result<Vec<u8>, FeedError> {
    pack_as(advisories, None)
}

/// [`pack`], with `store` forcing stored (or deflated) blocks whatever the size: tests.
fn pack_as(advisories: &[Advisory], store: Option<bool>) -> Result<Vec<u8>, FeedError> {
    let mut entries: Vec<(u64, u32, u32, u32)> = Vec::new();
    let mut inflated: Vec<Vec<u8>> = Vec::new();
    let mut block = Vec::new();
    for group in advisories.chunk_by(|a, b| a.package == b.package) {
        let start = offset(block.len())?;
        for advisory in group {
            encode(advisory, &mut block)?;
        }
        let (block_id, end) = (offset(inflated.len())?, offset(block.len())?);
        entries.push((hash(&group[0].package), block_id, start, end));
        if block.len() >= BLOCK_TARGET {
            inflated.push(std::mem::take(&mut block));
        }
    }
    if !block.is_empty() {
        inflated.push(block);
    }
    let stored =
        store.unwrap_or_else(|| inflated.iter().map(Vec::len).sum::<usize>() < STORE_BELOW);
    let failed =
        |e: std::io::Error| FeedError::Snapshot(format!("cannot compress advisories: {e}"));
    let mut blocks: Vec<[u32; 3]> = Vec::new();
    let mut data = Vec::new();
    for block in &inflated {
        let start = offset(data.len())?;
        let len = offset(block.len())?;
        if stored {
            data.extend_from_slice(block);
            blocks.push([start, offset(data.len())?, len | STORED]);
        } else {
            let mut deflate =
                DeflateEncoder::new(std::mem::take(&mut data), flate2::Compression::best());
            deflate.write_all(block).map_err(failed)?;
            data = deflate.finish().map_err(failed)?;
            blocks.push([start, offset(data.len())?, len]);
        }
    }
    entries.sort_unstable();
    let mut out =
        Vec::with_capacity(HEADER + entries.len() * ENTRY + blocks.len() * BLOCK + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&offset(entries.len())?.to_le_bytes());
    out.extend_from_slice(&offset(blocks.len())?.to_le_bytes());
    for (hash, block, start, end) in entries {
        out.extend_from_slice(&hash.to_le_bytes());
        for n in [block, start, end] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    for n in blocks.iter().flatten() {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&data);
    Ok(out)
}

/// A packed file, read in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packed<'a> {
    entries: &'a [u8],
    blocks: &'a [u8],
    data: &'a [u8],
}

/// Where one package's records are: block, and byte range in the inflated block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    block: u32,
    start: u32,
    end: u32,
}

impl<'a> Packed<'a> {
    /// Checks the header and the table sizes; the blocks are checked as they are inflated.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, FeedError> {
        if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(corrupt("not a depfw advisories index (or another version)"));
        }
        let entries = u32_at(bytes, MAGIC.len()) as usize * ENTRY;
        let blocks = u32_at(bytes, MAGIC.len() + 4) as usize * BLOCK;
        let rest = bytes.get(HEADER..).unwrap_or_default();
        if rest.len() < entries + blocks {
            return Err(corrupt("truncated"));
        }
        let (entries, rest) = rest.split_at(entries);
        let (blocks, data) = rest.split_at(blocks);
        Ok(Packed {
            entries,
            blocks,
            data,
        })
    }

    fn block_count(&self) -> u32 {
        (self.blocks.len() / BLOCK) as u32
    }

    /// The spans of the packages whose key hashes like `key`'s (nearly always: `key`'s
    /// own, or none).
    fn find(&self, key: &str) -> impl Iterator<Item = Span> + '_ {
        let wanted = hash(key);
        let count = self.entries.len() / ENTRY;
        let hash_of = |i: usize| u64_at(self.entries, i * ENTRY);
        // partition_point over indices: the first entry whose hash is not below `wanted`.
        let (mut low, mut high) = (0, count);
        while low < high {
            let mid = low + (high - low) / 2;
            if hash_of(mid) < wanted {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        (low..count)
            .take_while(move |&i| hash_of(i) == wanted)
            .map(|i| {
                let at = i * ENTRY + 8;
                Span {
                    block: u32_at(self.entries, at),
                    start: u32_at(self.entries, at + 4),
                    end: u32_at(self.entries, at + 8),
                }
            })
    }

    /// Block `id`, inflated with `inflater` (made on first use and reset for each block:
    /// one serves every block, because setting one up costs more than inflating a block);
    /// a stored block is borrowed as it is.
    fn inflate(
        &self,
        inflater: &mut Option<Decompress>,
        id: u32,
    ) -> Result<Cow<'a, [u8]>, FeedError> {
        let at = id as usize * BLOCK;
        if at + BLOCK > self.blocks.len() {
            return Err(corrupt(format!("no block {id}")));
        }
        let field = |i: usize| u32_at(self.blocks, at + 4 * i);
        let (start, end, len) = (field(0) as usize, field(1) as usize, field(2));
        let input = self
            .data
            .get(start..end)
            .ok_or_else(|| corrupt(format!("block {id} lies outside the file")))?;
        if len & STORED != 0 {
            if input.len() != (len & !STORED) as usize {
                return Err(corrupt(format!("stored block {id} has the wrong length")));
            }
            return Ok(Cow::Borrowed(input));
        }
        if len > MAX_BLOCK {
            return Err(corrupt(format!("block {id} claims {len} bytes")));
        }
        let mut out = Vec::with_capacity(len as usize);
        let inflater = inflater.get_or_insert_with(|| Decompress::new(false));
        inflater.reset(false);
        let status = inflater
            .decompress_vec(input, &mut out, FlushDecompress::Finish)
            .map_err(|e| corrupt(format!("block {id}: {e}")))?;
        if status != Status::StreamEnd || out.len() != len as usize {
            return Err(corrupt(format!(
                "block {id} does not inflate to {len} bytes"
            )));
        }
        Ok(Cow::Owned(out))
    }
}

// The one-byte codes of the record's enums. Spelled out rather than `as u8`, so that
// reordering an enum cannot silently change what a committed file means.

fn ecosystem_code(ecosystem: Ecosystem) -> u8 {
    match ecosystem {
        Ecosystem::Npm => 0,
        Ecosystem::PyPI => 1,
        Ecosystem::CratesIo => 2,
    }
}

fn ecosystem_of(code: u8) -> Option<Ecosystem> {
    Some(match code {
        0 => Ecosystem::Npm,
        1 => Ecosystem::PyPI,
        2 => Ecosystem::CratesIo,
        _ => return None,
    })
}

fn kind_code(kind: AdvisoryKind) -> u8 {
    match kind {
        AdvisoryKind::Malicious => 0,
        AdvisoryKind::Vulnerability => 1,
        AdvisoryKind::Unmaintained => 2,
        AdvisoryKind::Unsound => 3,
        AdvisoryKind::Notice => 4,
    }
}

fn kind_of(code: u8) -> Option<AdvisoryKind> {
    Some(match code {
        0 => AdvisoryKind::Malicious,
        1 => AdvisoryKind::Vulnerability,
        2 => AdvisoryKind::Unmaintained,
        3 => AdvisoryKind::Unsound,
        4 => AdvisoryKind::Notice,
        _ => return None,
    })
}

fn severity_code(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
        Severity::Unknown => 5,
    }
}

fn severity_of(code: u8) -> Option<Severity> {
    Some(match code {
        0 => Severity::Info,
        1 => Severity::Low,
        2 => Severity::Medium,
        3 => Severity::High,
        4 => Severity::Critical,
        5 => Severity::Unknown,
        _ => return None,
    })
}

fn range_kind_code(kind: RangeKind) -> u8 {
    match kind {
        RangeKind::Semver => 0,
        RangeKind::Ecosystem => 1,
    }
}

fn range_kind_of(code: u8) -> Option<RangeKind> {
    Some(match code {
        0 => RangeKind::Semver,
        1 => RangeKind::Ecosystem,
        _ => return None,
    })
}

/// One range event as its code and version.
fn event_parts(event: &RangeEvent) -> (u8, &str) {
    match event {
        RangeEvent::Introduced(v) => (0, v),
        RangeEvent::Fixed(v) => (1, v),
        RangeEvent::LastAffected(v) => (2, v),
        RangeEvent::Limit(v) => (3, v),
    }
}

fn event_of(code: u8, version: String) -> Option<RangeEvent> {
    Some(match code {
        0 => RangeEvent::Introduced(version),
        1 => RangeEvent::Fixed(version),
        2 => RangeEvent::LastAffected(version),
        3 => RangeEvent::Limit(version),
        _ => return None,
    })
}

/// Appends `advisory` as one record (the layout in the module docs).
fn encode(advisory: &Advisory, out: &mut Vec<u8>) -> Result<(), FeedError> {
    fn count(out: &mut Vec<u8>, n: usize) -> Result<(), FeedError> {
        out.extend_from_slice(&offset(n)?.to_le_bytes());
        Ok(())
    }
    fn text(out: &mut Vec<u8>, s: &str) -> Result<(), FeedError> {
        count(out, s.len())?;
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn list(out: &mut Vec<u8>, items: &[String]) -> Result<(), FeedError> {
        count(out, items.len())?;
        items.iter().try_for_each(|s| text(out, s))
    }
    fn date(out: &mut Vec<u8>, date: Option<&DateTime<Utc>>) {
        match date {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                out.extend_from_slice(&d.timestamp().to_le_bytes());
                out.extend_from_slice(&d.timestamp_subsec_nanos().to_le_bytes());
            }
        }
    }
    text(out, &advisory.id)?;
    list(out, &advisory.aliases)?;
    out.push(ecosystem_code(advisory.ecosystem));
    text(out, &advisory.package)?;
    out.push(kind_code(advisory.kind));
    out.push(severity_code(advisory.severity));
    date(out, advisory.published.as_ref());
    date(out, advisory.modified.as_ref());
    count(out, advisory.ranges.len())?;
    for range in &advisory.ranges {
        out.push(range_kind_code(range.kind));
        count(out, range.events.len())?;
        for event in &range.events {
            let (code, version) = event_parts(event);
            out.push(code);
            text(out, version)?;
        }
    }
    list(out, &advisory.versions)?;
    out.push(u8::from(advisory.all_versions));
    Ok(())
}

/// Reads records: each read checks its bounds, so a damaged block is an error, never a
/// panic or a read past the records.
struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FeedError> {
        if self.rest.len() < n {
            return Err(corrupt("an advisory record is cut short"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, FeedError> {
        Ok(self.bytes(1)?[0])
    }

    fn code<T>(&mut self, of: fn(u8) -> Option<T>, what: &str) -> Result<T, FeedError> {
        let code = self.byte()?;
        of(code).ok_or_else(|| corrupt(format!("unknown {what} code {code}")))
    }

    fn count(&mut self) -> Result<usize, FeedError> {
        Ok(u32_at(self.bytes(4)?, 0) as usize)
    }

    fn text(&mut self) -> Result<String, FeedError> {
        let len = self.count()?;
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| corrupt("an advisory record holds text that is not UTF-8"))
    }

    /// `count` items; the capacity is bounded by what is left, so a damaged count cannot
    /// ask for a huge allocation (every item takes at least one byte).
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, FeedError>,
    ) -> Result<Vec<T>, FeedError> {
        let n = self.count()?;
        let mut items = Vec::with_capacity(n.min(self.rest.len()));
        for _ in 0..n {
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn date(&mut self) -> Result<Option<DateTime<Utc>>, FeedError> {
        match self.byte()? {
            0 => Ok(None),
            1 => {
                let seconds = u64_at(self.bytes(8)?, 0) as i64;
                let nanos = u32_at(self.bytes(4)?, 0);
                DateTime::from_timestamp(seconds, nanos)
                    .map(Some)
                    .ok_or_else(|| corrupt("an advisory record holds an impossible date"))
            }
            other => Err(corrupt(format!("unknown date code {other}"))),
        }
    }

    fn advisory(&mut self) -> Result<Advisory, FeedError> {
        Ok(Advisory {
            id: self.text()?,
            aliases: self.list(Self::text)?,
            ecosystem: self.code(ecosystem_of, "ecosystem")?,
            package: self.text()?,
            kind: self.code(kind_of, "advisory kind")?,
            severity: self.code(severity_of, "severity")?,
            published: self.date()?,
            modified: self.date()?,
            ranges: self.list(|r| {
                let kind = r.code(range_kind_of, "range kind")?;
                let events = r.list(|r| {
                    let code = r.byte()?;
                    let version = r.text()?;
                    event_of(code, version)
                        .ok_or_else(|| corrupt(format!("unknown range event code {code}")))
                })?;
                Ok(AffectedRange { kind, events })
            })?,
            versions: self.list(Self::text)?,
            all_versions: match self.byte()? {
                0 => false,
                1 => true,
                other => return Err(corrupt(format!("all_versions is {other}"))),
            },
            matcher: Default::default(),
        })
    }
}

/// The advisories in `records` (a run of whole records).
fn decode_records(records: &[u8], into: &mut Vec<Advisory>) -> Result<(), FeedError> {
    let mut reader = Records { rest: records };
    while !reader.rest.is_empty() {
        into.push(reader.advisory()?);
    }
    Ok(())
}

/// Every advisory of a packed file, in the snapshot's order.
pub(crate) fn read_all(bytes: &[u8]) -> Result<Vec<Advisory>, FeedError> {
    let packed = Packed::new(bytes)?;
    let mut advisories = Vec::new();
    let mut inflater = None;
    for id in 0..packed.block_count() {
        decode_records(&packed.inflate(&mut inflater, id)?, &mut advisories)?;
    }
    Ok(advisories)
}

/// The advisories of a packed file about `keys` (normalised package names), in the
/// snapshot's order: only the blocks holding them are inflated, only they are parsed.
pub(crate) fn read_about<'k>(
    bytes: &[u8],
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<Vec<Advisory>, FeedError> {
    let packed = Packed::new(bytes)?;
    let mut spans: Vec<(Span, &str)> = keys
        .into_iter()
        .flat_map(|key| packed.find(key).map(move |span| (span, key)))
        .collect();
    spans.sort_unstable();
    spans.dedup();
    let mut advisories = Vec::new();
    let mut block: Option<(u32, Cow<'_, [u8]>)> = None;
    let mut inflater = None;
    let mut found = Vec::new();
    for (span, key) in spans {
        let inflated = match &block {
            Some((id, bytes)) if *id == span.block => bytes,
            _ => {
                &block
                    .insert((span.block, packed.inflate(&mut inflater, span.block)?))
                    .1
            }
        };
        let records = inflated
            .get(span.start as usize..span.end as usize)
            .ok_or_else(|| corrupt(format!("a span lies outside block {}", span.block)))?;
        decode_records(records, &mut found)?;
        // A hash shared with another package: keep only what is about `key`.
        advisories.extend(found.drain(..).filter(|a| a.package == key));
    }
    Ok(advisories)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::feeds::AdvisoryKind;
    use crate::package::Ecosystem;

    fn advisory(package: &str, id: &str) -> Advisory {
        Advisory {
            id: id.to_owned(),
            aliases: Vec::new(),
            ecosystem: Ecosystem::CratesIo,
            package: package.to_owned(),
            kind: AdvisoryKind::Vulnerability,
            severity: Severity::High,
            published: None,
            modified: None,
            ranges: Vec::new(),
            versions: Vec::new(),
            all_versions: true,
            matcher: Default::default(),
        }
    }

    fn ids(advisories: &[Advisory]) -> Vec<(&str, &str)> {
        advisories
            .iter()
            .map(|a| (a.package.as_str(), a.id.as_str()))
            .collect()
    }

    /// Enough packages for many blocks; some with several advisories.
    fn sample() -> Vec<Advisory> {
        let mut all = Vec::new();
        for p in 0..1200 {
            for n in 0..(p % 3 + 1) {
                all.push(advisory(&format!("crate-{p:04}"), &format!("X-{p}-{n}")));
            }
        }
        all
    }

    #[test]
    fn reads_back_everything_in_order_and_each_package_alone() {
        let all = sample();
        for store in [true, false] {
            reads_back(&all, &pack_as(&all, Some(store)).unwrap());
        }
        assert_eq!(pack(&all).unwrap(), pack_as(&all, Some(true)).unwrap());
        assert!(read_all(&pack(&[]).unwrap()).unwrap().is_empty());
    }

    fn reads_back(all: &[Advisory], bytes: &[u8]) {
        let bytes = bytes.to_vec();
        let packed = Packed::new(&bytes).unwrap();
        assert!(packed.block_count() > 5, "{}", packed.block_count());
        assert_eq!(ids(&read_all(&bytes).unwrap()), ids(all));
        let about = read_about(
            &bytes,
            ["crate-0398", "crate-0002", "crate-9999", "crate-0002"],
        )
        .unwrap();
        assert_eq!(
            ids(&about),
            [
                ("crate-0002", "X-2-0"),
                ("crate-0002", "X-2-1"),
                ("crate-0002", "X-2-2"),
                ("crate-0398", "X-398-0"),
                ("crate-0398", "X-398-1"),
                ("crate-0398", "X-398-2"),
            ]
        );
        assert!(read_about(&bytes, ["nothing"]).unwrap().is_empty());
    }

    /// Every field of the model, each enum variant and a date with nanoseconds survive
    /// the record encoding exactly (compared as their JSON, which is what the snapshot
    /// files hold).
    #[test]
    fn records_keep_every_field() {
        use crate::feeds::{AffectedRange, RangeEvent, RangeKind};
        let date = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        let mut all = Vec::new();
        let kinds = [
            AdvisoryKind::Malicious,
            AdvisoryKind::Vulnerability,
            AdvisoryKind::Unmaintained,
            AdvisoryKind::Unsound,
            AdvisoryKind::Notice,
        ];
        let severities = [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
            Severity::Unknown,
        ];
        for (i, ecosystem) in Ecosystem::ALL.into_iter().enumerate() {
            for (j, (kind, severity)) in kinds.iter().zip(severities.iter().cycle()).enumerate() {
                let mut a = advisory(&format!("pkg-{i}-é{j}"), &format!("ID-{i}-{j}"));
                a.ecosystem = ecosystem;
                a.kind = *kind;
                a.severity = *severity;
                a.aliases = (0..j).map(|n| format!("CVE-2026-{n}")).collect();
                a.published = date("2024-07-24T12:00:00Z");
                a.modified = (j % 2 == 0)
                    .then(|| date("2025-01-19T00:36:24.123456789Z"))
                    .flatten();
                a.ranges = vec![
                    AffectedRange {
                        kind: RangeKind::Semver,
                        events: vec![
                            RangeEvent::Introduced("0.0.0-0".into()),
                            RangeEvent::Fixed("1.2.3".into()),
                        ],
                    },
                    AffectedRange {
                        kind: RangeKind::Ecosystem,
                        events: vec![
                            RangeEvent::Introduced("2.0".into()),
                            RangeEvent::LastAffected("2.5".into()),
                            RangeEvent::Limit("3.0".into()),
                        ],
                    },
                ];
                a.versions = vec!["0.1.0".into(), String::new()];
                a.all_versions = j == 4;
                all.push(a);
            }
        }
        let json = |a: &[Advisory]| serde_json::to_string(a).unwrap();
        for store in [true, false] {
            let bytes = pack_as(&all, Some(store)).unwrap();
            assert_eq!(json(&read_all(&bytes).unwrap()), json(&all));
            let about = read_about(&bytes, ["pkg-1-é3"]).unwrap();
            assert_eq!(json(&about), json(&all[5 + 3..5 + 4]));
        }
    }

    /// A record with a code no encoder writes, or cut short, is an error.
    #[test]
    fn damaged_records_are_errors() {
        let mut block = Vec::new();
        encode(&advisory("crate-a", "X-1"), &mut block).unwrap();
        let mut out = Vec::new();
        decode_records(&block, &mut out).unwrap();
        assert_eq!(ids(&out), [("crate-a", "X-1")]);
        for cut in 1..block.len() {
            assert!(
                decode_records(&block[..cut], &mut Vec::new()).is_err(),
                "{cut}"
            );
        }
        // The ecosystem byte follows the id (4 + 3 bytes) and the empty alias list (4).
        let mut bad = block.clone();
        assert_eq!(bad[11], ecosystem_code(Ecosystem::CratesIo));
        bad[11] = 9;
        assert!(decode_records(&bad, &mut Vec::new()).is_err());
        // A count far beyond the record reads as cut short, without a huge allocation.
        let mut bad = block.clone();
        bad[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_records(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_hash_collision_returns_only_the_package_asked_for() {
        let all = sample();
        let mut bytes = pack(&all).unwrap();
        // Give the entry of crate-0001 the hash of crate-0000, keeping the table sorted
        // enough for this probe: both now answer crate-0000's lookup.
        let packed = Packed::new(&bytes).unwrap();
        let count = packed.entries.len() / ENTRY;
        let target = (0..count)
            .find(|&i| u64_at(packed.entries, i * ENTRY) == hash("crate-0001"))
            .unwrap();
        let mut entries: Vec<[u8; ENTRY]> = packed
            .entries
            .chunks_exact(ENTRY)
            .map(|c| c.try_into().unwrap())
            .collect();
        entries[target][..8].copy_from_slice(&hash("crate-0000").to_le_bytes());
        entries.sort_by_key(|e| u64::from_le_bytes(e[..8].try_into().unwrap()));
        bytes[HEADER..HEADER + count * ENTRY].copy_from_slice(&entries.concat());
        let about = read_about(&bytes, ["crate-0000"]).unwrap();
        assert_eq!(ids(&about), [("crate-0000", "X-0-0")]);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        for store in [true, false] {
            damaged(&pack_as(&sample(), Some(store)).unwrap());
        }
    }

    fn damaged(bytes: &[u8]) {
        let bytes = bytes.to_vec();
        assert!(read_all(b"not an index").is_err());
        assert!(read_all(&bytes[..bytes.len() / 2]).is_err());
        // The first block's (inflated) length, one more than it is.
        let mut lying = bytes.clone();
        let count = u32_at(&bytes, MAGIC.len()) as usize;
        let field = HEADER + count * ENTRY + 8;
        lying[field..field + 4].copy_from_slice(&(u32_at(&bytes, field) + 1).to_le_bytes());
        assert!(read_all(&lying).is_err());
        assert!(read_about(&lying, ["crate-0000"]).is_err());
        let mut truncated_tables = bytes[..HEADER].to_vec();
        truncated_tables.extend_from_slice(&[0; 7]);
        assert!(Packed::new(&truncated_tables).is_err());
    }
}
