//! Reports of `depfw audit`: a human table, JSON, SARIF 2.1.0 and CycloneDX 1.6 (which
//! `depfw log sbom` writes too).
//!
//! The audit command gathers one [`AuditReport`]; the renderers here only format it, so the
//! outputs always agree.

pub mod cyclonedx;
mod human;
mod json;
mod sarif;

// The report is what the audit run (`crate::audit::run`) gathers; re-exported here, where
// it is rendered.
pub use crate::audit::report::{AuditReport, AuditResult, LockfileSummary, VerdictCounts};
pub use cyclonedx::render_cyclonedx;
pub use human::{render_human, render_human_width};
pub use json::render_json;
pub use sarif::{render_sarif, render_sarif_with_root};
