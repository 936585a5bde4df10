//! TODO: the license check (being written).
