//! A rendered metadata body kept as pieces of the upstream body it came from plus the few
//! bytes depfw wrote itself, so that `depfw serve` does not keep a second full copy of a
//! large document (issues #11 and #17: a 62 MB npm packument rendered in its full form is
//! almost all upstream bytes, only its tarball URLs and `time` change).
//!
//! A [`Rope`] is either one contiguous buffer ([`Rope::Flat`], what PyPI and cargo render
//! and every small document) or [`Pieces`]: ranges of the shared upstream [`Bytes`] (the
//! same allocation the metadata cache holds, not a copy) interleaved with ranges of one
//! owned buffer. The render cache hashes, gzips and serves it piece by piece
//! (`server::render_cache`), never joining it into one buffer.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// A rendered body: one buffer, or pieces of the upstream body and of depfw's own bytes.
#[derive(Clone)]
pub(crate) enum Rope {
    Flat(Bytes),
    Pieces(Arc<Pieces>),
}

/// The pieces of a [`Rope`] in order.
pub(crate) struct Pieces {
    /// The upstream body the `base` pieces are ranges of.
    base: Bytes,
    /// Everything depfw wrote (keys, rewritten URLs, filtered members), in one buffer.
    own: Bytes,
    pieces: Vec<Piece>,
    len: usize,
}

/// A range of `base` or of `own`, packed into 8 bytes: a rendering of a 190,000-version
/// packument has about four pieces per version.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u32,
    /// The length, with [`OWN`] set for a range of `own`.
    len: u32,
}

/// The bit of [`Piece::len`] that marks a range of `own`.
const OWN: u32 = 1 << 31;

/// Below this many bytes a rope is joined into one buffer: a copy of at most this much costs
/// less than keeping it apart is worth. Anything larger stays in pieces, however common:
/// kept flat, a full-form rendering is a second copy of its upstream body, and with 500
/// packuments of 158 KB that was the difference between 1.5 and 2.5 times the raw bytes in
/// resident memory (`benches/memory.sh`). The render cache serves a small rope's identity
/// form joined per response, so that this costs no warm throughput
/// (`server::render_cache`, `benches/render-ab.sh`).
const FLAT_BELOW: usize = 16 << 10;

/// The size of the chunks a [`Pieces`] body is served in.
const CHUNK: usize = 64 << 10;

impl Rope {
    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rope::Flat(b) => b.len(),
            Rope::Pieces(p) => p.len,
        }
    }

    /// Whether the rope has no bytes.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in order, as contiguous slices (one for a flat rope).
    pub(crate) fn for_each_slice(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Rope::Flat(b) => f(b),
            Rope::Pieces(p) => p.pieces.iter().for_each(|piece| f(p.slice(*piece))),
        }
    }

    /// The heap bytes this rope keeps alive: its own bytes and piece list, and the upstream
    /// body its pieces point into (shared with the caches of upstream bodies and parsed
    /// documents, but held by this rope as long as it lives).
    pub(crate) fn weight(&self) -> usize {
        match self {
            Rope::Flat(b) => b.len(),
            Rope::Pieces(p) => {
                p.base.len() + p.own.len() + p.pieces.capacity() * std::mem::size_of::<Piece>()
            }
        }
    }

    /// The whole body in one buffer (a copy, unless flat).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Rope::Flat(b) => b.clone(),
            Rope::Pieces(_) => {
                let mut out = Vec::with_capacity(self.len());
                self.for_each_slice(|s| out.extend_from_slice(s));
                Bytes::from(out)
            }
        }
    }

    /// The body as a stream of chunks, for a response.
    pub(crate) fn chunks(&self) -> RopeChunks {
        RopeChunks {
            rope: self.clone(),
            piece: 0,
            offset: 0,
            left: self.len(),
        }
    }
}

impl From<Vec<u8>> for Rope {
    fn from(mut v: Vec<u8>) -> Rope {
        // Kept for the metadata TTL and counted by its length: no spare capacity.
        v.shrink_to_fit();
        Rope::Flat(Bytes::from(v))
    }
}

impl PartialEq for Rope {
    fn eq(&self, other: &Rope) -> bool {
        self.len() == other.len() && self.to_bytes() == other.to_bytes()
    }
}

impl Eq for Rope {}

impl fmt::Debug for Rope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rope::Flat(b) => write!(f, "Rope::Flat({} bytes)", b.len()),
            Rope::Pieces(p) => write!(
                f,
                "Rope::Pieces({} bytes in {} pieces, {} own)",
                p.len,
                p.pieces.len(),
                p.own.len()
            ),
        }
    }
}

impl Pieces {
    fn slice(&self, piece: Piece) -> &[u8] {
        let (src, len) = if piece.len & OWN != 0 {
            (&self.own, piece.len & !OWN)
        } else {
            (&self.base, piece.len)
        };
        let start = piece.start as usize;
        src.get(start..start + len as usize).unwrap_or_default()
    }

    /// `piece` as a shared slice of its buffer, from `offset` on.
    fn shared(&self, piece: Piece, offset: usize) -> Bytes {
        let (src, len) = if piece.len & OWN != 0 {
            (&self.own, piece.len & !OWN)
        } else {
            (&self.base, piece.len)
        };
        let start = piece.start as usize;
        src.slice(start + offset..start + len as usize)
    }
}

/// Builds a [`Rope`] over an upstream body: ranges of it, and bytes written in between.
pub(crate) struct RopeBuilder {
    base: Bytes,
    own: Vec<u8>,
    pieces: Vec<Piece>,
    /// Where the last `own` piece ends in `own`, if the last piece is one (so that
    /// consecutive writes extend it).
    open_own: Option<usize>,
    /// Set once a range no longer fits a [`Piece`] (a body over 2 GiB): everything is then
    /// written into `own` and the rope is flat.
    flat: bool,
    /// [`FLAT_BELOW`], lowered by tests.
    flat_below: usize,
    /// What [`RopeBuilder::again`] repeats; also the start of `own` unless flat.
    stash: Vec<u8>,
}

impl RopeBuilder {
    /// A builder over `base`; `own_capacity` pre-sizes the buffer of written bytes.
    pub(crate) fn new(base: Bytes, own_capacity: usize) -> RopeBuilder {
        let flat = u32::try_from(base.len()).map_or(true, |n| n >= OWN);
        RopeBuilder {
            base,
            own: Vec::with_capacity(own_capacity),
            pieces: Vec::new(),
            open_own: None,
            flat,
            flat_below: FLAT_BELOW,
            stash: Vec::new(),
        }
    }

    /// Keeps even a small rope in pieces (tests of the pieces themselves).
    #[cfg(test)]
    pub(crate) fn keep_pieces(mut self) -> RopeBuilder {
        self.flat_below = 0;
        self
    }

    /// Appends `range` of the upstream body (nothing if it is out of bounds).
    pub(crate) fn base(&mut self, range: Range<usize>) {
        if range.is_empty() || range.end > self.base.len() {
            return;
        }
        if self.flat {
            self.own.extend_from_slice(&self.base[range]);
            return;
        }
        self.close_own();
        // Both fit: `base` is shorter than `OWN`.
        let (start, len) = (range.start as u32, (range.end - range.start) as u32);
        match self.pieces.last_mut() {
            Some(last) if last.len & OWN == 0 && last.start + last.len == start => {
                last.len += len;
            }
            _ => self.pieces.push(Piece { start, len }),
        }
    }

    /// The buffer to write depfw's own bytes into; they are appended to the rope.
    pub(crate) fn own(&mut self) -> &mut Vec<u8> {
        if self.open_own.is_none() && !self.flat {
            self.open_own = Some(self.own.len());
        }
        &mut self.own
    }

    /// A builder whose own buffer starts with `stash`, bytes a rendering repeats (the start
    /// of every tarball URL): [`RopeBuilder::again`] appends a range of them, kept once
    /// however many times it appears.
    pub(crate) fn with_stash(base: Bytes, own_capacity: usize, stash: Vec<u8>) -> RopeBuilder {
        let mut b = RopeBuilder::new(base, own_capacity + stash.len());
        if !b.flat {
            b.own.extend_from_slice(&stash);
        }
        b.stash = stash;
        b
    }

    /// Makes room for `n` more pieces at once: a list grown by doubling to a million
    /// pieces leaves the copies it outgrew behind in the allocator.
    pub(crate) fn reserve_pieces(&mut self, n: usize) {
        if !self.flat {
            self.pieces.reserve_exact(n);
        }
    }

    /// Appends `range` of the stash ([`RopeBuilder::with_stash`]).
    pub(crate) fn again(&mut self, range: Range<usize>) {
        let Some(bytes) = self.stash.get(range.clone()) else {
            return;
        };
        if self.flat {
            self.own.extend_from_slice(bytes);
            return;
        }
        self.close_own();
        if self.flat {
            // Flattened just now: the own buffer is the output.
            let bytes = &self.stash[range];
            self.own.extend_from_slice(bytes);
            return;
        }
        // The stash is at the start of the own buffer, far below `OWN`.
        if let (Ok(start), Ok(len)) = (u32::try_from(range.start), u32::try_from(range.len())) {
            self.pieces.push(Piece {
                start,
                len: len | OWN,
            });
        }
    }

    /// Ends the `own` piece being written, if any.
    fn close_own(&mut self) {
        let Some(start) = self.open_own.take() else {
            return;
        };
        let end = self.own.len();
        if end == start {
            return;
        }
        match (u32::try_from(start), u32::try_from(end - start)) {
            (Ok(s), Ok(l)) if end < OWN as usize => self.pieces.push(Piece {
                start: s,
                len: l | OWN,
            }),
            _ => self.make_flat(Some(start)),
        }
    }

    /// Rewrites what was built so far into `own` alone (a rendering over 2 GiB: correct, not
    /// compact); `open` is where a piece being written that has no [`Piece`] yet starts.
    fn make_flat(&mut self, open: Option<usize>) {
        let open = open.or(self.open_own.take());
        let mut out = Vec::with_capacity(self.own.len() + self.base.len());
        let pieces = std::mem::take(&mut self.pieces);
        let own = std::mem::take(&mut self.own);
        let view = Pieces {
            base: self.base.clone(),
            own: Bytes::from(own),
            pieces: Vec::new(),
            len: 0,
        };
        for p in pieces {
            out.extend_from_slice(view.slice(p));
        }
        if let Some(start) = open {
            out.extend_from_slice(view.own.get(start..).unwrap_or_default());
        }
        self.own = out;
        self.flat = true;
        self.open_own = None;
    }

    /// The rope; a small one, or one that had to be flattened, in one buffer.
    pub(crate) fn finish(mut self) -> Rope {
        self.close_own();
        let len = if self.flat {
            self.own.len()
        } else {
            self.pieces.iter().map(|p| (p.len & !OWN) as usize).sum()
        };
        if self.flat || len < self.flat_below {
            if !self.flat {
                self.make_flat(None);
            }
            return Rope::from(self.own);
        }
        self.own.shrink_to_fit();
        self.pieces.shrink_to_fit();
        Rope::Pieces(Arc::new(Pieces {
            base: self.base,
            own: Bytes::from(self.own),
            pieces: self.pieces,
            len,
        }))
    }
}

/// A [`Rope`] as chunks: long upstream ranges as shared slices, the rest copied together
/// into chunks of up to 64 KiB, so that a response has few frames however many pieces.
pub(crate) struct RopeChunks {
    rope: Rope,
    piece: usize,
    offset: usize,
    left: usize,
}

impl RopeChunks {
    /// The bytes not yet returned.
    pub(crate) fn remaining(&self) -> usize {
        self.left
    }
}

impl Iterator for RopeChunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let p = match &self.rope {
            Rope::Flat(b) => {
                self.left = 0;
                return Some(b.clone());
            }
            Rope::Pieces(p) => Arc::clone(p),
        };
        let mut buf: Option<BytesMut> = None;
        while let Some(&piece) = p.pieces.get(self.piece) {
            let rest = &p.slice(piece)[self.offset..];
            match &mut buf {
                None if rest.len() >= CHUNK / 2 => {
                    let out = p.shared(piece, self.offset);
                    self.piece += 1;
                    self.offset = 0;
                    self.left -= out.len();
                    return Some(out);
                }
                None => buf = Some(BytesMut::with_capacity(CHUNK)),
                // A long range comes next, shared: what is gathered goes first.
                Some(b) if rest.len() >= CHUNK / 2 && !b.is_empty() => break,
                Some(_) => {}
            }
            let Some(b) = buf.as_mut() else { break };
            let take = rest.len().min(CHUNK - b.len());
            b.extend_from_slice(&rest[..take]);
            if take == rest.len() {
                self.piece += 1;
                self.offset = 0;
            } else {
                self.offset += take;
            }
            if b.len() == CHUNK {
                break;
            }
        }
        let out = buf.map(BytesMut::freeze).unwrap_or_default();
        self.left = self.left.saturating_sub(out.len());
        if out.is_empty() {
            self.left = 0;
            return None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: usize) -> Bytes {
        Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
    }

    #[test]
    fn pieces_read_back_in_order_and_merge_neighbours() {
        let base = big(300_000);
        let mut b = RopeBuilder::new(base.clone(), 0).keep_pieces();
        let mut want = Vec::new();
        for i in 0..1000 {
            let r = i * 200..i * 200 + 150;
            b.base(r.clone());
            want.extend_from_slice(&base[r]);
            let note = format!("<{i}>");
            b.own().extend_from_slice(note.as_bytes());
            want.extend_from_slice(note.as_bytes());
            // Adjacent upstream ranges join one piece.
            b.base(250_000 + i * 10..250_000 + i * 10 + 5);
            b.base(250_000 + i * 10 + 5..250_000 + i * 10 + 10);
            want.extend_from_slice(&base[250_000 + i * 10..250_000 + i * 10 + 10]);
        }
        b.base(0..0);
        b.base(299_999..300_001);
        let rope = b.finish();
        let Rope::Pieces(p) = &rope else {
            panic!("a large rope is kept in pieces: {rope:?}")
        };
        assert_eq!(p.pieces.len(), 3000);
        assert_eq!(rope.len(), want.len());
        assert_eq!(rope.to_bytes(), want);
        let chunks: Vec<Bytes> = rope.chunks().collect();
        assert!(chunks.len() < want.len() / (CHUNK / 2));
        assert_eq!(chunks.concat(), want);
        let mut joined = Vec::new();
        rope.for_each_slice(|s| joined.extend_from_slice(s));
        assert_eq!(joined, want);
        assert!(rope.weight() < base.len() + want.len() / 2);
    }

    #[test]
    fn long_upstream_ranges_are_served_without_a_copy() {
        let base = big(500_000);
        let mut b = RopeBuilder::new(base.clone(), 0).keep_pieces();
        b.own().extend_from_slice(b"[");
        b.base(1000..401_000);
        b.own().extend_from_slice(b"]");
        let rope = b.finish();
        let chunks: Vec<Bytes> = rope.chunks().collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), base[1000..].as_ptr(), "shared");
        assert_eq!(chunks.concat(), rope.to_bytes());
    }

    #[test]
    fn a_small_rope_is_one_buffer() {
        let base = big(1000);
        let mut b = RopeBuilder::new(base.clone(), 0);
        b.base(10..20);
        b.own().extend_from_slice(b"xyz");
        let rope = b.finish();
        assert!(matches!(rope, Rope::Flat(_)));
        assert_eq!(rope.to_bytes(), [&base[10..20], b"xyz"].concat());
        assert_eq!(rope.chunks().collect::<Vec<_>>(), [rope.to_bytes()]);
        assert!(!rope.is_empty());
    }

    #[test]
    fn a_rendering_past_a_few_kilobytes_stays_in_pieces() {
        // A 158 KB packument's full form: kept flat, it would be a second copy of the
        // upstream body the caches already hold.
        let base = big(160_000);
        let mut b = RopeBuilder::new(base.clone(), 0);
        for i in 0..100 {
            b.base(i * 1_500..i * 1_500 + 1_400);
            b.own().extend_from_slice(b"\"http://depfw/x.tgz\"");
        }
        let rope = b.finish();
        assert!(rope.len() >= FLAT_BELOW);
        let Rope::Pieces(p) = &rope else {
            panic!("kept in pieces: {rope:?}")
        };
        assert_eq!(p.pieces.len(), 200);
        assert!(
            rope.weight() - base.len() < rope.len() / 10,
            "{} bytes besides the upstream body for a {}-byte rendering",
            rope.weight() - base.len(),
            rope.len()
        );
    }

    #[test]
    fn flattening_keeps_the_bytes_in_order() {
        let base = big(200_000);
        let mut b = RopeBuilder::new(base.clone(), 0);
        b.base(0..100_000);
        b.own().extend_from_slice(b"middle");
        b.base(100_000..150_000);
        b.own().extend_from_slice(b"end");
        let want = b.pieces.len();
        assert_eq!(want, 3, "the open piece is not listed yet");
        b.make_flat(None);
        let rope = b.finish();
        assert!(matches!(rope, Rope::Flat(_)));
        assert_eq!(
            rope.to_bytes(),
            [&base[..100_000], b"middle", &base[100_000..150_000], b"end"].concat()
        );
    }

    #[test]
    fn stashed_bytes_repeat_without_a_copy_and_survive_flattening() {
        let base = big(200_000);
        let build = |b: &mut RopeBuilder| {
            b.base(0..100_000);
            b.again(0..3);
            b.own().extend_from_slice(b"-x-");
            b.again(3..5);
            b.base(100_000..150_000);
            b.again(0..5);
        };
        let want = [
            &base[..100_000],
            b"pre-x-fx",
            &base[100_000..150_000],
            b"prefx",
        ]
        .concat();
        let mut b = RopeBuilder::with_stash(base.clone(), 0, b"prefx".to_vec());
        build(&mut b);
        assert_eq!(b.own.len(), 5 + 3, "the stash once, then what was written");
        assert_eq!(b.pieces.len(), 6);
        assert_eq!(b.finish().to_bytes(), want);
        // Flattened midway (an own buffer past 2 GiB), and kept small.
        let mut b = RopeBuilder::with_stash(base.clone(), 0, b"prefx".to_vec());
        b.base(0..100_000);
        b.again(0..3);
        b.make_flat(None);
        b.own().extend_from_slice(b"-x-");
        b.again(3..5);
        b.base(100_000..150_000);
        b.again(0..5);
        assert_eq!(b.finish().to_bytes(), want);
        let mut b = RopeBuilder::with_stash(base.slice(..10), 0, b"prefx".to_vec());
        b.base(0..10);
        b.again(0..5);
        b.own().push(b'!');
        assert_eq!(b.finish().to_bytes(), [&base[..10], b"prefx!"].concat());
    }
}
