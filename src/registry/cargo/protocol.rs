//! The sparse index behind [`Protocol`]: what `depfw serve` runs at `/cargo/index/`.

use std::mem::size_of;

use bytes::Bytes;
use url::Url;

use super::{parse_index_path, upstream_index_url, IndexFile, IndexLine, IndexRequest};
use crate::config::UpstreamConfig;
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
        }
    }

    /// With `api` asked for what index lines leave out.
    pub fn with_api(mut self, api: &Url) -> Cargo {
        self.api = Some(api.clone());
        self
    }

    /// Upstream's `config.json`, which says where downloads live.
    pub(crate) fn config_url(&self) -> String {
        format!("{}/config.json", self.index.as_str().trim_end_matches('/'))
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
        let cargo = Cargo::new(&upstream.cargo_index);
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
    /// `config.json` host as `server.cargo-download-origins` allows it.
    fn artifact_origins(&self, _name: &PackageName) -> Vec<&Url> {
        vec![&self.index]
    }

    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        upstream_index_url(&self.index, name)
    }

    fn supplement_url(&self, name: &PackageName, doc: &Index) -> Option<Url> {
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
