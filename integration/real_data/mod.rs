//! Measurements on the shared public data set (`../shared/data`, or `DEPFW_SHARED_DATA`):
//! real OSV records from RustSec, PyPA and the OSSF malicious-packages feed, and the
//! popular-package lists. Each test here needs the data set and is ignored (or, under CI,
//! failed) without it.

mod advisories;
mod store_lookup;
mod typosquat;

pub fn trials() -> Vec<libtest_mimic::Trial> {
    [
        advisories::trials(),
        store_lookup::trials(),
        typosquat::trials(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
