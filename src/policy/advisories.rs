//! TODO: the advisories check (being written).
