//! TODO: the npm registry protocol (being written).
