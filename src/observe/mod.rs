//! What a platform team watches `depfw serve` with: Prometheus metrics ([`metrics`], served
//! at `/metrics` on the admin listener and counted per request by `server::observe`, which
//! also logs one line per request) and every decision record streamed to a SIEM as it is
//! appended ([`siem`], `[siem]`).
//!
//! The hooks elsewhere are one call each into the functions below, so that what is counted
//! and how lives here: the upstream client reports answers and faults, the metadata caches
//! report hits, misses and evictions, the breaker reports trips, and [`ObservedLog`] wraps
//! the decision log to count verdicts, findings and append latency on either backend.

pub(crate) mod logging;
pub(crate) mod metrics;
pub mod siem;

use std::time::Instant;

use crate::store::decisions::{ChainStatus, DecisionRecord, RecordFilter, RecordKind};
use crate::store::repo::{DecisionRepo, DecisionSubscriber};
use crate::store::signing::PublicKey;
use crate::store::StoreError;
use metrics::{
    metrics, AgentLabel, CacheLabel, CacheLabels, DecisionLabels, DurableLabel, FaultLabel,
    FindingLabels, KindLabel,
};

/// An upstream request of `kind` (`metadata` or `artifact`) got its response head.
pub(crate) fn upstream_answered(kind: &'static str, started: Instant) {
    metrics()
        .upstream_seconds
        .get_or_create(&KindLabel { kind })
        .observe(started.elapsed().as_secs_f64());
}

/// An upstream request failed with `fault` (`timeout`, `connect`, `status_4xx`, …).
pub(crate) fn upstream_failed(fault: &'static str) {
    metrics()
        .upstream_errors
        .get_or_create(&FaultLabel { fault })
        .inc();
}

/// A lookup in `cache` found (`hit`) or did not find its entry.
pub(crate) fn cache_lookup(cache: &'static str, hit: bool) {
    count_lookup(cache, if hit { "hit" } else { "miss" });
}

/// An entry of `cache` past its TTL was checked and kept: a lookup that cost an evaluation
/// but not a rendering (`result="renewed"`).
pub(crate) fn cache_renewed(cache: &'static str) {
    count_lookup(cache, "renewed");
}

fn count_lookup(cache: &'static str, result: &'static str) {
    metrics()
        .cache_lookups
        .get_or_create(&CacheLabels { cache, result })
        .inc();
}

/// An entry of `cache` was evicted to stay within its bounds.
pub(crate) fn cache_evicted(cache: &'static str) {
    metrics()
        .cache_evictions
        .get_or_create(&CacheLabel { cache })
        .inc();
}

/// `agent`'s circuit breaker tripped (the agent is suspended).
pub(crate) fn breaker_tripped(agent: &str) {
    metrics()
        .breaker_trips
        .get_or_create(&AgentLabel {
            agent: agent.to_owned(),
        })
        .inc();
}

/// The decision log as `depfw serve` uses it: every append timed, and the appended record
/// counted by verdict and finding code, on whichever backend is underneath.
pub(crate) struct ObservedLog(pub std::sync::Arc<dyn DecisionRepo>);

impl ObservedLog {
    fn timed(
        &self,
        durable: bool,
        record: &mut DecisionRecord,
        append: impl FnOnce(&dyn DecisionRepo, &mut DecisionRecord) -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        let started = Instant::now();
        let seq = append(&*self.0, record)?;
        let m = metrics();
        let durable = if durable { "true" } else { "false" };
        m.append_seconds
            .get_or_create(&DurableLabel { durable })
            .observe(started.elapsed().as_secs_f64());
        let agent = record.client.agent.as_deref().unwrap_or("anonymous");
        m.decisions
            .get_or_create(&DecisionLabels {
                ecosystem: record.ecosystem.clone(),
                kind: match record.kind {
                    RecordKind::Metadata => "metadata",
                    RecordKind::Artifact => "artifact",
                },
                verdict: record.verdict.as_str(),
                agent: agent.to_owned(),
            })
            .inc();
        for finding in &record.findings {
            m.findings
                .get_or_create(&FindingLabels {
                    code: finding.code.as_str().to_owned(),
                    agent: agent.to_owned(),
                })
                .inc();
        }
        Ok(seq)
    }
}

impl DecisionRepo for ObservedLog {
    fn append_durable(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        self.timed(true, record, |log, r| log.append_durable(r))
    }
    fn append(&self, record: &mut DecisionRecord) -> Result<u64, StoreError> {
        self.timed(false, record, |log, r| log.append(r))
    }
    fn subscribe(&self, subscriber: DecisionSubscriber) {
        self.0.subscribe(subscriber)
    }
    fn list(&self, from: u64, limit: usize) -> Result<Vec<DecisionRecord>, StoreError> {
        self.0.list(from, limit)
    }
    fn query(
        &self,
        filter: &RecordFilter,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        self.0.query(filter, limit)
    }
    fn for_each_record(
        &self,
        filter: &RecordFilter,
        each: &mut dyn FnMut(&DecisionRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.0.for_each_record(filter, each)
    }
    fn verify_signed(&self, key: Option<&PublicKey>) -> Result<ChainStatus, StoreError> {
        self.0.verify_signed(key)
    }
    fn public_key(&self) -> Option<PublicKey> {
        self.0.public_key()
    }
    fn verify_checkpoints(
        &self,
        lines: &str,
        key: Option<&PublicKey>,
    ) -> anyhow::Result<Result<usize, ChainStatus>> {
        self.0.verify_checkpoints(lines, key)
    }
}
