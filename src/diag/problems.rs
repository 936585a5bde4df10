//! Problems found while validating `depfw.toml`, collected rather than returned one by one.
//!
//! `depfw serve --config FILE` (and every other command taking `--config`) reports *all*
//! the problems of a config file at once, each naming its key. Each section of the file is
//! validated by the module that owns it (a check's settings by the check, `[feeds]` by
//! `feeds`), and `config` gathers the sections, so the collector sits at the bottom where
//! every one of them can push to it.

use url::Url;

use super::Verdict;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `policy.advisories.deny-at` or `overrides.allow[1].versions`.
    pub key: String,
    pub message: String,
}

/// Collects problems during validation.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<ConfigProblem>);

impl Problems {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// A verdict (`allow`, `warn`, …); an unknown word is reported and read as `deny`.
    pub(crate) fn verdict(&mut self, key: &str, value: &str) -> Verdict {
        value.parse().unwrap_or_else(|e: String| {
            self.push(key, e);
            Verdict::Deny
        })
    }

    /// An http(s) URL; anything else is reported and replaced by a placeholder.
    pub(crate) fn url(&mut self, key: &str, value: &str) -> Url {
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            Ok(_) => {
                self.push(key, format!("`{value}` is not an http(s) URL"));
                placeholder_url()
            }
            Err(e) => {
                self.push(key, format!("`{value}` is not a URL: {e}"));
                placeholder_url()
            }
        }
    }
}

fn placeholder_url() -> Url {
    Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("constant URL"))
}
