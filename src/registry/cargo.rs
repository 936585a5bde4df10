//! TODO: the cargo registry protocol (being written).
