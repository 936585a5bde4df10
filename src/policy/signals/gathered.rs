//! What a door looks up for the release signals beyond the package's own metadata, before
//! evaluation: the first-release time of each dependency a recent release added
//! (`young-dependency-added`), and the releases of the same publishers in other packages
//! (`release-burst` across packages). The checks stay pure: `depfw serve`
//! (`server::signal_facts`) and `depfw check --online` / `depfw audit --online`
//! (`audit::online`) fetch, then hang one shared [`Gathered`] on every version of the
//! document.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// When a dependency was first published, as far as the door could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstRelease {
    At(DateTime<Utc>),
    /// The lookup failed or the registry gave no time; why, for the finding.
    Unknown(String),
}

/// The first releases of the dependencies a door looked up, by name as the dependent
/// declares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyAges {
    by_name: BTreeMap<String, FirstRelease>,
}

impl DependencyAges {
    pub fn insert(&mut self, name: &str, first: FirstRelease) {
        self.by_name.insert(name.to_owned(), first);
    }

    /// `None`: not looked up (over a bound).
    pub fn get(&self, name: &str) -> Option<&FirstRelease> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// One release of another package, as the door saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRelease {
    pub package: String,
    pub published: DateTime<Utc>,
}

/// What the door gathered for one document, shared by all its versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    /// `None`: this door does not look dependencies up (then no dependency signal fires).
    pub dependencies: Option<DependencyAges>,
    /// For each publisher of a recent release in the document, the recent releases of
    /// other packages by that publisher that the door has seen (`depfw serve` only).
    pub publishers: BTreeMap<String, Vec<SeenRelease>>,
}
