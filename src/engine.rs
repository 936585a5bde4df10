//! Builds the one [`Policy`] that `depfw serve`, `depfw audit` and `depfw check` share,
//! from the validated config and the feeds (store, else the bundled snapshot).

pub mod feed_update;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::Config;
use crate::package::Ecosystem;
use crate::policy::advisories::AdvisoriesCheck;
use crate::policy::content::{ContentLedger, ContentRules};
use crate::policy::internal::InternalNamesCheck;
use crate::policy::license::LicenseCheck;
use crate::policy::reputation::ReputationCheck;
use crate::policy::signals::SignalsCheck;
use crate::policy::typosquat::PopularIndex;
use crate::policy::typosquat::TyposquatCheck;
use crate::policy::{Check, Policy};
use crate::store::overrides::OverrideStore;
use crate::store::repo::OverrideRepo;
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
    let overrides = store.map(OverrideStore::new).transpose()?;
    load_with(
        config,
        store,
        overrides.as_ref().map(|o| o as &dyn OverrideRepo),
    )
}

/// [`load`] with the feeds from `feeds` (the local store) and the run-time overrides from
/// `overrides` (the configured backend, which may be PostgreSQL).
pub fn load_with(
    config: &Config,
    feeds: Option<&Store>,
    overrides: Option<&dyn OverrideRepo>,
) -> anyhow::Result<Engine> {
    let gaps = advisory_gaps(config, feeds)?;
    let advisories = crate::store::feeds::active_index(&config.feeds, feeds)?;
    build(
        config,
        feeds,
        overrides,
        advisories,
        PopularIndex::bundled(),
        gaps,
    )
}

/// The policy's revision for run-time overrides at `revision`: the base (config and
/// advisories) plus `-o<revision>`.
pub(crate) fn revision_with_overrides(base: &str, revision: u64) -> String {
    let base = match base.rsplit_once("-o") {
        Some((b, tail)) if !tail.is_empty() && tail.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => base,
    };
    format!("{base}-o{revision}")
}

/// `policy` with the run-time overrides `repo` holds now: what a replica runs when another
/// one changed an override or approved a quarantined package.
pub fn refresh_overrides(
    config: &Config,
    policy: &Policy,
    repo: &dyn OverrideRepo,
) -> anyhow::Result<Policy> {
    let revision = repo.revision()?;
    let merged = repo.merged_with(&config.overrides, Utc::now())?;
    Ok(policy.with_overrides(
        Arc::new(merged),
        revision_with_overrides(policy.revision(), revision),
    ))
}

/// Like [`load`], for a caller that knows every package it will evaluate (`depfw audit`):
/// only their advisories are read from the store. Evaluating any other package with this
/// engine would miss its advisories.
pub(crate) fn load_for<'a>(
    config: &Config,
    store: Option<&Store>,
    packages: impl IntoIterator<Item = (Ecosystem, &'a str)>,
) -> anyhow::Result<Engine> {
    let gaps = advisory_gaps(config, store)?;
    let advisories = crate::store::feeds::active_index_for(&config.feeds, store, packages)?;
    let overrides = store.map(OverrideStore::new).transpose()?;
    let overrides = overrides.as_ref().map(|o| o as &dyn OverrideRepo);
    build(
        config,
        store,
        overrides,
        advisories,
        PopularIndex::bundled(),
        gaps,
    )
}

/// The ecosystems without advisory data, each with the reason. An ecosystem's data is there
/// when the bundled snapshot is on, or a synced or imported feed holds advisories about it.
/// Without any, no advisory check can decide: an empty index would pass a known-malicious
/// package. None at all fails loading, so every door fails closed (`depfw serve` answers 503
/// with this reason unless `server.fail-open` is set; `check` and `audit` exit 2); some
/// missing makes the policy [`Policy::undecidable_for`] those ecosystems only, so a failed
/// PyPI sync never takes npm down with it.
fn advisory_gaps(
    config: &Config,
    store: Option<&Store>,
) -> anyhow::Result<BTreeMap<Ecosystem, String>> {
    if config.feeds.bundled {
        return Ok(BTreeMap::new());
    }
    let covered: BTreeSet<Ecosystem> = match store {
        Some(store) => crate::store::feeds::FeedStore::new(store)?.ecosystems_with_data()?,
        None => BTreeSet::new(),
    };
    if covered.is_empty() {
        anyhow::bail!(
            "no advisory data: `feeds.bundled = false` and no feed has been synced or \
             imported into the store; run `depfw feeds sync` (or `depfw feeds import`), or \
             set `feeds.bundled = true`"
        )
    }
    Ok(Ecosystem::ALL
        .into_iter()
        .filter(|e| !covered.contains(e))
        .map(|e| {
            let why = format!(
                "no advisory data for {e}: `feeds.bundled = false` and no synced or imported \
                 feed holds {e} advisories (`depfw feeds status` shows each source); run \
                 `depfw feeds sync`, or set `feeds.bundled = true`"
            );
            (e, why)
        })
        .collect())
}

/// `local`: the data directory's sled store (content-rule holds live there, per replica);
/// `overrides`: the configured backend's run-time overrides.
fn build(
    config: &Config,
    local: Option<&Store>,
    overrides: Option<&dyn OverrideRepo>,
    advisories: crate::feeds::AdvisoryIndex,
    popular: PopularIndex,
    gaps: BTreeMap<Ecosystem, String>,
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
        Arc::new(SignalsCheck::new(config.policy.signals.clone())),
        Arc::new(InternalNamesCheck::new(
            config.policy.internal_names.clone(),
        )),
    ];
    let mut revision = format!("{}-{}", config.policy_fingerprint(), advisories.revision());
    let overrides = match overrides {
        Some(overrides) => {
            revision.push_str(&format!("-o{}", overrides.revision()?));
            Arc::new(overrides.merged_with(&config.overrides, Utc::now())?)
        }
        None => Arc::clone(&config.overrides),
    };
    let mut policy = Policy::new(checks, overrides, revision)
        .undecidable_for(gaps)
        .with_enforcement(config.policy.enforcement.clone());
    if config.policy.content.enabled {
        let held = match local {
            Some(store) => crate::store::content::ContentStore::new(store)?.held()?,
            None => Vec::new(),
        };
        policy = policy.with_content(Arc::new(ContentRules {
            cfg: config.policy.content.clone(),
            ledger: ContentLedger::new(held),
        }));
    }
    Ok(Engine { policy })
}
