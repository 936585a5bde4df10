//! The Prometheus metrics `depfw serve` keeps, and their text exposition.
//!
//! One set per process ([`metrics`]): the hooks that count sit deep in the proxy (the
//! upstream client, the caches, the decision log), and a process serves one proxy at a time
//! (a reopened store builds a new one, whose counts go on). Every label is from a small,
//! fixed set (ecosystem, route, status, verdict, finding code, fault) or names an agent,
//! which only an operator creates; package names and versions are never labels.
//!
//! Counting is an atomic add on a label set that is found by hash without allocating
//! (labels are `&'static str`s and integers), except the agent label of decision counts,
//! which come with a decision record that allocates far more.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request to the mirror.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `npm`, `pypi`, `cargo`, or `none` (health checks, unknown paths).
    pub ecosystem: &'static str,
    /// `metadata`, `artifact`, `quirk`, `agent_api`, `health` or `other`.
    pub route: &'static str,
    pub status: u16,
}

/// [`RequestLabels`] without the status, for durations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub ecosystem: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabels {
    pub ecosystem: String,
    /// `metadata`, `artifact`, … (the record's kind).
    pub kind: &'static str,
    pub verdict: &'static str,
    /// The agent's name, or `anonymous`.
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FindingLabels {
    pub code: String,
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FaultLabel {
    /// `timeout`, `connect`, `status_4xx`, `status_5xx`, `too_large`, `invalid`,
    /// `integrity` or `io`.
    pub fault: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub cache: &'static str,
    /// `hit`, `miss` or `renewed` (see [`crate::observe::cache_renewed`]).
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabel {
    pub cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AgentLabel {
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DurableLabel {
    /// `true` for an append that waited for the disk (artifacts), `false` for metadata.
    pub durable: &'static str,
}

/// Histograms by label set, each with the [`latency`] buckets.
pub(crate) type Timed<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to about 33 s: a cached response, a durable append and a slow upstream alike.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

fn timed<L: Clone + std::hash::Hash + Eq>() -> Timed<L> {
    Family::new_with_constructor(latency)
}

/// Every metric, by name (see the README's "Observability" and `docs/grafana-dashboard.json`).
pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Timed<RouteLabels>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub findings: Family<FindingLabels, Counter>,
    pub append_seconds: Timed<DurableLabel>,
    pub upstream_seconds: Timed<KindLabel>,
    pub upstream_errors: Family<FaultLabel, Counter>,
    pub cache_lookups: Family<CacheLabels, Counter>,
    pub cache_evictions: Family<CacheLabel, Counter>,
    pub cache_bytes: Family<CacheLabel, Gauge>,
    pub breaker_trips: Family<AgentLabel, Counter>,
    pub feed_age: Family<SourceLabel, Gauge>,
    pub siem_backlog: Gauge,
    pub siem_sent: Counter,
    pub siem_dropped: Counter,
    pub siem_errors: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_seconds: timed(),
            decisions: Family::default(),
            findings: Family::default(),
            append_seconds: timed(),
            upstream_seconds: timed(),
            upstream_errors: Family::default(),
            cache_lookups: Family::default(),
            cache_evictions: Family::default(),
            cache_bytes: Family::default(),
            breaker_trips: Family::default(),
            feed_age: Family::default(),
            siem_backlog: Gauge::default(),
            siem_sent: Counter::default(),
            siem_dropped: Counter::default(),
            siem_errors: Counter::default(),
        };
        let r = &mut m.registry;
        // Counters get `_total` appended by the encoder.
        r.register(
            "depfw_http_requests",
            "Requests to the mirror, by ecosystem, route and status",
            m.requests.clone(),
        );
        r.register(
            "depfw_http_request_duration_seconds",
            "Time to the response head on the mirror, by ecosystem and route",
            m.request_seconds.clone(),
        );
        r.register(
            "depfw_decisions",
            "Decision records appended, by ecosystem, kind, verdict and agent",
            m.decisions.clone(),
        );
        r.register(
            "depfw_findings",
            "Findings in appended decision records, by code and agent",
            m.findings.clone(),
        );
        r.register(
            "depfw_decision_append_duration_seconds",
            "Time to append a decision record (durable: waited for the disk or the database)",
            m.append_seconds.clone(),
        );
        r.register(
            "depfw_upstream_request_duration_seconds",
            "Time from sending a request upstream to its response head, by kind",
            m.upstream_seconds.clone(),
        );
        r.register(
            "depfw_upstream_errors",
            "Upstream requests that failed, by fault",
            m.upstream_errors.clone(),
        );
        r.register(
            "depfw_cache_lookups",
            "Cache lookups, by cache and result (hit, miss, or renewed: past its TTL, checked and kept)",
            m.cache_lookups.clone(),
        );
        r.register(
            "depfw_cache_evictions",
            "Entries evicted to stay within a cache's bounds",
            m.cache_evictions.clone(),
        );
        r.register(
            "depfw_cache_bytes",
            "Bytes a cache holds, as counted against its bound (sampled at scrape)",
            m.cache_bytes.clone(),
        );
        r.register(
            "depfw_breaker_trips",
            "Circuit-breaker trips that suspended an agent",
            m.breaker_trips.clone(),
        );
        r.register(
            "depfw_feed_age_seconds",
            "Seconds since each advisory source's data in use was fetched (sampled at scrape)",
            m.feed_age.clone(),
        );
        r.register(
            "depfw_siem_backlog_records",
            "Decision records waiting for the SIEM sink",
            m.siem_backlog.clone(),
        );
        r.register(
            "depfw_siem_sent_records",
            "Decision records the SIEM sink took",
            m.siem_sent.clone(),
        );
        r.register(
            "depfw_siem_dropped_records",
            "Decision records not streamed because the SIEM buffer was full",
            m.siem_dropped.clone(),
        );
        r.register(
            "depfw_siem_errors",
            "Failed attempts to hand a batch to the SIEM sink (each retried)",
            m.siem_errors.clone(),
        );
        m.declare_fixed_series();
        m
    }

    /// Creates every series whose labels are known in advance, at zero: a series that
    /// appears only with its first event breaks `rate()` and alerts on it until then.
    fn declare_fixed_series(&self) {
        for fault in [
            "timeout",
            "connect",
            "status_4xx",
            "status_5xx",
            "too_large",
            "invalid",
            "integrity",
            "io",
        ] {
            let _ = self.upstream_errors.get_or_create(&FaultLabel { fault });
        }
        for kind in ["metadata", "artifact"] {
            let _ = self.upstream_seconds.get_or_create(&KindLabel { kind });
        }
        for durable in ["true", "false"] {
            let _ = self.append_seconds.get_or_create(&DurableLabel { durable });
        }
        for cache in ["render", "artifact"] {
            for result in ["hit", "miss"] {
                let _ = self
                    .cache_lookups
                    .get_or_create(&CacheLabels { cache, result });
            }
        }
        for cache in ["metadata", "artifact"] {
            let _ = self.cache_evictions.get_or_create(&CacheLabel { cache });
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`].
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}
