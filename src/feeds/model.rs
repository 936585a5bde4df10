//! The compact advisory model: the facts a check needs, nothing a person reads.
//!
//! OSV records carry prose (summary, details, references) that depfw never shows and the
//! bundled snapshot must not ship. Loading keeps only identity, affected versions, kind,
//! severity and dates, one [`Advisory`] per (record, affected package). The matcher (parsed
//! versions) is compiled when the advisory enters an [`crate::feeds::AdvisoryIndex`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diag::Severity;
use crate::package::Ecosystem;

use super::matcher::{AffectedRange, Matcher};

/// What an advisory says about a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvisoryKind {
    /// A known-malicious package or version (OSV `MAL-` records, ossf lists).
    Malicious,
    /// A security vulnerability.
    Vulnerability,
    /// RustSec informational: the crate is unmaintained.
    Unmaintained,
    /// RustSec informational: the crate has unsound APIs.
    Unsound,
    /// RustSec informational: any other notice.
    Notice,
}

impl AdvisoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdvisoryKind::Malicious => "malicious",
            AdvisoryKind::Vulnerability => "vulnerability",
            AdvisoryKind::Unmaintained => "unmaintained",
            AdvisoryKind::Unsound => "unsound",
            AdvisoryKind::Notice => "notice",
        }
    }
}

/// One advisory about one package: facts only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub ecosystem: Ecosystem,
    /// The normalised package key (`crate::package::normalize`).
    pub package: String,
    pub kind: AdvisoryKind,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    /// Affected ranges; with `versions`, OR-ed together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<AffectedRange>,
    /// Explicitly listed affected versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Every version is affected: an `affected` entry named the package with neither ranges
    /// nor versions (how `MAL-` records and the ossf name lists say "all versions").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_versions: bool,
    /// Parsed form of `ranges`/`versions`; built by [`Advisory::compile`].
    #[serde(skip)]
    pub(crate) matcher: Matcher,
}

impl Advisory {
    /// The id followed by its aliases: what a finding cites and `ignore` matches.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// Parses the versions once, so that matching does not. Idempotent.
    pub fn compile(&mut self) -> usize {
        let (matcher, warnings) = Matcher::compile(
            self.ecosystem,
            &self.ranges,
            &self.versions,
            self.all_versions,
        );
        self.matcher = matcher;
        warnings
    }
}
