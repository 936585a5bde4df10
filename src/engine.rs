//! Builds a Policy from config and feeds (being written).
