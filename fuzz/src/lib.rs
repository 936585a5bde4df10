//! Fuzz targets for `depfw audit`'s lockfile parsers: `.ci/fuzz-smoke.sh` runs one per
//! [`LockfileKind`], because lockfiles come from the repositories being audited and must
//! never crash the auditor. Every target feeds the lossy UTF-8 of the input to
//! [`parse_lockfile`] and only requires that it returns.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use depfw::audit::parse_lockfile;
pub use depfw::audit::LockfileKind;
pub use libfuzzer_sys;

/// Defines the fuzz target for one lockfile kind.
#[macro_export]
macro_rules! lockfile_target {
    ($kind:ident) => {
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            $crate::parse($crate::LockfileKind::$kind, data);
        });
    };
}

/// Parses `data` as `kind`; errors are expected, panics are the bugs being hunted.
pub fn parse(kind: LockfileKind, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_lockfile(&lockfile_path(kind), kind, &text);
}

/// Requirements files resolve `-r`/`-c` includes next to themselves: put them in an empty
/// directory so the fuzzer cannot read (or loop over) real files.
fn lockfile_path(kind: LockfileKind) -> PathBuf {
    static EMPTY_DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    match (kind, EMPTY_DIR.get_or_init(|| tempfile::tempdir().ok())) {
        (LockfileKind::Requirements, Some(dir)) => dir.path().join("requirements.txt"),
        _ => Path::new("fuzz").to_owned(),
    }
}
