//! TODO: the typosquat check (being written).
