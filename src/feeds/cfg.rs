//! `[feeds]`: where advisory feeds come from, as written and validated.

use serde::Deserialize;
use url::Url;

use crate::diag::problems::Problems;

/// `[feeds]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFeeds {
    pub bundled: bool,
    pub sources: Vec<RawFeedSource>,
    pub stale_after_days: u64,
    pub refresh_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawFeedSource {
    pub name: String,
    pub url: String,
}

impl Default for RawFeeds {
    fn default() -> Self {
        let osv = |eco: &str| RawFeedSource {
            name: format!("osv-{}", eco.to_ascii_lowercase().replace('.', "-")),
            url: format!("https://osv-vulnerabilities.storage.googleapis.com/{eco}/all.zip"),
        };
        RawFeeds {
            bundled: true,
            sources: vec![osv("npm"), osv("PyPI"), osv("crates.io")],
            stale_after_days: 7,
            refresh_hours: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeedsConfig {
    /// Load the snapshot compiled into the binary when the store has no feeds.
    pub bundled: bool,
    pub sources: Vec<FeedSource>,
    pub stale_after_days: u64,
    /// `feeds.refresh-hours`: how often `depfw serve` syncs `sources` in the background;
    /// 0: never (only `depfw feeds sync`).
    pub refresh_hours: u64,
}

/// The longest `feeds.refresh-hours`: a year.
const MAX_REFRESH_HOURS: u64 = 24 * 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    pub name: String,
    pub url: Url,
}

impl RawFeeds {
    /// Checks every source, pushing each problem under its `feeds.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> FeedsConfig {
        let mut sources = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                p.push(
                    format!("feeds.sources[{i}].name"),
                    "a source name is letters, digits, `-` and `_`",
                );
            }
            if sources.iter().any(|o: &FeedSource| o.name == s.name) {
                p.push(
                    format!("feeds.sources[{i}].name"),
                    format!("duplicate source name `{}`", s.name),
                );
            }
            let url = p.url(&format!("feeds.sources[{i}].url"), &s.url);
            sources.push(FeedSource {
                name: s.name.clone(),
                url,
            });
        }
        if self.refresh_hours > MAX_REFRESH_HOURS {
            p.push(
                "feeds.refresh-hours",
                format!("at most {MAX_REFRESH_HOURS} (a year); 0 turns the refresh off"),
            );
        }
        FeedsConfig {
            bundled: self.bundled,
            sources,
            stale_after_days: self.stale_after_days,
            refresh_hours: self.refresh_hours,
        }
    }
}
