//! TODO: pnpm lockfile parser (being written).

use std::path::Path;

use super::{LockedPackage, ParseError};

pub fn parse(path: &Path, _text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    Err(ParseError::new(
        path,
        None,
        "this lockfile format is not supported yet",
    ))
}
