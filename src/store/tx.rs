//! How every store changes sled: `depfw overrides`, `depfw quarantine approve`, `depfw agents`,
//! the admin endpoint and the proxy's decision log all write through [`transact`].
//!
//! It exists so that every change is all-or-nothing over the trees it touches, a refusal
//! comes back as the store's own typed error (never a sled type), and a change an admin is
//! told about is on disk first, in one place rather than once per store.
//!
//! sled runs the closure again when a concurrent transaction touched the same keys (its
//! own retry loop, kept as is): a closure must only read and write through its view.

use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use super::StoreError;

/// What a transaction's closure returns. `?` on a read or write of the view keeps sled's
/// meaning (retry on conflict, fail on storage errors); [`abort`] refuses.
pub(crate) type TxResult<T, E> = Result<T, ConflictableTransactionError<E>>;

/// Ends the transaction with nothing written; [`transact`] returns `error`.
pub(crate) fn abort<T, E>(error: impl Into<E>) -> TxResult<T, E> {
    Err(ConflictableTransactionError::Abort(error.into()))
}

/// Whether a change reaches the disk before [`transact`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Flushed: what an admin was told is done must survive a crash right after.
    Flushed,
    /// Left to sled's periodic flush; the caller flushes when it matters (the decision
    /// log before an artifact's first byte).
    Buffered,
}

/// The trees one transaction changes together: a tree, or a pair of them.
pub(crate) trait Trees<E>: Transactional<E> {
    /// One of them. Flushing a tree writes the whole store's log, so one is enough.
    fn first(&self) -> &sled::Tree;
}

impl<E> Trees<E> for &sled::Tree {
    fn first(&self) -> &sled::Tree {
        self
    }
}

impl<E> Trees<E> for (&sled::Tree, &sled::Tree) {
    fn first(&self) -> &sled::Tree {
        self.0
    }
}

/// Runs `change` as one transaction over `trees`: all of its writes or none. An [`abort`]
/// returns its error as is; a sled failure becomes [`StoreError::Sled`].
pub(crate) fn transact<R, T, E>(
    trees: R,
    durability: Durability,
    change: impl Fn(&R::View) -> TxResult<T, E>,
) -> Result<T, E>
where
    R: Trees<E>,
    E: From<StoreError>,
{
    let result = trees.transaction(change).map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => E::from(StoreError::Sled(e)),
    })?;
    if durability == Durability::Flushed {
        trees.first().flush().map_err(StoreError::from)?;
    }
    Ok(result)
}

/// A big-endian `u64` value (ids, counters); 0 for anything else.
pub(crate) fn read_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

/// The next id from the counter at `key` (ids start at 1, one sequence per counter).
pub(crate) fn next_id<E>(tx: &TransactionalTree, key: &[u8]) -> TxResult<u64, E> {
    let next = tx.get(key)?.map_or(0, |v| read_u64(&v)) + 1;
    tx.insert(key, &next.to_be_bytes())?;
    Ok(next)
}

/// Writes `value` as JSON at `key`; one that cannot be encoded aborts as a corrupt `what`.
pub(crate) fn put_json<E: From<StoreError>>(
    tx: &TransactionalTree,
    key: &[u8],
    value: &impl Serialize,
    what: &str,
) -> TxResult<(), E> {
    let bytes = serde_json::to_vec(value).or_else(|e| abort(StoreError::corrupt(what, e)))?;
    tx.insert(key, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[derive(Debug, thiserror::Error)]
    enum Refused {
        #[error("refused")]
        Refused,
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    #[test]
    fn an_abort_writes_nothing_and_returns_the_typed_error() {
        let store = Store::temporary().unwrap();
        let (a, b) = (store.tree("a").unwrap(), store.tree("b").unwrap());
        let result = transact((&a, &b), Durability::Flushed, |(ta, tb)| {
            ta.insert(b"k", b"v".as_slice())?;
            tb.insert(b"k", b"v".as_slice())?;
            abort::<(), _>(Refused::Refused)
        });
        assert!(matches!(result, Err(Refused::Refused)), "{result:?}");
        assert!(a.is_empty() && b.is_empty());

        let id = transact(&a, Durability::Buffered, |tx| {
            next_id::<Refused>(tx, b"id")?;
            next_id(tx, b"id")
        })
        .unwrap();
        assert_eq!(id, 2);
        assert_eq!(read_u64(&a.get(b"id").unwrap().unwrap()), 2);
    }
}
