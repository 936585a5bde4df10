//! The sparse index behind [`Protocol`]: what `depfw serve` runs at `/cargo/index/`.

use std::mem::size_of;

use bytes::Bytes;
use url::Url;

use super::{parse_index_path, upstream_index_url, IndexFile, IndexLine, IndexRequest};
use crate::config::{CargoPrivate, UpstreamConfig};
use crate::package::{Ecosystem, PackageName};
use crate::registry::heap::HeapSize as _;
use crate::registry::{Document, Protocol, ProtocolError, RenderCx, Route, VersionRecord};

/// The sparse-index protocol in front of one upstream index.
#[derive(Debug, Clone)]
pub struct Cargo {
    /// `upstream.cargo.index`.
    index: Url,
    /// `upstream.cargo.api`: where the publish times (and licenses) that index lines leave
    /// out are asked for. The operator's own setting, never guessed: a third-party index
    /// behind crates.io's API would take a public namesake's data.
    api: Option<Url>,
    /// `[[upstream.cargo.private]]`: the crates each private registry serves, alone.
    private: Vec<CargoPrivate>,
}

impl Cargo {
    /// The sparse index's base URL (`upstream.cargo.index`).
    pub fn index(&self) -> &Url {
        &self.index
    }

    pub fn new(index: &Url) -> Cargo {
        Cargo {
            index: index.clone(),
            api: None,
            private: Vec::new(),
        }
    }

    /// With the crates each private registry lists asked of that registry, and of it alone.
    pub fn with_private(mut self, private: &[CargoPrivate]) -> Cargo {
        self.private = private.to_vec();
        self
    }

    /// The private registry `name` is routed to, if any: the first whose names match.
    pub(crate) fn private_for(&self, name: &PackageName) -> Option<&CargoPrivate> {
        self.private.iter().find(|p| p.routes(name))
    }

    /// The sparse index `name`'s lines come from: its private registry's, or the main one.
    fn index_for(&self, name: &PackageName) -> &Url {
        self.private_for(name).map_or(&self.index, |p| &p.index)
    }

    /// With `api` asked for what index lines leave out.
    pub fn with_api(mut self, api: &Url) -> Cargo {
        self.api = Some(api.clone());
        self
    }

    /// The `config.json` of the index `name` comes from, which says where its downloads
    /// live.
    pub(crate) fn config_url(&self, name: &PackageName) -> String {
        let index = self.index_for(name);
        format!("{}/config.json", index.as_str().trim_end_matches('/'))
    }
}

/// A parsed index file and its records, derived once per upstream body.
#[derive(Debug)]
pub struct Index {
    pub file: IndexFile,
    records: Vec<VersionRecord>,
    /// Heap bytes held, for the parse cache's bound.
    footprint: usize,
}

/// What only a cargo registry serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CargoQuirk {
    /// `index/config.json`: where cargo downloads from (depfw's own, pointing at depfw).
    Config,
    /// `dl/{crate}/{version}/{checksum}`, parsed by the download handler: the URL comes from
    /// upstream's `config.json` and the checksum must be the index's.
    Download(String),
}

impl Protocol for Cargo {
    const ECOSYSTEM: Ecosystem = Ecosystem::CratesIo;
    const MOUNT: &'static str = "cargo";
    type Doc = Index;
    type Quirk = CargoQuirk;
    /// Index files have one form.
    type Form = ();
    const UPSTREAM_ACCEPT: &'static str = "text/plain";
    /// Index lines carry no URLs, so agents with the same preset share one rendering.
    const URLS: bool = false;
    /// cargo prints an error body verbatim, so plain text reads better than JSON there.
    const PLAIN_TEXT_ERRORS: bool = true;

    fn from_config(upstream: &UpstreamConfig) -> Cargo {
        let cargo = Cargo::new(&upstream.cargo_index).with_private(&upstream.cargo_private);
        match &upstream.cargo_api {
            Some(api) => cargo.with_api(api),
            None => cargo,
        }
    }

    fn client_url(&self, public_base: &str) -> String {
        format!("sparse+{public_base}/cargo/index/")
    }

    fn route(&self, path: &str) -> Result<Route<CargoQuirk>, ProtocolError> {
        let path = path.strip_prefix('/').unwrap_or(path);
        if let Some(index_path) = path.strip_prefix("index/") {
            return Ok(match parse_index_path(index_path)? {
                IndexRequest::Config => Route::Quirk(CargoQuirk::Config),
                IndexRequest::Crate(name) => Route::Metadata(name),
            });
        }
        if path.starts_with("dl/") {
            return Ok(Route::Quirk(CargoQuirk::Download(path.to_owned())));
        }
        Ok(Route::NotServed)
    }

    /// Downloads go through [`CargoQuirk::Download`], whose origins are upstream's
    /// `config.json` host as `server.cargo-download-origins` allows it (a private crate's:
    /// its registry's hosts alone).
    fn artifact_origins(&self, name: &PackageName) -> Vec<&Url> {
        vec![self.index_for(name)]
    }

    /// A private crate is asked of its registry only: a 404 there is no cue to ask
    /// crates.io, whose namesake would be someone else's crate.
    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        upstream_index_url(self.index_for(name), name)
    }

    fn supplement_url(&self, name: &PackageName, doc: &Index) -> Option<Url> {
        // `upstream.cargo.api` belongs to the main index: a private crate's name never goes
        // there.
        if self.private_for(name).is_some() {
            return None;
        }
        let api = self.api.as_ref()?;
        if !doc.records.iter().any(crate::registry::lacks_publish_time) {
            return None;
        }
        let base = api.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/api/v1/crates/{}", name.as_str())).ok()
    }

    fn supplement(&self, doc: &mut Index, body: &[u8]) -> Result<(), ProtocolError> {
        let info = super::api::parse_crate_api(body)?;
        super::api::merge_api_metadata(&mut doc.records, &info);
        Ok(())
    }

    fn parse(&self, name: &PackageName, body: &Bytes) -> Result<Index, ProtocolError> {
        let file = IndexFile::parse(body, name)?;
        let records = file.records();
        let footprint = file
            .lines
            .iter()
            .map(|l| {
                size_of::<IndexLine>()
                    + l.raw.heap_size()
                    + l.name.heap_size()
                    + l.record.heap_size()
            })
            .sum::<usize>()
            + records.heap_size()
            + records
                .first()
                .and_then(|r| r.metadata.lineage.as_ref())
                .map_or(0, |l| l.history().heap_bytes());
        Ok(Index {
            file,
            records,
            footprint,
        })
    }

    fn footprint(&self, doc: &Index) -> usize {
        doc.footprint
    }

    fn versions<'d>(&self, doc: &'d Index) -> &'d [VersionRecord] {
        &doc.records
    }

    fn form(&self, _accept: Option<&str>, _query: Option<&str>) {}

    fn render(
        &self,
        _name: &PackageName,
        doc: &Index,
        _form: &(),
        cx: &RenderCx<'_>,
    ) -> Result<Document, ProtocolError> {
        Ok(Document {
            content_type: "text/plain",
            body: doc.file.render_with(cx.show).into_bytes().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_crate_is_routed_to_its_registry_alone_by_cargo_name_rules() {
        let config = crate::config::Config::from_toml(
            "[upstream.cargo]\napi = \"https://crates.io/\"\n\
             [[upstream.cargo.private]]\nindex = \"sparse+https://cargo.corp.example/index/\"\n\
             names = [\"corp-*\", \"Internal_Tool\"]\n",
            "test",
        )
        .unwrap();
        let cargo = Cargo::from_config(&config.upstream);
        let name = |n: &str| PackageName::parse(Ecosystem::CratesIo, n).unwrap();
        for private in ["corp_auth", "Corp-Auth", "internal-tool"] {
            let n = name(private);
            let url = cargo.metadata_url(&n).unwrap();
            assert_eq!(url.host_str(), Some("cargo.corp.example"), "{private}");
            assert_eq!(
                cargo.artifact_origins(&n)[0].as_str(),
                "https://cargo.corp.example/index/"
            );
            assert_eq!(
                cargo.config_url(&n),
                "https://cargo.corp.example/index/config.json"
            );
        }
        assert_eq!(
            cargo.metadata_url(&name("corp_auth")).unwrap().as_str(),
            "https://cargo.corp.example/index/co/rp/corp_auth"
        );
        let serde = name("serde");
        assert_eq!(
            cargo.metadata_url(&serde).unwrap().as_str(),
            "https://index.crates.io/se/rd/serde"
        );
        assert_eq!(
            cargo.config_url(&serde),
            "https://index.crates.io/config.json"
        );
        // crates.io's API is never asked about a private crate's name.
        let line = |n: &str| {
            format!(
                "{{\"name\":\"{n}\",\"vers\":\"1.0.0\",\"cksum\":\"{}\"}}\n",
                "a".repeat(64)
            )
        };
        let private_doc = cargo
            .parse(&name("corp_auth"), &Bytes::from(line("corp_auth")))
            .unwrap();
        assert_eq!(cargo.supplement_url(&name("corp_auth"), &private_doc), None);
        let public_doc = cargo.parse(&serde, &Bytes::from(line("serde"))).unwrap();
        assert!(cargo.supplement_url(&serde, &public_doc).is_some());
    }
}
