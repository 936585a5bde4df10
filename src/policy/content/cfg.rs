//! `[policy.content]`: the content rules' settings, as written and validated.

use serde::Deserialize;

use crate::diag::problems::Problems;
use crate::diag::{Code, Verdict};

/// `[policy.content]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawContent {
    pub enabled: bool,
    pub max_unpacked_bytes: u64,
    pub max_entries: u64,
    pub max_file_bytes: u64,
    pub pth_executes_code: String,
    pub script_download_exec: String,
    pub script_decode_eval: String,
    pub script_credential_access: String,
    pub agent_config_write: String,
    pub new_native_binary: String,
    pub archive_unscannable: String,
}

impl Default for RawContent {
    fn default() -> Self {
        let q = || "quarantine".to_owned();
        RawContent {
            enabled: true,
            max_unpacked_bytes: 512 * 1024 * 1024,
            max_entries: 100_000,
            max_file_bytes: 1024 * 1024,
            pth_executes_code: q(),
            script_download_exec: q(),
            script_decode_eval: q(),
            script_credential_access: q(),
            agent_config_write: q(),
            new_native_binary: q(),
            archive_unscannable: q(),
        }
    }
}

/// The content rules' validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentConfig {
    /// Whether `depfw serve` scans artifacts at all.
    pub enabled: bool,
    /// The most bytes one archive is decompressed to; beyond it the scan stops with
    /// `archive-unscannable`.
    pub max_unpacked_bytes: u64,
    /// The most entries one archive may have.
    pub max_entries: u64,
    /// How much of one file the rules read (`.pth`, `package.json`, install scripts,
    /// `setup.py`, `build.rs`); a longer file is read only this far.
    pub max_file_bytes: u64,
    pub pth_executes_code: Verdict,
    pub script_download_exec: Verdict,
    pub script_decode_eval: Verdict,
    pub script_credential_access: Verdict,
    pub agent_config_write: Verdict,
    pub new_native_binary: Verdict,
    pub archive_unscannable: Verdict,
}

impl Default for ContentConfig {
    fn default() -> Self {
        let mut p = Problems::default();
        RawContent::default().validate(&mut p)
    }
}

impl ContentConfig {
    /// The configured verdict for one of the content codes; the code's default for any
    /// other code (a finding read back from the store).
    pub fn verdict_for(&self, code: &Code) -> Verdict {
        match code {
            Code::PthExecutesCode => self.pth_executes_code,
            Code::ScriptDownloadExec => self.script_download_exec,
            Code::ScriptDecodeEval => self.script_decode_eval,
            Code::ScriptCredentialAccess => self.script_credential_access,
            Code::AgentConfigWrite => self.agent_config_write,
            Code::NewNativeBinary => self.new_native_binary,
            Code::ArchiveUnscannable => self.archive_unscannable,
            other => other.default_verdict(),
        }
    }
}

impl RawContent {
    /// Checks every value, pushing each problem under its `policy.content.*` key.
    pub(crate) fn validate(&self, p: &mut Problems) -> ContentConfig {
        for (key, value) in [
            ("policy.content.max-unpacked-bytes", self.max_unpacked_bytes),
            ("policy.content.max-entries", self.max_entries),
            ("policy.content.max-file-bytes", self.max_file_bytes),
        ] {
            if value == 0 {
                p.push(
                    key,
                    "must be above 0 (set `enabled = false` to turn scanning off)",
                );
            }
        }
        let v = |p: &mut Problems, key: &str, value: &str| {
            p.verdict(&format!("policy.content.{key}"), value)
        };
        ContentConfig {
            enabled: self.enabled,
            max_unpacked_bytes: self.max_unpacked_bytes,
            max_entries: self.max_entries,
            max_file_bytes: self.max_file_bytes,
            pth_executes_code: v(p, "pth-executes-code", &self.pth_executes_code),
            script_download_exec: v(p, "script-download-exec", &self.script_download_exec),
            script_decode_eval: v(p, "script-decode-eval", &self.script_decode_eval),
            script_credential_access: v(
                p,
                "script-credential-access",
                &self.script_credential_access,
            ),
            agent_config_write: v(p, "agent-config-write", &self.agent_config_write),
            new_native_binary: v(p, "new-native-binary", &self.new_native_binary),
            archive_unscannable: v(p, "archive-unscannable", &self.archive_unscannable),
        }
    }
}
