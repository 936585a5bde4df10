//! The upstream metadata cache of `depfw serve`: every packument, project page and index
//! file as upstream last sent it, with its validator, so a warm request costs no upstream
//! round trip and a stale one only a `304` revalidation.
//!
//! It is bounded by the bytes it holds (`upstream.metadata-cache-bytes`: each body's length,
//! its URL and validator, plus the entry's fixed size), and by entries
//! (`upstream.metadata-cache-entries`); past either bound the least recently used entry is
//! evicted. A body larger than the whole byte budget is served but not kept. Bodies are
//! [`Bytes`]: what the parsed documents ([`super::pipeline::Served`]) keep of a body is the
//! same allocation, not a copy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A cached body within its TTL.
#[derive(Clone)]
pub(crate) struct Hit {
    pub body: Bytes,
    pub generation: u64,
}

/// A cached body past its TTL, to revalidate with its validator.
pub(crate) struct Stale {
    pub body: Bytes,
    pub validator: Option<String>,
    pub generation: u64,
    /// When the body was last fetched or revalidated (for stale-if-error's grace).
    pub checked: Instant,
}

struct Entry {
    body: Bytes,
    validator: Option<String>,
    checked: Instant,
    generation: u64,
    /// Position in the recency order (`Inner::order`).
    tick: u64,
    weight: usize,
}

struct Inner {
    map: HashMap<String, Entry>,
    /// Recency order: tick → URL; the first is the least recently used.
    order: BTreeMap<u64, String>,
    next_tick: u64,
    bytes: usize,
}

/// Upstream metadata bodies by URL, bounded by bytes and entries (see the module docs).
pub(crate) struct MetadataCache {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_bytes: usize,
    max_entries: usize,
}

/// What an entry costs: its body, key and validator on the heap, the entry itself and its
/// place in the recency order.
fn weight(url: &str, body: &Bytes, validator: Option<&str>) -> usize {
    body.len()
        + 2 * url.len()
        + validator.map_or(0, str::len)
        + std::mem::size_of::<Entry>()
        + std::mem::size_of::<(u64, String)>()
}

impl MetadataCache {
    pub(crate) fn new(max_bytes: u64, max_entries: u64, ttl: Duration) -> MetadataCache {
        MetadataCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: BTreeMap::new(),
                next_tick: 0,
                bytes: 0,
            }),
            ttl,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body of `url`: fresh (within the TTL), or stale with its validator.
    pub(crate) fn lookup(&self, url: &str) -> (Option<Hit>, Option<Stale>) {
        let mut inner = self.lock();
        let tick = inner.next_tick;
        let Some(e) = inner.map.get_mut(url) else {
            return (None, None);
        };
        let old_tick = std::mem::replace(&mut e.tick, tick);
        let found = if e.checked.elapsed() < self.ttl {
            (
                Some(Hit {
                    body: e.body.clone(),
                    generation: e.generation,
                }),
                None,
            )
        } else {
            (
                None,
                Some(Stale {
                    body: e.body.clone(),
                    validator: e.validator.clone(),
                    generation: e.generation,
                    checked: e.checked,
                }),
            )
        };
        inner.next_tick += 1;
        if let Some(key) = inner.order.remove(&old_tick) {
            inner.order.insert(tick, key);
        }
        found
    }

    /// Keeps `body` for `url`, checked now, evicting the least recently used entries while
    /// over a bound. A body that alone exceeds the byte bound is not kept (and an older body
    /// of the same URL is dropped).
    pub(crate) fn store(&self, url: &str, body: Bytes, validator: Option<String>, generation: u64) {
        let w = weight(url, &body, validator.as_deref());
        let mut inner = self.lock();
        remove(&mut inner, url);
        if w > self.max_bytes {
            return;
        }
        while !inner.map.is_empty()
            && (inner.map.len() >= self.max_entries || inner.bytes + w > self.max_bytes)
        {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.weight;
            }
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        inner.order.insert(tick, url.to_owned());
        inner.bytes += w;
        inner.map.insert(
            url.to_owned(),
            Entry {
                body,
                validator,
                checked: Instant::now(),
                generation,
                tick,
                weight: w,
            },
        );
    }

    /// Drops `url`'s body, e.g. one that failed to parse, so the next request refetches.
    pub(crate) fn forget(&self, url: &str) {
        remove(&mut self.lock(), url);
    }

    /// The bytes held, as counted against `upstream.metadata-cache-bytes`.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

fn remove(inner: &mut Inner, url: &str) {
    if let Some(old) = inner.map.remove(url) {
        inner.order.remove(&old.tick);
        inner.bytes -= old.weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn stays_under_its_byte_bound_evicting_least_recently_used() {
        let max = 10_000;
        let cache = MetadataCache::new(max as u64, 1_000, Duration::from_secs(60));
        for i in 0..50 {
            cache.store(&format!("u{i}"), body(1_000), None, i);
            assert!(cache.bytes() <= max, "{} > {max} after {i}", cache.bytes());
            // u0 is read after every store: always the most recently used.
            assert!(cache.lookup("u0").0.is_some(), "u0 evicted after {i}");
        }
        assert!(
            cache.lookup("u1").0.is_none(),
            "the oldest unread went first"
        );
        assert!(cache.lookup("u49").0.is_some());
        let held = (0..50)
            .filter(|i| cache.lookup(&format!("u{i}")).0.is_some())
            .count();
        assert!(held >= 8, "the budget is used, {held} held");
    }

    #[test]
    fn a_body_larger_than_the_bound_is_not_kept() {
        let cache = MetadataCache::new(5_000, 10, Duration::from_secs(60));
        cache.store("small", body(100), None, 1);
        cache.store("big", body(10_000), None, 2);
        assert!(cache.lookup("big").0.is_none());
        assert!(cache.lookup("small").0.is_some(), "nothing evicted for it");
        cache.store("small", body(6_000), None, 3);
        assert!(
            cache.lookup("small").0.is_none(),
            "the older body is dropped"
        );
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn entry_bound_and_ttl_and_forget() {
        let cache = MetadataCache::new(1 << 20, 2, Duration::from_secs(60));
        cache.store("a", body(1), Some("\"e\"".into()), 1);
        cache.store("b", body(1), None, 2);
        cache.store("c", body(1), None, 3);
        assert!(
            cache.lookup("a").0.is_none(),
            "entry bound evicts the oldest"
        );
        cache.forget("b");
        assert!(cache.lookup("b").0.is_none());
        assert_eq!(cache.lookup("c").0.map(|h| h.generation), Some(3));

        let stale = MetadataCache::new(1 << 20, 2, Duration::ZERO);
        stale.store("a", body(1), Some("\"e\"".into()), 7);
        let (hit, old) = stale.lookup("a");
        assert!(hit.is_none());
        let old = old.unwrap();
        assert_eq!(
            (old.validator.as_deref(), old.generation),
            (Some("\"e\""), 7)
        );
    }
}
