//! How strong the published digest behind a download is. Every artifact depfw serves is
//! verified against its registry's published digest, but the oldest npm versions publish
//! only a SHA-1 `dist.shasum`, for which collisions can be made: such downloads are served
//! (refusing them would break old lockfiles) with a `weak-integrity` finding in their
//! decision record, so that `depfw log show` and an auditor see which bytes rest on SHA-1.

use crate::diag::{Code, Finding, Severity, Verdict};
use crate::registry::Digest;
use crate::store::decisions::DecisionRecord;

/// Adds the `weak-integrity` finding to `rec` when `digest` is SHA-1, raising an `allow`
/// verdict to `warn`.
pub(crate) fn note_weak_digest(rec: &mut DecisionRecord, digest: &Digest) {
    if !matches!(digest, Digest::Sha1(_)) {
        return;
    }
    rec.findings.push(Finding::new(
        Code::WeakIntegrity,
        Severity::Low,
        Verdict::Warn,
        "the registry publishes only a SHA-1 checksum (no sha512 integrity) for this artifact"
            .to_owned(),
    ));
    rec.verdict = rec.verdict.max(Verdict::Warn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha1_digests_are_weak() {
        let mut rec: DecisionRecord = serde_json::from_value(serde_json::json!({
            "seq": 0, "time": "2026-01-01T00:00:00Z", "request_id": "r",
            "client": {"user_agent": null, "command": null, "agent": null},
            "kind": "artifact", "ecosystem": "npm", "package": "p", "version": "1.0.0",
            "verdict": "allow", "findings": [], "sha256": null, "sha512": null,
            "upstream_url": null, "outcome": "refused"
        }))
        .unwrap();
        note_weak_digest(&mut rec, &Digest::Sha512(vec![0; 64]));
        assert!(rec.findings.is_empty());
        note_weak_digest(&mut rec, &Digest::Sha1(vec![0; 20]));
        assert_eq!(rec.findings[0].code, Code::WeakIntegrity);
        assert_eq!(rec.verdict, Verdict::Warn);
    }
}
