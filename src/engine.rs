//! Builds the one [`Policy`] that `depfw serve`, `depfw audit` and `depfw check` share,
//! from the validated config and the feeds (store, else the bundled snapshot).

use std::sync::Arc;

use crate::config::Config;
use crate::feeds::popular::PopularIndex;
use crate::package::Ecosystem;
use crate::policy::advisories::AdvisoriesCheck;
use crate::policy::license::LicenseCheck;
use crate::policy::reputation::ReputationCheck;
use crate::policy::typosquat::TyposquatCheck;
use crate::policy::{Check, Policy};
use crate::store::overrides::OverrideStore;
use crate::store::Store;
use chrono::Utc;

/// The loaded policy and what it was built from.
#[derive(Clone)]
pub struct Engine {
    pub policy: Policy,
}

/// Loads feeds and builds the policy.
///
/// The advisory index and the typosquat index are independent and each takes a few hundred
/// milliseconds to build, so they are built on two threads: startup time is user-visible.
pub fn load(config: &Config, store: Option<&Store>) -> anyhow::Result<Engine> {
    let (advisories, popular) = std::thread::scope(|scope| {
        let popular = scope.spawn(PopularIndex::bundled);
        let advisories = crate::feeds::active_index(&config.feeds, store);
        (advisories, popular.join())
    });
    let popular =
        popular.map_err(|_| anyhow::anyhow!("building the popular-package index panicked"))?;
    build(config, store, advisories?, popular)
}

/// Like [`load`], for a caller that knows every package it will evaluate (`depfw audit`):
/// only their advisories are read from the store. Evaluating any other package with this
/// engine would miss its advisories.
///
/// Likewise only the popular names their typosquat lookups can reach are indexed, on a
/// second thread while the advisories are read: for a one-shot scan the two are most of
/// the start-up time.
pub fn load_for<'a>(
    config: &Config,
    store: Option<&Store>,
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> anyhow::Result<Engine> {
    let packages: Vec<(Ecosystem, &str)> = packages.into_iter().collect();
    let (advisories, popular) = std::thread::scope(|scope| {
        let packages = &packages;
        let popular = scope.spawn(move || PopularIndex::bundled_reaching(packages.iter().copied()));
        let advisories =
            crate::feeds::active_index_for(&config.feeds, store, packages.iter().copied());
        (advisories, popular.join())
    });
    let popular =
        popular.map_err(|_| anyhow::anyhow!("building the popular-package index panicked"))?;
    build(config, store, advisories?, popular)
}

fn build(
    config: &Config,
    store: Option<&Store>,
    advisories: crate::feeds::AdvisoryIndex,
    popular: PopularIndex,
) -> anyhow::Result<Engine> {
    let advisories = Arc::new(advisories);
    let popular = Arc::new(popular);
    let checks: Vec<Arc<dyn Check>> = vec![
        Arc::new(AdvisoriesCheck::new(
            Arc::clone(&advisories),
            config.policy.advisories.clone(),
        )),
        Arc::new(TyposquatCheck::new(
            popular,
            config.policy.typosquat.clone(),
        )),
        Arc::new(LicenseCheck::new(config.policy.license.clone())),
        Arc::new(ReputationCheck::new(config.policy.reputation.clone())),
    ];
    let mut revision = format!("{}-{}", config.policy_fingerprint(), advisories.revision());
    let overrides = match store {
        Some(store) => {
            let overrides = OverrideStore::new(store)?;
            revision.push_str(&format!("-o{}", overrides.revision()?));
            Arc::new(overrides.merged_with(&config.overrides, Utc::now())?)
        }
        None => Arc::clone(&config.overrides),
    };
    let policy = Policy::new(checks, overrides, revision);
    Ok(Engine { policy })
}
