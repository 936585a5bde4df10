//! TODO: the pypi registry protocol (being written).
