//! The per-agent circuit breaker: stops an agent that has gone off the rails.
//!
//! An agent in a loop (trying hallucinated names one after another, or hammering a refused
//! version) should be stopped and looked at by a human, not left to find the one name that
//! gets through. The proxy records every package an agent asks about and every request it
//! refuses; past a limit `[agents] max-new-packages-per-hour` / `max-refusals-per-hour`
//! [`CircuitBreaker::record`] returns [`BreakerState::Tripped`] and the proxy suspends the
//! agent through [`super::AgentStore::suspend`] (persisted, so it survives a restart) until
//! an admin runs `depfw agents resume`, which should also call [`CircuitBreaker::reset`].
//!
//! Windows slide over the last hour. "New packages" are distinct packages the agent has not
//! asked about within the last hour; refusals count every refused request. The counters
//! live in memory: a restart forgets them, which errs towards letting an agent run, while
//! a suspension already made is kept. Time is passed in, so tests need no clock.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::package::{Ecosystem, PackageName};

/// The length of both windows.
pub(crate) const WINDOW: Duration = Duration::hours(1);

/// Limits per agent per hour; `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerLimits {
    pub max_new_packages_per_hour: u32,
    pub max_refusals_per_hour: u32,
}

impl Default for BreakerLimits {
    /// The documented defaults: a fresh install of a large npm project asks for ~1,500
    /// packages, so 2,000 leaves room; 50 refusals an hour is far beyond a person retrying.
    fn default() -> Self {
        BreakerLimits {
            max_new_packages_per_hour: 2000,
            max_refusals_per_hour: 50,
        }
    }
}

/// Something an agent did that counts towards a limit.
#[derive(Debug, Clone, Copy)]
pub enum BreakerEvent<'a> {
    /// A request about a package (metadata or download).
    Package(&'a PackageName),
    /// A request the proxy refused (deny, quarantine, suspended agent excluded).
    Refused,
}

/// Which limit an agent went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    NewPackages,
    Refusals,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    /// Within every limit.
    Closed,
    /// Past a limit: suspend the agent.
    Tripped {
        limit: Limit,
        count: usize,
        max: u32,
    },
}

impl BreakerState {
    pub fn is_tripped(&self) -> bool {
        matches!(self, BreakerState::Tripped { .. })
    }

    /// The suspension reason to store, for a tripped state.
    pub fn reason(&self) -> Option<String> {
        match self {
            BreakerState::Closed => None,
            BreakerState::Tripped { limit, count, max } => {
                Some(match limit {
                    Limit::NewPackages => format!(
                        "circuit breaker: {count} new packages within an hour (limit {max})"
                    ),
                    Limit::Refusals => {
                        format!("circuit breaker: {count} refused requests within an hour (limit {max})")
                    }
                })
            }
        }
    }
}

#[derive(Debug, Default)]
struct AgentWindow {
    /// Package → when the agent last asked about it, within the window.
    packages: HashMap<(Ecosystem, String), DateTime<Utc>>,
    refusals: VecDeque<DateTime<Utc>>,
}

impl AgentWindow {
    fn prune(&mut self, now: DateTime<Utc>) {
        let start = now - WINDOW;
        self.packages.retain(|_, last| *last > start);
        while self.refusals.front().is_some_and(|t| *t <= start) {
            self.refusals.pop_front();
        }
    }
}

/// Sliding-window counters for every agent. Not thread-safe on its own: the proxy keeps it
/// behind a mutex.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    limits: BreakerLimits,
    agents: HashMap<String, AgentWindow>,
}

impl CircuitBreaker {
    pub fn new(limits: BreakerLimits) -> Self {
        CircuitBreaker {
            limits,
            agents: HashMap::new(),
        }
    }

    pub fn limits(&self) -> BreakerLimits {
        self.limits
    }

    /// Counts `event` for `agent` at `now` and says whether the agent is past a limit.
    /// The event that goes past the limit is the first to return `Tripped`.
    pub fn record(
        &mut self,
        agent: &str,
        event: BreakerEvent<'_>,
        now: DateTime<Utc>,
    ) -> BreakerState {
        let window = self.agents.entry(agent.to_owned()).or_default();
        window.prune(now);
        match event {
            BreakerEvent::Package(name) => {
                window
                    .packages
                    .insert((name.ecosystem(), name.key().to_owned()), now);
            }
            BreakerEvent::Refused => window.refusals.push_back(now),
        }
        let over = |count: usize, max: u32| max != 0 && count > max as usize;
        let (packages, refusals) = (window.packages.len(), window.refusals.len());
        let limits = self.limits;
        if over(packages, limits.max_new_packages_per_hour) {
            BreakerState::Tripped {
                limit: Limit::NewPackages,
                count: packages,
                max: limits.max_new_packages_per_hour,
            }
        } else if over(refusals, limits.max_refusals_per_hour) {
            BreakerState::Tripped {
                limit: Limit::Refusals,
                count: refusals,
                max: limits.max_refusals_per_hour,
            }
        } else {
            BreakerState::Closed
        }
    }

    /// Forgets an agent's counters (after an admin resumes it, or revokes it).
    pub fn reset(&mut self, agent: &str) {
        self.agents.remove(agent);
    }
}
