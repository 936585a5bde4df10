//! The sparse index behind [`Protocol`]: what `depfw serve` runs at `/cargo/index/`.

use std::mem::size_of;

use bytes::Bytes;
use url::Url;

use super::{parse_index_path, upstream_index_url, IndexFile, IndexLine, IndexRequest};
use crate::package::{Ecosystem, PackageName};
use crate::registry::heap::HeapSize as _;
use crate::registry::{Document, Protocol, ProtocolError, RenderCx, VersionRecord};

/// The sparse-index protocol in front of one upstream index.
#[derive(Debug, Clone)]
pub struct Cargo {
    /// `upstream.cargo.index`.
    index: Url,
}

impl Cargo {
    /// The sparse index's base URL (`upstream.cargo.index`).
    pub fn index(&self) -> &Url {
        &self.index
    }

    pub fn new(index: &Url) -> Cargo {
        Cargo {
            index: index.clone(),
        }
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

/// What a path under `/cargo/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CargoPath {
    Index(IndexRequest),
    /// `dl/{crate}/{version}/{checksum}`, parsed by the download handler.
    Download(String),
    /// Anything else: not served.
    Unknown,
}

impl Protocol for Cargo {
    const ECOSYSTEM: Ecosystem = Ecosystem::CratesIo;
    type Doc = Index;
    type Route = CargoPath;
    /// Index files have one form.
    type Form = ();
    const UPSTREAM_ACCEPT: &'static str = "text/plain";
    /// Index lines carry no URLs, so agents with the same preset share one rendering.
    const URLS: bool = false;

    /// `path` is after `/cargo/`.
    fn route(&self, path: &str) -> Result<CargoPath, ProtocolError> {
        if let Some(index_path) = path.strip_prefix("index/") {
            return parse_index_path(index_path).map(CargoPath::Index);
        }
        if path.starts_with("dl/") {
            return Ok(CargoPath::Download(path.to_owned()));
        }
        Ok(CargoPath::Unknown)
    }

    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        upstream_index_url(&self.index, name)
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
            + records.heap_size();
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
            body: doc.file.render_with(cx.show).into_bytes(),
        })
    }
}
