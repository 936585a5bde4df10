//! The heap bytes a parsed document holds, so that `depfw serve`'s parse cache
//! (`upstream.parse-cache-bytes`) is bounded by what its documents really take rather than
//! by the size of the upstream body they came from (a `serde_json::Value` tree is 5–10
//! times larger than its JSON).
//!
//! Counted: the capacity of every owned `String`, `Vec`, `Box` and map, recursively, plus
//! hash tables' slots. Not counted: the allocator's own per-allocation overhead (8–16 bytes
//! per allocation with glibc). Types from other crates (`semver`, `pep440_rs`, `url`) are
//! counted by their text length, what they store inline or in one allocation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::mem::size_of;

use serde_json::{Map, Value};

use super::{ArtifactRecord, Digest, VersionRecord};
use crate::package::Version;
use crate::policy::VersionMetadata;

/// Bytes on the heap owned by a value (not counting the value itself).
pub(crate) trait HeapSize {
    fn heap_size(&self) -> usize;
}

impl HeapSize for String {
    fn heap_size(&self) -> usize {
        self.capacity()
    }
}

impl<T: HeapSize> HeapSize for Option<T> {
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, HeapSize::heap_size)
    }
}

impl<T: HeapSize> HeapSize for Vec<T> {
    fn heap_size(&self) -> usize {
        self.capacity() * size_of::<T>() + self.iter().map(HeapSize::heap_size).sum::<usize>()
    }
}

impl<T: HeapSize> HeapSize for Box<T> {
    fn heap_size(&self) -> usize {
        size_of::<T>() + (**self).heap_size()
    }
}

impl HeapSize for u8 {
    fn heap_size(&self) -> usize {
        0
    }
}

impl HeapSize for u64 {
    fn heap_size(&self) -> usize {
        0
    }
}

impl<K: HeapSize, V: HeapSize> HeapSize for BTreeMap<K, V> {
    fn heap_size(&self) -> usize {
        // A B-tree node holds up to 11 pairs; count each pair once and nodes a third empty.
        self.iter()
            .map(|(k, v)| size_of::<(K, V)>() * 3 / 2 + k.heap_size() + v.heap_size())
            .sum()
    }
}

impl<K: HeapSize, V: HeapSize, S> HeapSize for HashMap<K, V, S> {
    fn heap_size(&self) -> usize {
        self.capacity() * (size_of::<(K, V)>() + 1)
            + self
                .iter()
                .map(|(k, v)| k.heap_size() + v.heap_size())
                .sum::<usize>()
    }
}

impl<T: HeapSize, S> HeapSize for HashSet<T, S> {
    fn heap_size(&self) -> usize {
        self.capacity() * (size_of::<T>() + 1) + self.iter().map(HeapSize::heap_size).sum::<usize>()
    }
}

impl HeapSize for Value {
    fn heap_size(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(s) => s.heap_size(),
            Value::Array(a) => a.heap_size(),
            Value::Object(o) => o.heap_size(),
        }
    }
}

impl HeapSize for Map<String, Value> {
    fn heap_size(&self) -> usize {
        self.iter()
            .map(|(k, v)| size_of::<(String, Value)>() * 3 / 2 + k.heap_size() + v.heap_size())
            .sum()
    }
}

impl HeapSize for Version {
    fn heap_size(&self) -> usize {
        match self {
            Version::Semver(v) => {
                // Identifiers of up to 8 bytes are stored inline.
                let ident = |len: usize| if len > 8 { len + 8 } else { 0 };
                ident(v.pre.len()) + ident(v.build.len())
            }
            // One shared allocation holding the segments and text parts.
            Version::Pep440(v) => 64 + v.to_string().len(),
        }
    }
}

impl HeapSize for Digest {
    fn heap_size(&self) -> usize {
        match self {
            Digest::Sha512(b) | Digest::Sha256(b) | Digest::Sha1(b) => b.heap_size(),
        }
    }
}

impl HeapSize for ArtifactRecord {
    fn heap_size(&self) -> usize {
        self.filename.heap_size() + self.upstream_url.heap_size() + self.digest.heap_size()
    }
}

impl HeapSize for VersionMetadata {
    fn heap_size(&self) -> usize {
        self.license.heap_size() + self.deprecated.heap_size() + self.yanked.heap_size()
    }
}

impl HeapSize for VersionRecord {
    fn heap_size(&self) -> usize {
        self.version_text.heap_size()
            + self.version.heap_size()
            + self.metadata.heap_size()
            + self.artifacts.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nested_json_and_strings() {
        let small: Value = serde_json::json!({"a": "x"});
        let big: Value = serde_json::json!({"a": "x".repeat(1000), "b": [1, 2, 3]});
        assert!(small.heap_size() > 0);
        assert!(big.heap_size() >= 1000 + 3 * size_of::<Value>());
        let s = String::with_capacity(100);
        assert_eq!(s.heap_size(), 100);
        assert_eq!(
            vec![String::with_capacity(10)].heap_size(),
            size_of::<String>() + 10
        );
    }
}
