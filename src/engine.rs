//! Builds the one [`Policy`] that `depfw serve`, `depfw audit` and `depfw check` share,
//! from the validated config and the feeds (store, else the bundled snapshot).

use std::sync::Arc;

use crate::config::Config;
use crate::policy::license::LicenseCheck;
use crate::policy::reputation::ReputationCheck;
use crate::policy::{Check, Policy};
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
    let checks: Vec<Arc<dyn Check>> = vec![
        Arc::new(LicenseCheck::new(config.policy.license.clone())),
        Arc::new(ReputationCheck::new(config.policy.reputation.clone())),
    ];
    let policy = Policy::new(
        checks,
        Arc::clone(&config.overrides),
        config.policy_fingerprint(),
    );
    Ok(Engine { policy })
}
