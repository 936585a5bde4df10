//! `[metrics]` and `[siem]`: who may scrape `/metrics`, and where every decision record is
//! streamed as it is appended; as written and validated.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::diag::problems::Problems;

/// `[metrics]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMetrics {
    pub token_file: Option<PathBuf>,
}

/// `[metrics]`: access to `/metrics` on the admin listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// A file whose first line is the token a scraper sends (`Authorization: Bearer`);
    /// without one, `/metrics` answers only on a loopback or Unix-socket admin listener.
    pub token_file: Option<PathBuf>,
}

impl RawMetrics {
    pub(crate) fn validate(&self, p: &mut Problems) -> MetricsConfig {
        if self
            .token_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            p.push(
                "metrics.token-file",
                "an empty path; leave the key out for none",
            );
        }
        MetricsConfig {
            token_file: self.token_file.clone(),
        }
    }
}

/// `[siem]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSiem {
    pub file: Option<PathBuf>,
    pub file_max_bytes: u64,
    pub file_keep: u32,
    pub url: Option<String>,
    pub authorization_file: Option<PathBuf>,
    pub batch_records: usize,
    pub buffer_records: usize,
}

impl Default for RawSiem {
    fn default() -> Self {
        RawSiem {
            file: None,
            file_max_bytes: 100 * 1024 * 1024,
            file_keep: 5,
            url: None,
            authorization_file: None,
            batch_records: 500,
            buffer_records: 100_000,
        }
    }
}

/// Where the decision stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiemSink {
    /// JSON lines appended to `path`; past `max_bytes` it is renamed `path.1` (older ones
    /// move up to `path.<keep>`, the oldest is removed) and a new file is started.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: u32,
    },
    /// Batches of JSON lines POSTed to `url` (`application/x-ndjson`), retried until taken;
    /// the first line of `authorization_file`, if set, is the `Authorization` header.
    Http {
        url: Url,
        authorization_file: Option<PathBuf>,
    },
}

/// `[siem]`: the decision stream; off without a `file` or `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiemConfig {
    pub sink: Option<SiemSink>,
    /// Records sent (or written) at most at once.
    pub batch_records: usize,
    /// Records held in memory while the sink is slow or down; past that, new records are
    /// dropped, counted (`depfw_siem_dropped_records_total`) and logged.
    pub buffer_records: usize,
}

impl Default for SiemConfig {
    fn default() -> Self {
        let raw = RawSiem::default();
        SiemConfig {
            sink: None,
            batch_records: raw.batch_records,
            buffer_records: raw.buffer_records,
        }
    }
}

impl RawSiem {
    pub(crate) fn validate(&self, p: &mut Problems) -> SiemConfig {
        let empty = |f: &Option<PathBuf>| f.as_ref().is_some_and(|f| f.as_os_str().is_empty());
        for (key, file) in [
            ("siem.file", &self.file),
            ("siem.authorization-file", &self.authorization_file),
        ] {
            if empty(file) {
                p.push(key, "an empty path; leave the key out for none");
            }
        }
        if self.batch_records == 0 {
            p.push("siem.batch-records", "must be at least 1");
        }
        if self.buffer_records < self.batch_records.max(1) {
            p.push(
                "siem.buffer-records",
                "must be at least `siem.batch-records`",
            );
        }
        if self.file_keep == 0 {
            p.push(
                "siem.file-keep",
                "must be at least 1 (the file rotated out last)",
            );
        }
        if self.file_max_bytes < 4096 {
            p.push("siem.file-max-bytes", "must be at least 4096");
        }
        let url = self.url.as_deref().map(|u| p.url("siem.url", u));
        if self.authorization_file.is_some() && url.is_none() {
            p.push(
                "siem.authorization-file",
                "is sent with `siem.url`, which is not set",
            );
        }
        let sink = match (&self.file, url) {
            (Some(_), Some(_)) => {
                p.push("siem.url", "set either `siem.file` or `siem.url`, not both");
                None
            }
            (Some(path), None) => Some(SiemSink::File {
                path: path.clone(),
                max_bytes: self.file_max_bytes,
                keep: self.file_keep,
            }),
            (None, Some(url)) => Some(SiemSink::Http {
                url,
                authorization_file: self.authorization_file.clone(),
            }),
            (None, None) => None,
        };
        SiemConfig {
            sink,
            batch_records: self.batch_records,
            buffer_records: self.buffer_records,
        }
    }
}
