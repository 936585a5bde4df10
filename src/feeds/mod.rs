//! Feeds: OSV advisories and popular-package lists (being written).
