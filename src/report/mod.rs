//! Reports of `depfw audit`: a human table, JSON and SARIF 2.1.0.
//!
//! The audit command gathers one [`AuditReport`]; the renderers here only format it, so the
//! three outputs always agree.

mod human;
mod json;
mod sarif;

// The report is what the audit run (`crate::audit::run`) gathers; re-exported here, where
// it is rendered.
pub use crate::audit::report::{AuditReport, AuditResult, LockfileSummary, VerdictCounts};
pub use human::render_human;
pub use json::render_json;
pub use sarif::{render_sarif, render_sarif_with_root};
