//! The first releases of added dependencies, for `young-dependency-added` under
//! `depfw check --online` and `depfw audit --online`: the same lookups the proxy makes
//! (`server::signal_facts`), for the versions asked about. At most
//! `policy.signals.dependencies-per-version` added dependencies per version and
//! `dependency-lookups` per package name are fetched, through the same upstreams and the
//! same request slot as the package's own metadata; answers are shared by the whole run
//! ([`Memo`]). A failed lookup leaves the dependency unchecked (`dependency-unchecked`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;

use super::http::Http;
use super::sources::{self, Apis, Records};
use crate::config::UpstreamConfig;
use crate::package::PackageName;
use crate::policy::signals::{DependencyAges, FirstRelease, Gathered, SignalsConfig};
use crate::registry::VersionRecord;

/// Dependencies' first releases, learnt once per run.
#[derive(Default)]
pub(super) struct Memo(Mutex<HashMap<String, FirstRelease>>);

impl Memo {
    fn get(&self, name: &str) -> Option<FirstRelease> {
        let memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        memo.get(name).cloned()
    }

    fn put(&self, name: &str, first: FirstRelease) {
        let mut memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert(name.to_owned(), first);
    }
}

/// What a lookup needs: the run's client, upstreams and memo.
pub(super) struct Lookup<'a> {
    pub http: &'a Http,
    pub upstream: &'a UpstreamConfig,
    pub apis: &'a Apis,
    pub notes: &'a Mutex<Vec<String>>,
    pub memo: &'a Memo,
}

impl Lookup<'_> {
    async fn first_release(&self, name: &PackageName) -> FirstRelease {
        match sources::fetch(
            self.http,
            self.upstream,
            self.apis,
            name,
            &[],
            false,
            self.notes,
        )
        .await
        {
            Ok(Records::Found { records, .. }) => {
                match crate::registry::first_published(&records) {
                    Some(t) => FirstRelease::At(t),
                    None => FirstRelease::Unknown("its metadata gives no publish time".to_owned()),
                }
            }
            Ok(Records::Absent(_)) => {
                FirstRelease::Unknown("not on the upstream registry".to_owned())
            }
            Err(_) => FirstRelease::Unknown("the upstream registry did not answer".to_owned()),
        }
    }

    /// Looks up the dependencies the `wanted` versions added (`""`: none) and hangs the
    /// answers on every record of `name`.
    pub(super) async fn gather(
        &self,
        signals: &SignalsConfig,
        name: &PackageName,
        records: &mut [VersionRecord],
        wanted: &[&str],
    ) {
        let now = Utc::now();
        let mut to_check: Vec<String> = Vec::new();
        for v in wanted.iter().filter(|v| !v.is_empty()) {
            let Some(lineage) = super::find_version(records, name.ecosystem(), v)
                .and_then(|r| r.metadata.lineage.as_ref())
            else {
                continue;
            };
            for dep in signals.dependencies_to_look_up(name, lineage, now) {
                if !to_check.iter().any(|d| d == dep) {
                    to_check.push(dep.to_owned());
                }
            }
        }
        let mut ages = DependencyAges::default();
        let mut fetched = 0;
        for dep in &to_check {
            if let Some(first) = self.memo.get(dep) {
                ages.insert(dep, first);
                continue;
            }
            if fetched >= signals.dependency_lookups {
                // Left out: the check reports it unchecked.
                continue;
            }
            fetched += 1;
            let first = match PackageName::parse(name.ecosystem(), dep) {
                Ok(dep_name) => self.first_release(&dep_name).await,
                Err(e) => FirstRelease::Unknown(format!("not a valid name: {e}")),
            };
            if matches!(first, FirstRelease::At(_)) {
                self.memo.put(dep, first.clone());
            }
            ages.insert(dep, first);
        }
        let gathered = Arc::new(Gathered {
            dependencies: Some(ages),
            publishers: Default::default(),
        });
        for record in records.iter_mut() {
            record.metadata.gathered = Some(Arc::clone(&gathered));
        }
    }
}
