//! crates.io sparse index: config, paths, index files (real itoa), API fallback.

use depfw::package::{Ecosystem, PackageName};
use depfw::registry::cargo::api::{merge_api_metadata, parse_crate_api};
use depfw::registry::cargo::{
    index_path, parse_download_path, parse_index_path, parse_upstream_config, render_config,
    upstream_index_url, IndexFile, IndexRequest, UpstreamConfig,
};
use depfw::registry::{Digest, ProtocolError};
use url::Url;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::support::fixture("cargo").join(name)).unwrap()
}

fn krate(name: &str) -> PackageName {
    PackageName::parse(Ecosystem::CratesIo, name).unwrap()
}

fn itoa() -> IndexFile {
    IndexFile::parse(&fixture("itoa"), &krate("itoa")).unwrap()
}

#[test]
fn config_points_downloads_at_the_proxy() {
    let body = render_config(&Url::parse("http://127.0.0.1:8080/").unwrap(), false);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["dl"],
        "http://127.0.0.1:8080/cargo/dl/{crate}/{version}/{sha256-checksum}"
    );
    assert_eq!(doc["auth-required"], false);
    assert!(doc.get("api").is_none());
}

#[test]
fn real_index_file_parses_into_records() {
    let index = itoa();
    let raw = String::from_utf8(fixture("itoa")).unwrap();
    assert_eq!(index.lines.len(), raw.lines().count());
    let records = index.records();
    let first = &records[0];
    assert_eq!(first.version_text, "0.1.0");
    assert_eq!(
        first.metadata.published,
        Some("2016-06-25T21:50:33Z".parse().unwrap())
    );
    assert_eq!(
        first.artifacts[0].digest,
        Some(Digest::Sha256(
            hex::decode("8fe390286ad3ad1b175ad07a638c83463c86cbdb5e38075c2ef44e10c694702b")
                .unwrap()
        ))
    );
    assert!(records
        .iter()
        .all(|r| r.metadata.package_created == first.metadata.published && r.version.is_some()));
    assert!(records.iter().all(|r| r.metadata.yanked.is_none()));
    let last = records.last().unwrap();
    assert_eq!(
        last.metadata.published,
        Some("2026-03-20T00:12:37Z".parse().unwrap())
    );
}

#[test]
fn filtering_drops_exactly_the_refused_lines_byte_for_byte() {
    let index = itoa();
    let raw = String::from_utf8(fixture("itoa")).unwrap();
    let body = index.render(&|v| v != "1.0.11" && !v.starts_with("0."));
    let kept: Vec<&str> = body.lines().collect();
    let expected: Vec<&str> = raw
        .lines()
        .filter(|l| !l.contains("\"vers\": \"1.0.11\"") && !l.contains("\"vers\": \"0."))
        .collect();
    assert_eq!(kept, expected);
    assert!(kept.len() < raw.lines().count() - 1);
    assert_eq!(index.render(&|_| true).trim_end(), raw.trim_end());
}

#[test]
fn yanked_and_missing_pubtime_and_unknown_fields() {
    let body = concat!(
        r#"{"name":"Foo_Bar","vers":"1.0.0","deps":[],"cksum":"0000000000000000000000000000000000000000000000000000000000000001","features":{},"yanked":true,"future_field":[1,2]}"#,
        "\r\n\n",
        r#"{"vers":"1.1.0","name":"foo-bar","cksum":"0000000000000000000000000000000000000000000000000000000000000002","pubtime":"2025-12-01T10:00:00Z","v":2,"features2":{}}"#,
    );
    let index = IndexFile::parse(body.as_bytes(), &krate("foo_bar")).unwrap();
    let records = index.records();
    assert_eq!(records[0].metadata.yanked, Some(String::new()));
    assert_eq!(records[0].metadata.published, None);
    assert_eq!(records[1].metadata.yanked, None);
    assert_eq!(
        records[1].metadata.package_created,
        records[1].metadata.published
    );
    assert_eq!(index.lines[1].line_number, 3);
    assert!(index
        .render(&|v| v == "1.0.0")
        .ends_with("\"future_field\":[1,2]}\n"));
}

#[test]
fn malformed_lines_fail_with_their_line_number() {
    let ok = r#"{"name":"foo","vers":"1.0.0","cksum":"0000000000000000000000000000000000000000000000000000000000000001"}"#;
    for (bad, line) in [
        (format!("{ok}\n{{not json"), 2),
        (
            format!("{ok}\n{ok}\n{{\"name\":\"foo\",\"vers\":\"1.0.1\"}}"),
            3,
        ),
        (format!("{}\n{ok}", ok.replace("0001\"", "01\"")), 1),
        (ok.replace("\"foo\"", "\"other\""), 1),
        (
            format!("{ok}\n{}", ok.replace("}", ",\"pubtime\":\"last week\"}")),
            2,
        ),
        (format!("{ok}\n[1,2]"), 2),
    ] {
        match IndexFile::parse(bad.as_bytes(), &krate("foo")) {
            Err(ProtocolError::BadUpstream(msg)) => {
                assert!(msg.contains(&format!("line {line}")), "{msg}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(IndexFile::parse(&[0xff, 0xfe], &krate("foo")).is_err());
    // An unparsable version is kept as a record with no parsed version (the proxy fails closed).
    let odd = ok.replace("1.0.0", "1.0");
    assert_eq!(
        IndexFile::parse(odd.as_bytes(), &krate("foo"))
            .unwrap()
            .records()[0]
            .version,
        None
    );
}

#[test]
fn index_paths_round_trip() {
    for (name, path) in [
        ("a", "1/a"),
        ("ab", "2/ab"),
        ("abc", "3/a/abc"),
        ("itoa", "it/oa/itoa"),
        ("serde_json", "se/rd/serde_json"),
        ("Inflector", "in/fl/inflector"),
    ] {
        assert_eq!(index_path(&krate(name)), path);
        match parse_index_path(path).unwrap() {
            IndexRequest::Crate(n) => assert_eq!(n.as_str(), name.to_ascii_lowercase()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        parse_index_path("config.json").unwrap(),
        IndexRequest::Config
    );
    for bad in [
        "it/oa/serde",
        "1/ab",
        "3/b/abc",
        "It/oa/itoa",
        "in/fl/Inflector",
        "../it/oa/itoa",
        "it/oa/../itoa",
        "it/oa/it%2Foa",
        "",
        "2/",
        "se/rd/serde json",
    ] {
        assert!(
            matches!(parse_index_path(bad), Err(ProtocolError::BadPath(_))),
            "{bad}"
        );
    }
    let base = Url::parse("https://index.crates.io").unwrap();
    assert_eq!(
        upstream_index_url(&base, &krate("itoa")).unwrap().as_str(),
        "https://index.crates.io/it/oa/itoa"
    );
}

#[test]
fn download_paths_and_upstream_urls() {
    let sum = "8fe390286ad3ad1b175ad07a638c83463c86cbdb5e38075c2ef44e10c694702b";
    let dl = parse_download_path(&format!("dl/Itoa/1.0.11/{sum}")).unwrap();
    assert_eq!(dl.name.as_str(), "Itoa");
    assert_eq!(dl.version_text, "1.0.11");
    assert_eq!(dl.checksum, Digest::Sha256(hex::decode(sum).unwrap()));
    let real = parse_upstream_config(&fixture("config.json")).unwrap();
    assert_eq!(
        real.download_url(&dl).unwrap().as_str(),
        "https://index.crates.io/artifactory/api/cargo/crates-io/v1/crates/Itoa/1.0.11/download"
    );
    assert_eq!(
        UpstreamConfig::default()
            .download_url(&dl)
            .unwrap()
            .as_str(),
        "https://static.crates.io/crates/Itoa/Itoa-1.0.11.crate"
    );
    let markers = UpstreamConfig {
        dl: "https://m.example/{prefix}/{lowerprefix}/{crate}/{version}/{sha256-checksum}".into(),
        api: None,
        auth_required: false,
    };
    assert_eq!(
        markers.download_url(&dl).unwrap().as_str(),
        format!("https://m.example/It/oa/it/oa/Itoa/1.0.11/{sum}")
    );
    for bad in [
        format!("dl/itoa/1.0/{sum}"),
        format!("dl/itoa/1.0.11/{}", &sum[..63]),
        "dl/itoa/1.0.11/zz".to_owned(),
        format!("dl/../1.0.11/{sum}"),
        format!("dl/itoa/1.0.11/{sum}/extra"),
        format!("crates/itoa/1.0.11/{sum}"),
        format!("dl/it%2Foa/1.0.11/{sum}"),
    ] {
        assert!(
            matches!(parse_download_path(&bad), Err(ProtocolError::BadPath(_))),
            "{bad}"
        );
    }
    let records = itoa().records_with_urls(&real).unwrap();
    assert_eq!(
        records[0].artifacts[0].upstream_url,
        "https://index.crates.io/artifactory/api/cargo/crates-io/v1/crates/itoa/0.1.0/download"
    );
    let with_sum = itoa().records_with_urls(&markers).unwrap();
    assert!(with_sum[0].artifacts[0].upstream_url.ends_with(
        "/it/oa/it/oa/itoa/0.1.0/8fe390286ad3ad1b175ad07a638c83463c86cbdb5e38075c2ef44e10c694702b"
    ));
    assert!(parse_upstream_config(b"{\"dl\": \"not a url\"}").is_err());
    assert!(parse_upstream_config(b"[]").is_err());
}

#[test]
fn api_fills_missing_publish_times_and_licenses() {
    let api = parse_crate_api(&fixture("itoa-api.json")).unwrap();
    assert_eq!(
        api.created_at,
        Some("2016-06-25T21:50:33.123456Z".parse().unwrap())
    );
    let body = concat!(
        r#"{"name":"itoa","vers":"0.1.0","cksum":"0000000000000000000000000000000000000000000000000000000000000001"}"#,
        "\n",
        r#"{"name":"itoa","vers":"1.0.0","cksum":"0000000000000000000000000000000000000000000000000000000000000002","pubtime":"2030-01-01T00:00:00Z"}"#,
    );
    let mut records = IndexFile::parse(body.as_bytes(), &krate("itoa"))
        .unwrap()
        .records();
    merge_api_metadata(&mut records, &api);
    let api_v010 = &api.versions["0.1.0"];
    assert_eq!(records[0].metadata.published, api_v010.published);
    assert!(records[0].metadata.published.is_some());
    assert_eq!(
        records[0].metadata.license, None,
        "the fixture has no license for 0.1.0"
    );
    // The index's own pubtime wins; the license comes from the API.
    assert_eq!(
        records[1].metadata.published,
        Some("2030-01-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        records[1].metadata.license.as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert!(records
        .iter()
        .all(|r| r.metadata.package_created == api.created_at));
    assert!(parse_crate_api(b"{\"versions\": [{\"created_at\": \"x\"}]}").is_err());
}
