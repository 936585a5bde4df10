//! Builds the one [`Policy`] that `depfw serve`, `depfw audit` and `depfw check` share,
//! from the validated config and the feeds (store, else the bundled snapshot).

use std::sync::Arc;

use crate::config::Config;
use crate::policy::Policy;
use crate::store::Store;

/// The loaded policy and what it was built from.
#[derive(Clone)]
pub struct Engine {
    pub policy: Policy,
}

/// Loads feeds and builds the policy.
///
/// TODO: wire the feed-backed checks (advisories, typosquat) and license/reputation.
pub fn load(config: &Config, _store: Option<&Store>) -> anyhow::Result<Engine> {
    let policy = Policy::new(
        Vec::new(),
        Arc::clone(&config.overrides),
        config.policy_fingerprint(),
    );
    Ok(Engine { policy })
}
