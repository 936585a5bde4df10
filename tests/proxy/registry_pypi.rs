//! PyPI simple API: parsing real and hand-made pages, filtering, rewriting, negotiation,
//! file names and hostile paths.

use depfw::package::{Ecosystem, PackageName};
use depfw::registry::pypi::{
    negotiate, parse_file_path, parse_project_page, parse_simple_path, upstream_project_url,
    DistFilename, FileKind, PageFormat, ProjectPage, Rewrite, SimpleRequest, JSON_CONTENT_TYPE,
};
use depfw::registry::{Digest, ProtocolError};
use url::Url;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::support::fixture("pypi").join(name)).unwrap()
}

fn project(name: &str) -> PackageName {
    PackageName::parse(Ecosystem::PyPI, name).unwrap()
}

fn page(file: &str, name: &str, content_type: &str) -> ProjectPage {
    let url = Url::parse(&format!("https://pypi.org/simple/{name}/")).unwrap();
    parse_project_page(&fixture(file), Some(content_type), &url, &project(name)).unwrap()
}

fn files_base() -> Url {
    Url::parse("https://files.pythonhosted.org/").unwrap()
}

fn public() -> Url {
    Url::parse("http://127.0.0.1:8080/").unwrap()
}

fn render(page: &ProjectPage, keep: &dyn Fn(&str) -> bool, format: PageFormat) -> String {
    let (public, files_base) = (public(), files_base());
    let rewrite = Rewrite {
        public_base: &public,
        files_base: &files_base,
    };
    page.render(keep, format, &rewrite).unwrap().body
}

#[test]
fn real_html_page_parses_into_releases_with_digests_and_times() {
    let idna = page("idna-upload-time.html", "idna", "text/html");
    let records = idna.records().unwrap();
    let r310 = records.iter().find(|r| r.version_text == "3.10").unwrap();
    assert_eq!(r310.artifacts.len(), 2);
    let wheel = r310
        .artifacts
        .iter()
        .find(|a| a.filename == "idna-3.10-py3-none-any.whl")
        .unwrap();
    assert_eq!(
        wheel.digest,
        Some(Digest::Sha256(
            hex::decode("946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3")
                .unwrap()
        ))
    );
    // published = the earlier of the two files' upload times.
    let wheel_time: chrono::DateTime<chrono::Utc> = "2024-09-15T18:07:37.964349Z".parse().unwrap();
    assert!(r310.metadata.published.unwrap() <= wheel_time);
    assert_eq!(
        r310.metadata.package_created,
        Some("2013-07-16T19:29:45.445020Z".parse().unwrap())
    );
    assert_eq!(r310.metadata.yanked, None);
    let file = idna.file("idna-3.10-py3-none-any.whl").unwrap();
    assert_eq!(file.requires_python.as_deref(), Some(">=3.6"));
    // Every file of the real page belongs to a release.
    assert!(idna.files.iter().all(|f| f.version_text.is_some()));
    // The plain page has no times at all.
    let plain = page("idna.html", "idna", "text/html");
    assert!(plain
        .records()
        .unwrap()
        .iter()
        .all(|r| r.metadata.published.is_none()));
    assert_eq!(plain.files.len(), idna.files.len());
}

#[test]
fn yanked_only_when_every_file_is_yanked() {
    let pip = page("pip-upload-time.html", "pip", "text/html");
    let records = pip.records().unwrap();
    let yanked = |v: &str| {
        records
            .iter()
            .find(|r| r.version_text == v)
            .unwrap()
            .metadata
            .yanked
            .clone()
    };
    assert_eq!(yanked("20.0"), Some(String::new()));
    assert_eq!(
        yanked("21.2"),
        Some("See https://github.com/pypa/pip/issues/8711".into())
    );
    assert_eq!(yanked("21.1"), None);
}

#[test]
fn sdists_with_dashes_in_the_name_group_with_wheels() {
    let du = page(
        "python-dateutil-upload-time.html",
        "python-dateutil",
        "text/html",
    );
    let records = du.records().unwrap();
    let r = records.iter().find(|r| r.version_text == "2.5.0").unwrap();
    let mut names: Vec<&str> = r.artifacts.iter().map(|a| a.filename.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "python-dateutil-2.5.0.tar.gz",
            "python-dateutil-2.5.0.zip",
            "python_dateutil-2.5.0-py2.py3-none-any.whl"
        ]
    );
    assert!(records.iter().any(|r| r.version_text == "2.4.1.post1"));
}

#[test]
fn hand_made_json_page_parses_every_field() {
    let p = page("foo-bar.json", "Foo.Bar", JSON_CONTENT_TYPE);
    assert_eq!(p.api_version.as_deref(), Some("1.1"));
    let records = p.records().unwrap();
    let texts: Vec<&str> = records.iter().map(|r| r.version_text.as_str()).collect();
    assert_eq!(texts, ["1.0", "2.0", "2.1", "3.0a1"]);
    // `1.0.0` (wheel) and `1.0` (sdist) are one release.
    assert_eq!(records[0].artifacts.len(), 2);
    assert_eq!(
        records[0].metadata.published,
        Some("2021-03-04T05:00:00Z".parse().unwrap())
    );
    assert_eq!(
        records[1].metadata.yanked.as_deref(),
        Some("broken build <see #12> & \"quotes\"")
    );
    assert_eq!(records[2].metadata.yanked, None);
    assert!(records[3].artifacts.is_empty());
    let wheel = p.file("foo_bar-2.1-py3-none-any.whl").unwrap();
    assert_eq!(wheel.size, Some(1400));
    assert!(wheel.core_metadata_digest().unwrap().is_some());
    assert!(p
        .file("foo_bar-2.1.tar.gz")
        .unwrap()
        .core_metadata
        .is_none());
    assert_eq!(p.file("foo-bar-2.1.win32.exe").unwrap().version_text, None);
}

#[test]
fn json_filter_removes_refused_releases_and_rewrites_urls() {
    let p = page("foo-bar.json", "foo-bar", JSON_CONTENT_TYPE);
    let body = render(&p, &|v| v != "2.0", PageFormat::Json);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["1.0", "2.1", "3.0a1"]));
    assert_eq!(doc["meta"]["api-version"], "1.1");
    assert_eq!(doc["meta"]["_last-serial"], 42);
    assert!(doc["alternate-locations"].is_array());
    let files = doc["files"].as_array().unwrap();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    // 2.0's files are gone, and so is the `.exe` nobody could check.
    assert_eq!(
        names,
        [
            "foo_bar-1.0.0-py3-none-any.whl",
            "foo-bar-1.0.tar.gz",
            "foo_bar-2.1-py3-none-any.whl",
            "foo_bar-2.1.tar.gz"
        ]
    );
    let wheel = &files[2];
    assert_eq!(
        wheel["url"],
        "http://127.0.0.1:8080/pypi/files/packages/ee/ff/5555/foo_bar-2.1-py3-none-any.whl"
    );
    assert_eq!(wheel["upload-time"], "2023-06-07T08:09:10Z");
    assert_eq!(wheel["requires-python"], ">=3.8,<4");
    assert!(wheel["core-metadata"]["sha256"].is_string());
    assert_eq!(wheel["dist-info-metadata"], wheel["core-metadata"]);
    assert_eq!(wheel["x-custom"], 1);
    assert!(wheel["provenance"]
        .as_str()
        .unwrap()
        .ends_with("/provenance"));
    assert_eq!(files[0]["upload-time"], "2021-03-04T05:06:07.123456Z");
    assert_eq!(files[0]["hashes"], serde_json::json!(p.files[0].hashes));
}

#[test]
fn html_render_escapes_and_keeps_fragments_and_attributes() {
    let p = page("foo-bar.json", "foo-bar", JSON_CONTENT_TYPE);
    let body = render(&p, &|_| true, PageFormat::LegacyHtml);
    assert!(body.contains("<meta name=\"pypi:repository-version\" content=\"1.1\">"));
    assert!(body.contains("data-yanked=\"broken build &lt;see #12&gt; &amp; &quot;quotes&quot;\""));
    assert!(body.contains("data-requires-python=\"&gt;=3.8,&lt;4\""));
    let sha = &p.file("foo_bar-2.1-py3-none-any.whl").unwrap().hashes["sha256"];
    assert!(body.contains(&format!(
        "href=\"http://127.0.0.1:8080/pypi/files/packages/ee/ff/5555/foo_bar-2.1-py3-none-any.whl#sha256={sha}\""
    )));
    assert!(body.contains("data-core-metadata=\"sha256="));
    // Round trip: our own HTML (with no `versions` list, `1.0` is spelled as its first
    // file spells it, `1.0.0`, so compare parsed versions) parses back into the same releases, yanks and metadata flags.
    let url = Url::parse("http://127.0.0.1:8080/pypi/simple/foo-bar/").unwrap();
    let back = parse_project_page(
        body.as_bytes(),
        Some("text/html"),
        &url,
        &project("foo-bar"),
    )
    .unwrap();
    let (a, b) = (p.records().unwrap(), back.records().unwrap());
    let texts = |r: &[depfw::registry::VersionRecord]| {
        r.iter()
            .filter(|r| !r.artifacts.is_empty())
            .map(|r| (r.version.clone(), r.metadata.clone(), r.artifacts.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&a), texts(&b));
    assert_eq!(
        back.file("foo_bar-2.0.tar.gz").unwrap().yanked.as_deref(),
        Some("")
    );
}

#[test]
fn html_upstream_renders_as_json_with_derived_versions() {
    let idna = page("idna.html", "idna", "text/html");
    let body = render(&idna, &|v| v != "3.10", PageFormat::Json);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    // No sizes from HTML: claim only API 1.0.
    assert_eq!(doc["meta"]["api-version"], "1.0");
    let versions: Vec<&str> = doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(versions.contains(&"3.9") && versions.contains(&"3.11"));
    assert!(!versions.contains(&"3.10"));
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), idna.files.len() - 2);
    assert!(files.iter().all(|f| f["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:8080/pypi/files/packages/")));
    assert!(files
        .iter()
        .all(|f| f["hashes"]["sha256"].as_str().unwrap().len() == 64));
}

#[test]
fn html_filter_removes_exactly_the_refused_files() {
    let idna = page("idna.html", "idna", "text/html");
    let body = render(
        &idna,
        &|v| v != "3.10" && v != "2.0",
        PageFormat::LegacyHtml,
    );
    assert!(!body.contains("idna-3.10"));
    assert!(!body.contains("idna-2.0-") && !body.contains("idna-2.0.tar"));
    assert!(body.contains("idna-3.9-py3-none-any.whl") && body.contains("idna-3.11.tar.gz"));
    assert_eq!(body.matches("<a ").count(), idna.files.len() - 4);
    assert!(!body.contains("files.pythonhosted.org"));
}

#[test]
fn files_outside_the_files_base_are_dropped() {
    let html = br#"<a href="https://evil.example/x/foo-1.0.tar.gz">foo-1.0.tar.gz</a>
        <a href="/packages/ab/foo-1.1.tar.gz?x=1">foo-1.1.tar.gz</a>"#;
    let url = Url::parse("https://files.pythonhosted.org/simple/foo/").unwrap();
    let p = parse_project_page(html, None, &url, &project("foo")).unwrap();
    assert_eq!(p.files.len(), 2);
    assert_eq!(
        p.files[1].url.as_str(),
        "https://files.pythonhosted.org/packages/ab/foo-1.1.tar.gz?x=1"
    );
    let body = render(&p, &|_| true, PageFormat::LegacyHtml);
    assert_eq!(body.matches("<a ").count(), 0);
}

#[test]
fn html_entities_and_relative_hrefs_are_decoded() {
    let html = br#"<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0"></head><body>
        <a href="../../packages/a/b/foo-1.0.tar.gz#sha256=AB&amp;" data-requires-python="&gt;=3.8" data-yanked="a &lt;b&gt;" data-dist-info-metadata="true">foo-1.0.tar.gz</a>
        <a href="https://files.pythonhosted.org/packages/c/foo-2.0-py3-none-any.whl">  foo-2.0-py3-none-any.whl  </a><br/>
        </body></html>"#;
    let url = Url::parse("https://files.pythonhosted.org/simple/foo/").unwrap();
    let p = parse_project_page(
        html,
        Some("text/html; charset=utf-8"),
        &url,
        &project("foo"),
    )
    .unwrap();
    let f = &p.files[0];
    assert_eq!(
        f.url.as_str(),
        "https://files.pythonhosted.org/packages/a/b/foo-1.0.tar.gz"
    );
    assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(f.yanked.as_deref(), Some("a <b>"));
    assert_eq!(f.dist_info_metadata, Some(Default::default()));
    assert_eq!(f.hashes["sha256"], "ab&");
    // A malformed digest makes the records (and so the page) fail, not a silent pass.
    assert!(matches!(p.records(), Err(ProtocolError::BadUpstream(_))));
    assert_eq!(p.files[1].filename, "foo-2.0-py3-none-any.whl");
    assert_eq!(p.files[1].version_text.as_deref(), Some("2.0"));
}

#[test]
fn malformed_upstream_pages_are_errors() {
    let url = Url::parse("https://pypi.org/simple/foo/").unwrap();
    let foo = project("foo");
    let json = |b: &str| parse_project_page(b.as_bytes(), Some(JSON_CONTENT_TYPE), &url, &foo);
    for bad in [
        "",
        "[]",
        "{\"files\": []}",
        "{\"meta\": {\"api-version\": \"2.0\"}, \"files\": []}",
        "{\"meta\": {\"api-version\": \"1.0\"}, \"name\": \"bar\", \"files\": []}",
        "{\"meta\": {\"api-version\": \"1.0\"}, \"files\": [{\"filename\": \"foo-1.0.tar.gz\"}]}",
        "{\"meta\": {\"api-version\": \"1.0\"}, \"files\": [{\"filename\": \"a\", \"url\": \"x\", \"hashes\": {}, \"yanked\": 3}]}",
        "{\"meta\": {\"api-version\": \"1.0\"}, \"files\": [{\"filename\": \"a\", \"url\": \"javascript:x\", \"hashes\": {}}]}",
        "{\"meta\": {\"api-version\": \"1.1\"}, \"files\": [{\"filename\": \"a\", \"url\": \"/a\", \"hashes\": {}, \"upload-time\": \"yesterday\"}]}",
    ] {
        assert!(matches!(json(bad), Err(ProtocolError::BadUpstream(_))), "{bad}");
    }
    assert!(
        json("{\"meta\": {\"api-version\": \"1.0\"}, \"name\": \"Foo\", \"files\": []}").is_ok()
    );
    let html = |b: &str| parse_project_page(b.as_bytes(), Some("text/html"), &url, &foo);
    assert!(html("<meta name=\"pypi:repository-version\" content=\"2.0\">").is_err());
    assert!(html("<a href=\"/x\" data-upload-time=\"soon\">foo-1.0.tar.gz</a>").is_err());
    // Tag soup is not an error, just no files.
    assert!(html("<<a <a href=>\u{0}</").unwrap().files.len() <= 1);
    assert!(html(&"<a href='/f'>".repeat(1000)).is_ok());
}

#[test]
fn negotiation_table() {
    let pip26 = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    let poetry = "application/vnd.pypi.simple.v1+json, */*;q=0.1";
    for (accept, query, expected) in [
        (Some(pip26), None, PageFormat::Json),
        (Some(poetry), None, PageFormat::Json),
        (Some("text/html"), None, PageFormat::LegacyHtml),
        (None, None, PageFormat::LegacyHtml),
        (Some("*/*"), None, PageFormat::LegacyHtml),
        (
            Some("application/vnd.pypi.simple.v1+html"),
            None,
            PageFormat::HtmlV1,
        ),
        (
            Some("application/vnd.pypi.simple.v1+json;q=0.2, text/html;q=0.5"),
            None,
            PageFormat::LegacyHtml,
        ),
        (
            Some("application/vnd.pypi.simple.v1+json;q=0, text/html;q=0.5"),
            None,
            PageFormat::LegacyHtml,
        ),
        (
            Some("application/vnd.pypi.simple.latest+json"),
            None,
            PageFormat::Json,
        ),
        (Some("application/xml"), None, PageFormat::LegacyHtml),
        (
            Some("text/html"),
            Some("format=application%2Fvnd.pypi.simple.v1%2Bjson"),
            PageFormat::Json,
        ),
        (
            Some(pip26),
            Some("format=text/html"),
            PageFormat::LegacyHtml,
        ),
        (Some(pip26), Some("format=bogus"), PageFormat::Json),
    ] {
        assert_eq!(negotiate(accept, query), expected, "{accept:?} {query:?}");
    }
    assert_eq!(
        PageFormat::Json.content_type(),
        "application/vnd.pypi.simple.v1+json"
    );
    assert_eq!(PageFormat::LegacyHtml.content_type(), "text/html");
}

#[test]
fn simple_paths_normalise_and_redirect() {
    assert_eq!(parse_simple_path("/simple/").unwrap(), SimpleRequest::Index);
    match parse_simple_path("/simple/idna/").unwrap() {
        SimpleRequest::Project(n) => assert_eq!(n.as_str(), "idna"),
        other => panic!("{other:?}"),
    }
    for other in [
        "/simple/Django/",
        "/simple/zope.interface/",
        "/simple/typing_extensions",
        "/simple/django",
    ] {
        let SimpleRequest::Redirect { location } = parse_simple_path(other).unwrap() else {
            panic!("{other}");
        };
        assert!(location.starts_with("/simple/") && location.ends_with('/'));
        assert!(matches!(
            parse_simple_path(&location).unwrap(),
            SimpleRequest::Project(_)
        ));
    }
    for bad in [
        "/simple/../etc/",
        "/simple/a%2Fb/",
        "/simple/-x/",
        "/other/",
        "/simple/a/b/",
        "/simple/%00/",
    ] {
        assert!(
            matches!(parse_simple_path(bad), Err(ProtocolError::BadPath(_))),
            "{bad}"
        );
    }
    let base = Url::parse("https://pypi.org/simple").unwrap();
    assert_eq!(
        upstream_project_url(&base, &project("Zope.Interface"))
            .unwrap()
            .as_str(),
        "https://pypi.org/simple/zope-interface/"
    );
}

#[test]
fn file_paths_map_back_to_upstream_and_release() {
    let base = files_base();
    let req = parse_file_path("packages/76/c6/abc/idna-3.10-py3-none-any.whl", &base).unwrap();
    assert_eq!(
        req.upstream_url.as_str(),
        "https://files.pythonhosted.org/packages/76/c6/abc/idna-3.10-py3-none-any.whl"
    );
    assert_eq!(req.kind, FileKind::Distribution);
    assert_eq!(req.dist.candidates()[0].name, "idna");
    let meta = parse_file_path(
        "packages/76/c6/abc/idna-3.10-py3-none-any.whl.metadata",
        &base,
    )
    .unwrap();
    assert_eq!(meta.kind, FileKind::CoreMetadata);
    assert_eq!(meta.filename, "idna-3.10-py3-none-any.whl");
    assert!(meta.upstream_url.as_str().ends_with(".whl.metadata"));
    // With a path prefix in the base (an Artifactory-style mirror).
    let prefixed = Url::parse("https://mirror.example/api/pypi/remote").unwrap();
    let req = parse_file_path("packages/x/foo-1.0.tar.gz", &prefixed).unwrap();
    assert_eq!(
        req.upstream_url.as_str(),
        "https://mirror.example/api/pypi/remote/packages/x/foo-1.0.tar.gz"
    );
    // The file and digest come from the project page.
    let idna = page("idna.html", "idna", "text/html");
    let f = idna.file("idna-3.10-py3-none-any.whl").unwrap();
    assert_eq!(f.version_text.as_deref(), Some("3.10"));
    assert!(f.digest().unwrap().is_some());
}

#[test]
fn hostile_file_paths_are_refused() {
    let base = files_base();
    for bad in [
        "",
        "/etc/passwd",
        "packages/../../etc/foo-1.0.tar.gz",
        "packages/%2e%2e/foo-1.0.tar.gz",
        "packages/a%2Fb/foo-1.0.tar.gz",
        "packages/a%5Cb/foo-1.0.tar.gz",
        "packages//foo-1.0.tar.gz",
        "https://evil.example/foo-1.0.tar.gz",
        "//evil.example/foo-1.0.tar.gz",
        "packages/foo-1.0.tar.gz?x=1",
        "packages/foo-1.0.tar.gz#frag",
        "packages/a\u{7}/foo-1.0.tar.gz",
        "packages/a%00/foo-1.0.tar.gz",
        "packages/a%0A/foo-1.0.tar.gz",
        "packages/x/setup.exe",
        "packages/x/%FF-1.0.tar.gz",
    ] {
        assert!(
            matches!(parse_file_path(bad, &base), Err(ProtocolError::BadPath(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn file_names_parse_wheels_sdists_and_eggs() {
    let wheel = DistFilename::parse("python_dateutil-2.8.2-py2.py3-none-any.whl").unwrap();
    assert_eq!(wheel.candidates().len(), 1);
    assert_eq!(
        wheel.version_for(&project("python-dateutil")),
        Some("2.8.2")
    );
    assert_eq!(wheel.version_for(&project("dateutil")), None);
    let sdist = DistFilename::parse("python-dateutil-2.8.2.tar.gz").unwrap();
    assert_eq!(sdist.candidates().len(), 1);
    assert_eq!(sdist.candidates()[0].name, "python-dateutil");
    assert_eq!(
        sdist.version_for(&project("Python_Dateutil")),
        Some("2.8.2")
    );
    let egg = DistFilename::parse("foo_bar-1.2-py2.7-linux-x86_64.egg").unwrap();
    assert_eq!(egg.version_for(&project("foo-bar")), Some("1.2"));
    for ext in ["zip", "tar.bz2", "tar.xz", "tgz"] {
        assert!(
            DistFilename::parse(&format!("foo-1.0.{ext}")).is_ok(),
            "{ext}"
        );
    }
    for bad in [
        "foo.whl",
        "foo-1.0.exe",
        "foo.tar.gz",
        "-1.0.tar.gz",
        "foo-bar.tar.gz",
        "a/b-1.0.tar.gz",
    ] {
        assert!(DistFilename::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn ambiguous_sdist_names_resolve_against_known_versions() {
    // `foo-1.0-1`: project `foo` at `1.0-1` (= 1.0.post1), or project `foo-1.0` at `1`.
    let f = DistFilename::parse("foo-1.0-1.tar.gz").unwrap();
    assert_eq!(f.candidates().len(), 2);
    let r = f.resolve(&["0.9", "1.0.post1"]).unwrap();
    assert_eq!((r.name.as_str(), r.version_text.as_str()), ("foo", "1.0-1"));
    let r = f.resolve(&["1", "2"]).unwrap();
    assert_eq!(r.name, "foo-1.0");
    assert!(
        f.resolve(&["1", "1.0.post1"]).is_err(),
        "both readings match: ambiguous"
    );
    assert!(f.resolve(&["3.0"]).is_err());
    // PEP 440 equality: a file spelled `1.0.0` matches a listed `1.0`.
    let f = DistFilename::parse("foo-1.0.0.tar.gz").unwrap();
    assert_eq!(f.resolve(&["1.0"]).unwrap().version_text, "1.0.0");
    assert_eq!(f.version_for(&project("foo-1-0")), None);
}

#[test]
fn refusing_a_release_removes_files_spelled_with_an_equal_version() {
    let p = page("foo-bar.json", "foo-bar", JSON_CONTENT_TYPE);
    let mut asked = Vec::new();
    let asked_cell = std::cell::RefCell::new(&mut asked);
    let body = render(
        &p,
        &|v| {
            asked_cell.borrow_mut().push(v.to_owned());
            v != "1.0"
        },
        PageFormat::Json,
    );
    // The callback sees each release once, by its record's version text.
    asked.sort();
    assert_eq!(asked, ["1.0", "2.0", "2.1", "3.0a1"]);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("1.0")), "{names:?}");
    // Our JSON parses back into the same releases.
    let url = Url::parse("http://127.0.0.1:8080/pypi/simple/foo-bar/").unwrap();
    let back = parse_project_page(
        body.as_bytes(),
        Some(JSON_CONTENT_TYPE),
        &url,
        &project("foo-bar"),
    )
    .unwrap();
    let strip = |records: Vec<depfw::registry::VersionRecord>| {
        records
            .into_iter()
            .map(|r| {
                (
                    r.version_text,
                    r.metadata.published,
                    r.metadata.yanked,
                    r.artifacts.len(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut expected = strip(p.records().unwrap());
    expected.retain(|r| r.0 != "1.0");
    // `package_created` is recomputed from what is left, so it is not compared.
    assert_eq!(strip(back.records().unwrap()), expected);
}

#[test]
fn file_requests_resolve_against_the_project_page() {
    let base = files_base();
    let p = page("foo-bar.json", "foo-bar", JSON_CONTENT_TYPE);
    let req = parse_file_path("packages/aa/bb/1111/foo_bar-1.0.0-py3-none-any.whl", &base).unwrap();
    assert_eq!(
        req.projects().iter().map(|n| n.key()).collect::<Vec<_>>(),
        ["foo-bar"]
    );
    let resolved = p.resolve_file(&req).unwrap();
    // The release is named as its record names it, not as the file spells it.
    assert_eq!(resolved.version_text, "1.0");
    assert_eq!(
        resolved.digest,
        p.file("foo_bar-1.0.0-py3-none-any.whl")
            .unwrap()
            .digest()
            .unwrap()
    );
    let meta = parse_file_path(
        "packages/ee/ff/5555/foo_bar-2.1-py3-none-any.whl.metadata",
        &base,
    )
    .unwrap();
    let resolved = p.resolve_file(&meta).unwrap();
    assert_eq!(resolved.version_text, "2.1");
    assert_ne!(
        resolved.digest,
        p.file("foo_bar-2.1-py3-none-any.whl")
            .unwrap()
            .digest()
            .unwrap()
    );
    assert!(resolved.digest.is_some());
    for unresolvable in [
        "packages/ee/ff/6666/foo_bar-2.1.tar.gz.metadata", // no metadata advertised
        "packages/zz/foo_bar-9.9.tar.gz",                  // not on the page
    ] {
        let req = parse_file_path(unresolvable, &base).unwrap();
        assert!(
            matches!(p.resolve_file(&req), Err(ProtocolError::BadPath(_))),
            "{unresolvable}"
        );
    }
    // An ambiguous sdist offers both projects to try.
    let req = parse_file_path("packages/x/foo-1.0-1.tar.gz", &base).unwrap();
    assert_eq!(
        req.projects().iter().map(|n| n.key()).collect::<Vec<_>>(),
        ["foo", "foo-1-0"]
    );
}
