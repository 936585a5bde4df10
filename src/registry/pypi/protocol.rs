//! PyPI's simple API behind [`Protocol`]: what `depfw serve` runs at `/pypi/simple/`.

use std::mem::size_of;

use bytes::Bytes;
use url::Url;

use super::{
    negotiate, parse_project_page, parse_simple_path, upstream_project_url, PageFile, PageFormat,
    ProjectPage, Rewrite, SimpleRequest, JSON_CONTENT_TYPE,
};
use crate::config::UpstreamConfig;
use crate::package::{Ecosystem, PackageName};
use crate::registry::heap::HeapSize;
use crate::registry::{Document, Protocol, ProtocolError, RenderCx, Route, VersionRecord};

/// What depfw asks upstream for: JSON carries `upload-time`, which the age checks need.
pub const UPSTREAM_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The simple API in front of one upstream index and its files host.
#[derive(Debug, Clone)]
pub struct Pypi {
    /// `upstream.pypi.index`.
    index: Url,
    /// `upstream.pypi.files`: file URLs on pages must be under it.
    files: Url,
    /// `upstream.pypi.json-api`, where publish times missing from an index page (PEP 503
    /// HTML has none) are asked for: only when the operator pointed it at the index's own
    /// host or set it on purpose, never pypi.org behind a private index (that would send
    /// internal names to the public registry and take a public namesake's times).
    json_api: Option<Url>,
    /// `[[upstream.pypi.private]]`: the projects each private index serves, alone.
    private: Vec<PrivateIndex>,
}

/// A private index as the protocol routes to it.
#[derive(Debug, Clone)]
struct PrivateIndex {
    names: Vec<crate::policy::internal::NamePattern>,
    index: Url,
    files: Url,
}

impl Pypi {
    pub fn new(index: &Url, files: &Url) -> Pypi {
        Pypi {
            index: index.clone(),
            files: files.clone(),
            json_api: None,
            private: Vec::new(),
        }
    }

    /// With the projects each private index lists asked of that index, and of it alone.
    pub fn with_private(mut self, private: &[crate::config::PypiPrivate]) -> Pypi {
        self.private = private
            .iter()
            .map(|p| PrivateIndex {
                names: p.names.clone(),
                index: p.index.clone(),
                files: p.files.clone(),
            })
            .collect();
        self
    }

    /// The private index `name` is routed to, if any: the first whose names match.
    fn private_for(&self, name: &PackageName) -> Option<&PrivateIndex> {
        self.private.iter().find(|p| {
            p.names
                .iter()
                .any(|n| n.matches(Ecosystem::PyPI, name.key()))
        })
    }

    /// With `json_api` asked for the publish times an index page leaves out.
    pub fn with_json_api(mut self, json_api: &Url) -> Pypi {
        self.json_api = Some(json_api.clone());
        self
    }

    /// Where the public index's file URLs point, and where depfw fetches files from.
    pub fn files(&self) -> &Url {
        &self.files
    }

    /// The files base of the index `name` is routed to.
    pub fn files_for(&self, name: &PackageName) -> &Url {
        self.private_for(name).map_or(&self.files, |p| &p.files)
    }
}

/// A parsed project page with its releases, both derived once per upstream body.
#[derive(Debug)]
pub struct Project {
    pub page: ProjectPage,
    pub records: Vec<VersionRecord>,
    /// Heap bytes held, for the parse cache's bound.
    footprint: usize,
}

impl HeapSize for PageFile {
    fn heap_size(&self) -> usize {
        self.filename.heap_size()
            + self.url.as_str().len()
            + self.hashes.heap_size()
            + self.requires_python.heap_size()
            + self.yanked.heap_size()
            + self.core_metadata.heap_size()
            + self.dist_info_metadata.heap_size()
            + self.provenance.heap_size()
            + self.version_text.heap_size()
            + self.extra.heap_size()
    }
}

impl HeapSize for ProjectPage {
    fn heap_size(&self) -> usize {
        self.name.as_str().len()
            + self.api_version.heap_size()
            + self.project_status.heap_size()
            + self.versions.heap_size()
            + self.files.capacity() * size_of::<PageFile>()
            + self.files.iter().map(HeapSize::heap_size).sum::<usize>()
            + self.extra.heap_size()
            + self.meta_extra.heap_size()
    }
}

/// What a path under `/pypi` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PypiQuirk {
    /// `/files/<upstream path>` (or its `.metadata`), still percent-encoded: the file names
    /// its project only ambiguously.
    File(String),
    /// Another spelling of a project: answer 301 with `Location: /pypi<location>`.
    Redirect { location: String },
    /// `/simple/`, the list of every project, which depfw does not serve.
    ProjectList,
}

impl Protocol for Pypi {
    const ECOSYSTEM: Ecosystem = Ecosystem::PyPI;
    const MOUNT: &'static str = "pypi";
    type Doc = Project;
    type Quirk = PypiQuirk;
    type Form = PageFormat;
    const UPSTREAM_ACCEPT: &'static str = UPSTREAM_ACCEPT;
    const URLS: bool = true;

    fn from_config(upstream: &UpstreamConfig) -> Pypi {
        let pypi =
            Pypi::new(&upstream.pypi, &upstream.pypi_files).with_private(&upstream.pypi_private);
        let public_json = upstream.pypi_json.host_str() == Some("pypi.org");
        let public_index = upstream.pypi.host_str() == Some("pypi.org");
        if public_json && !public_index {
            pypi
        } else {
            pypi.with_json_api(&upstream.pypi_json)
        }
    }

    fn client_url(&self, public_base: &str) -> String {
        format!("{public_base}/pypi/simple/")
    }

    fn route(&self, path: &str) -> Result<Route<PypiQuirk>, ProtocolError> {
        if let Some(file) = path.strip_prefix("/files/") {
            return Ok(Route::Quirk(PypiQuirk::File(file.to_owned())));
        }
        Ok(match parse_simple_path(path)? {
            SimpleRequest::Project(name) => Route::Metadata(name),
            SimpleRequest::Redirect { location } => Route::Quirk(PypiQuirk::Redirect { location }),
            SimpleRequest::Index => Route::Quirk(PypiQuirk::ProjectList),
        })
    }

    /// Files go through [`PypiQuirk::File`], which checks them against the files base of
    /// the project's index.
    fn artifact_origins(&self, name: &PackageName) -> Vec<&Url> {
        vec![self.files_for(name)]
    }

    /// A private project is asked of its index only: no fallback to the public one.
    fn metadata_url(&self, name: &PackageName) -> Result<Url, ProtocolError> {
        let index = self.private_for(name).map_or(&self.index, |p| &p.index);
        upstream_project_url(index, name)
    }

    fn parse(&self, name: &PackageName, body: &Bytes) -> Result<Project, ProtocolError> {
        // The metadata cache keeps bodies only; PEP 691 JSON is always an object.
        let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let content_type = if is_json {
            JSON_CONTENT_TYPE
        } else {
            "text/html"
        };
        let url = self.metadata_url(name)?;
        let page = parse_project_page(body, Some(content_type), &url, name)?;
        let records = page.records()?;
        let footprint = page.heap_size()
            + records.heap_size()
            + records
                .first()
                .and_then(|r| r.metadata.lineage.as_ref())
                .map_or(0, |l| l.history().heap_bytes());
        Ok(Project {
            page,
            records,
            footprint,
        })
    }

    fn supplement_url(&self, name: &PackageName, doc: &Project) -> Option<Url> {
        let json_api = self.json_api.as_ref()?;
        // The JSON API is the public index's: a private project's name never goes there.
        if self.private_for(name).is_some() {
            return None;
        }
        if !doc.records.iter().any(crate::registry::lacks_publish_time) {
            return None;
        }
        let base = json_api.as_str().trim_end_matches('/');
        Url::parse(&format!(
            "{base}/{}/json",
            crate::package::pep503_normalize(name.as_str())
        ))
        .ok()
    }

    fn supplement(&self, doc: &mut Project, body: &[u8]) -> Result<(), ProtocolError> {
        let times = super::parse_project_times(body)?;
        super::fill_publish_times(&mut doc.records, &times);
        Ok(())
    }

    fn footprint(&self, doc: &Project) -> usize {
        doc.footprint
    }

    fn versions<'d>(&self, doc: &'d Project) -> &'d [VersionRecord] {
        &doc.records
    }

    fn form(&self, accept: Option<&str>, query: Option<&str>) -> PageFormat {
        negotiate(accept, query)
    }

    fn render(
        &self,
        name: &PackageName,
        doc: &Project,
        format: &PageFormat,
        cx: &RenderCx<'_>,
    ) -> Result<Document, ProtocolError> {
        let public_base = Url::parse(cx.public_base)
            .map_err(|e| ProtocolError::BadUpstream(format!("server.public-url: {e}")))?;
        let rewrite = Rewrite {
            public_base: &public_base,
            files_base: self.files_for(name),
        };
        let page = doc
            .page
            .render_records(&doc.records, cx.show, *format, &rewrite);
        Ok(Document {
            content_type: page.content_type,
            body: page.body.into_bytes().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML: &[u8] = b"<a href=\"/files/demo-1.0.tar.gz\">demo-1.0.tar.gz</a>";

    fn supplement_for(toml: &str) -> Option<String> {
        let config = crate::config::Config::from_toml(toml, "test").unwrap();
        let pypi = Pypi::from_config(&config.upstream);
        let name = PackageName::parse(Ecosystem::PyPI, "Demo").unwrap();
        let doc = pypi.parse(&name, &Bytes::from_static(HTML)).unwrap();
        pypi.supplement_url(&name, &doc).map(|u| u.to_string())
    }

    #[test]
    fn times_are_asked_of_the_index_own_json_api_never_of_pypi_org_behind_a_private_index() {
        // A private HTML index with the default json-api (pypi.org): internal names would
        // go to the public registry, and a public namesake's times would come back.
        assert_eq!(
            supplement_for("[upstream.pypi]\nindex = \"https://pypi.corp/simple/\"\nfiles = \"https://pypi.corp/f/\"\n"),
            None
        );
        assert_eq!(
            supplement_for(
                "[upstream.pypi]\nindex = \"https://pypi.corp/simple/\"\nfiles = \"https://pypi.corp/f/\"\n\
                 json-api = \"https://pypi.corp/pypi/\"\n"
            )
            .as_deref(),
            Some("https://pypi.corp/pypi/demo/json")
        );
        // pypi.org itself: its JSON pages carry times, but an HTML answer is completed too.
        assert_eq!(
            supplement_for("").as_deref(),
            Some("https://pypi.org/pypi/demo/json")
        );
    }

    #[test]
    fn a_private_project_is_routed_to_its_index_and_files_and_its_name_never_to_pypi_org() {
        let private = "[[upstream.pypi.private]]\nindex = \"https://pypi.corp/simple/\"\n\
                       files = \"https://files.corp/\"\nnames = [\"demo\"]\n";
        // The public index's JSON API is not asked for a private project's times.
        assert_eq!(supplement_for(private), None);
        let config = crate::config::Config::from_toml(private, "test").unwrap();
        let pypi = Pypi::from_config(&config.upstream);
        let demo = PackageName::parse(Ecosystem::PyPI, "Demo").unwrap();
        let other = PackageName::parse(Ecosystem::PyPI, "idna").unwrap();
        assert_eq!(
            pypi.metadata_url(&demo).unwrap().as_str(),
            "https://pypi.corp/simple/demo/"
        );
        assert_eq!(
            pypi.artifact_origins(&demo)[0].as_str(),
            "https://files.corp/"
        );
        assert_eq!(
            pypi.metadata_url(&other).unwrap().as_str(),
            "https://pypi.org/simple/idna/"
        );
        assert_eq!(
            pypi.artifact_origins(&other)[0].as_str(),
            "https://files.pythonhosted.org/"
        );
    }
}
