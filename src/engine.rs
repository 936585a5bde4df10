//! Builds the one [`Policy`] that `depfw serve`, `depfw audit` and `depfw check` share,
//! from the validated config and the feeds (store, else the bundled snapshot).

use std::sync::Arc;

use crate::config::Config;
use crate::package::Ecosystem;
use crate::policy::advisories::AdvisoriesCheck;
use crate::policy::license::LicenseCheck;
use crate::policy::reputation::ReputationCheck;
use crate::policy::typosquat::PopularIndex;
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

/// Loads feeds and builds the policy. The typosquat index of the bundled lists is
/// prebuilt into the binary; only the advisories are read.
pub fn load(config: &Config, store: Option<&Store>) -> anyhow::Result<Engine> {
    require_advisory_data(config, store)?;
    let advisories = crate::store::feeds::active_index(&config.feeds, store)?;
    build(config, store, advisories, PopularIndex::bundled())
}

/// Like [`load`], for a caller that knows every package it will evaluate (`depfw audit`):
/// only their advisories are read from the store. Evaluating any other package with this
/// engine would miss its advisories.
pub(crate) fn load_for<'a>(
    config: &Config,
    store: Option<&Store>,
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> anyhow::Result<Engine> {
    require_advisory_data(config, store)?;
    let advisories = crate::store::feeds::active_index_for(&config.feeds, store, packages)?;
    build(config, store, advisories, PopularIndex::bundled())
}

/// Advisory data is there when the store holds synced or imported feeds, or the bundled
/// snapshot is on. Without either, no advisory check can decide: an empty index would pass
/// a known-malicious package, so loading fails and every door fails closed (`depfw serve`
/// answers 503 with this reason unless `server.fail-open` is set; `check` and `audit` exit 2).
fn require_advisory_data(config: &Config, store: Option<&Store>) -> anyhow::Result<()> {
    if config.feeds.bundled {
        return Ok(());
    }
    if let Some(store) = store {
        if crate::store::feeds::FeedStore::new(store)?.has_data()? {
            return Ok(());
        }
    }
    anyhow::bail!(
        "no advisory data: `feeds.bundled = false` and no feed has been synced or imported \
         into the store; run `depfw feeds sync` (or `depfw feeds import`), or set \
         `feeds.bundled = true`"
    )
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
