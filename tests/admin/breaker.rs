//! The per-agent circuit breaker: limits, sliding windows, and the suspension it leads to.

use chrono::{DateTime, Duration, TimeZone, Utc};
use depfw::agents::{
    AuthError, BreakerEvent, BreakerLimits, BreakerState, CircuitBreaker, Limit, PolicyPreset,
};
use depfw::package::{Ecosystem, PackageName};
use depfw::store::agents::AgentStore;
use depfw::store::Store;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn npm(name: &str) -> PackageName {
    PackageName::parse(Ecosystem::Npm, name).unwrap()
}

fn limits(packages: u32, refusals: u32) -> BreakerLimits {
    BreakerLimits {
        max_new_packages_per_hour: packages,
        max_refusals_per_hour: refusals,
    }
}

#[test]
fn new_packages_trip_past_the_limit_and_not_before() {
    let mut breaker = CircuitBreaker::new(limits(3, 0));
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let now = t0() + Duration::minutes(i as i64);
        assert_eq!(
            breaker.record("bot", BreakerEvent::Package(&npm(name)), now),
            BreakerState::Closed
        );
    }
    // Asking again about known packages is not new.
    for name in ["a", "b", "c", "a"] {
        assert_eq!(
            breaker.record("bot", BreakerEvent::Package(&npm(name)), t0()),
            BreakerState::Closed
        );
    }
    let state = breaker.record("bot", BreakerEvent::Package(&npm("d")), t0());
    assert_eq!(
        state,
        BreakerState::Tripped {
            limit: Limit::NewPackages,
            count: 4,
            max: 3
        }
    );
    assert!(state.reason().unwrap().contains("4 new packages"));
    // Other agents have their own counters.
    assert_eq!(
        breaker.record("other", BreakerEvent::Package(&npm("d")), t0()),
        BreakerState::Closed
    );
}

#[test]
fn package_identity_uses_the_normalised_name() {
    let mut breaker = CircuitBreaker::new(limits(1, 0));
    let pypi = |n: &str| PackageName::parse(Ecosystem::PyPI, n).unwrap();
    breaker.record("bot", BreakerEvent::Package(&pypi("Django")), t0());
    assert!(!breaker
        .record("bot", BreakerEvent::Package(&pypi("django")), t0())
        .is_tripped());
    // The same name in another ecosystem is another package.
    assert!(breaker
        .record("bot", BreakerEvent::Package(&npm("django")), t0())
        .is_tripped());
}

#[test]
fn windows_slide() {
    let mut breaker = CircuitBreaker::new(limits(2, 2));
    breaker.record("bot", BreakerEvent::Refused, t0());
    breaker.record("bot", BreakerEvent::Refused, t0() + Duration::minutes(30));
    // The first refusal is out of the window an hour later.
    assert_eq!(
        breaker.record("bot", BreakerEvent::Refused, t0() + Duration::minutes(60)),
        BreakerState::Closed
    );
    assert_eq!(
        breaker.record("bot", BreakerEvent::Refused, t0() + Duration::minutes(61)),
        BreakerState::Tripped {
            limit: Limit::Refusals,
            count: 3,
            max: 2
        }
    );

    breaker.record("p", BreakerEvent::Package(&npm("a")), t0());
    breaker.record("p", BreakerEvent::Package(&npm("b")), t0());
    // `a` was last asked about over an hour ago, so `c` makes two, not three.
    assert!(!breaker
        .record(
            "p",
            BreakerEvent::Package(&npm("c")),
            t0() + Duration::minutes(61)
        )
        .is_tripped());
}

#[test]
fn zero_turns_a_limit_off_and_reset_forgets() {
    let mut breaker = CircuitBreaker::new(limits(0, 1));
    for i in 0..500 {
        let name = npm(&format!("pkg-{i}"));
        assert!(!breaker
            .record("bot", BreakerEvent::Package(&name), t0())
            .is_tripped());
    }
    breaker.record("bot", BreakerEvent::Refused, t0());
    assert!(breaker
        .record("bot", BreakerEvent::Refused, t0())
        .is_tripped());
    breaker.reset("bot");
    assert!(!breaker
        .record("bot", BreakerEvent::Refused, t0())
        .is_tripped());
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = depfw::config::Config::default();
    assert_eq!(config.agents.limits, BreakerLimits::default());
    assert_eq!(config.agents.limits.max_new_packages_per_hour, 2000);
    assert_eq!(config.agents.limits.max_refusals_per_hour, 50);
}

#[test]
fn a_trip_suspends_the_agent_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let store = Store::open(dir.path()).unwrap();
        let agents = AgentStore::new(&store).unwrap();
        let (_, token) = agents.add("runaway", PolicyPreset::Default).unwrap();
        let mut breaker = CircuitBreaker::new(limits(0, 2));
        let mut tripped = None;
        for i in 0..5 {
            let state = breaker.record(
                "runaway",
                BreakerEvent::Refused,
                t0() + Duration::seconds(i),
            );
            if state.is_tripped() {
                tripped = Some(i);
                agents.suspend("runaway", &state.reason().unwrap()).unwrap();
                break;
            }
        }
        assert_eq!(tripped, Some(2));
        token
    };
    let store = Store::open(dir.path()).unwrap();
    let agents = AgentStore::new(&store).unwrap();
    match agents.authenticate(token.expose_secret()) {
        Err(AuthError::Suspended(agent)) => {
            assert!(agent.suspended.unwrap().reason.contains("refused requests"))
        }
        other => panic!("expected a suspension, got {other:?}"),
    }
}
