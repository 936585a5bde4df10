//! TODO: the reputation check (being written).
