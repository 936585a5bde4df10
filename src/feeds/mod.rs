//! Feeds: the data the checks judge by, loaded offline.
//!
//! OSV advisories (known vulnerabilities and known-malicious packages) and popular-package
//! lists. A snapshot ships in `feeds/` and is compiled in, so a fresh clone is protected
//! offline; `depfw feeds import` and `depfw feeds sync` put newer data in the store.

pub mod popular;
