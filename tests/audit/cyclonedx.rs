//! Issue #16: `depfw audit --format cyclonedx` is a valid CycloneDX 1.6 document (the
//! official schema) for real lockfiles, and `depfw audit` reads SBOMs (CycloneDX, SPDX) as
//! input: an SBOM of a lockfile audits exactly like the lockfile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use depfw::package::{purl, Ecosystem};

use crate::support::{self, cyclonedx::assert_valid, depfw};

/// Real lockfiles of every ecosystem, several pinning vulnerable versions.
const FIXTURES: [&str; 11] = [
    "public/npm/alexa-sandwich-recipe/package-lock.json",
    "public/npm/json_index/npm-shrinkwrap.json",
    "public/pnpm/express-railway/pnpm-lock.yaml",
    "public/yarn/toposort/yarn.lock",
    "public/bun/s3lite/bun.lock",
    "public/cargo/advent-of-code-2020/Cargo.lock",
    "public/poetry/tictactoe/poetry.lock",
    "public/pipfile/contact-book-cli/Pipfile.lock",
    "public/uv/test_pkg/uv.lock",
    "python/requirements/requirements.txt",
    "python/poetry-1/poetry.lock",
];

fn parsed(out: &Output) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn audit(path: &Path, format: &str) -> Value {
    parsed(&depfw(&[
        "audit",
        path.to_str().unwrap(),
        "--format",
        format,
    ]))
}

fn fixture(rel: &str) -> std::path::PathBuf {
    let path = support::lockfile(rel);
    if path.exists() {
        return path;
    }
    // `public/uv/test_pkg` and the like hold their lockfile under its own name.
    let dir = path.parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| depfw::audit::LockfileKind::detect(p).is_some())
        .unwrap_or_else(|| panic!("no lockfile in {}", dir.display()))
}

type Results = BTreeMap<(String, String), (String, Vec<String>)>;

/// purl (without qualifiers) → (verdict, ids) of the JSON report's results.
fn results(report: &Value) -> Results {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let ids = r["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect();
            let ecosystem: Ecosystem = r["ecosystem"].as_str().unwrap().parse().unwrap();
            let name = r["name"].as_str().unwrap();
            let version = r["version"].as_str().unwrap();
            (
                (
                    purl::format(ecosystem, name, version, &[]),
                    version.to_owned(),
                ),
                (r["verdict"].as_str().unwrap().to_owned(), ids),
            )
        })
        .collect()
}

/// Only the results an advisory decided: what an SBOM, which records no license or
/// install scripts, must reproduce exactly.
fn advisories(results: Results) -> Results {
    results
        .into_iter()
        .filter(|(_, (_, ids))| !ids.is_empty())
        .collect()
}

fn property<'a>(item: &'a Value, name: &str) -> Vec<&'a str> {
    item["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == name)
        .map(|p| p["value"].as_str().unwrap())
        .collect()
}

#[test]
fn cyclonedx_of_real_lockfiles_is_schema_valid_and_carries_every_finding() {
    let mut vulnerable = 0;
    for rel in FIXTURES {
        let path = fixture(rel);
        let bom = audit(&path, "cyclonedx");
        assert_valid(&bom);
        assert_eq!(bom["specVersion"], "1.6");
        let report = audit(&path, "json");

        let components = bom["components"].as_array().unwrap();
        let refs: BTreeSet<&str> = components
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), components.len(), "{rel}: bom-refs are unique");
        assert!(!components.is_empty(), "{rel}");
        for c in components {
            let purl = c["purl"].as_str().unwrap();
            assert!(
                ["pkg:npm/", "pkg:pypi/", "pkg:cargo/"]
                    .iter()
                    .any(|p| purl.starts_with(p)),
                "{purl}"
            );
            assert!(!property(c, "depfw:lockfile").is_empty(), "{c}");
        }

        // Every advisory of the JSON report is a vulnerability affecting its component,
        // which carries depfw's verdict.
        let vulns = bom["vulnerabilities"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for ((purl, version), (verdict, ids)) in results(&report) {
            let component = components
                .iter()
                .find(|c| c["purl"].as_str().unwrap().split('?').next() == Some(purl.as_str()))
                .unwrap_or_else(|| panic!("{rel}: no component for {purl} ({version})"));
            assert_eq!(property(component, "depfw:verdict"), [verdict.as_str()]);
            let purl = component["purl"].as_str().unwrap();
            for id in &ids {
                let v = vulns
                    .iter()
                    .find(|v| {
                        v["id"] == id.as_str()
                            || v["references"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|r| r["id"] == id.as_str())
                    })
                    .unwrap_or_else(|| panic!("{rel}: {id} of {purl} missing"));
                assert!(
                    v["affects"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["ref"] == purl),
                    "{rel}: {id} does not affect {purl}: {v}"
                );
                vulnerable += 1;
            }
        }
        for v in &vulns {
            assert_eq!(
                v["source"]["url"].as_str().unwrap(),
                format!(
                    "https://osv.dev/vulnerability/{}",
                    v["id"].as_str().unwrap()
                )
            );
            assert!(!v["ratings"][0]["severity"].as_str().unwrap().is_empty());
            assert!(v["analysis"]["detail"]
                .as_str()
                .unwrap()
                .contains("depfw verdict"));
            for a in v["affects"].as_array().unwrap() {
                assert!(refs.contains(a["ref"].as_str().unwrap()), "{a}");
            }
        }
    }
    assert!(
        vulnerable >= 20,
        "the fixtures pin vulnerable versions: {vulnerable}"
    );
}

/// Scoped npm names, PyPI's normalised names and crates are spelled as the purl spec says.
#[test]
fn purls_follow_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("package-lock.json");
    std::fs::write(
        &lock,
        json!({
            "name": "app", "version": "1.0.0", "lockfileVersion": 3,
            "packages": {
                "": { "name": "app", "version": "1.0.0" },
                "node_modules/@babel/core": { "version": "7.24.0" },
                "node_modules/left-pad": { "version": "1.3.0" },
            }
        })
        .to_string(),
    )
    .unwrap();
    let bom = audit(&lock, "cyclonedx");
    assert_valid(&bom);
    let purls: BTreeSet<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    assert_eq!(
        purls,
        BTreeSet::from(["pkg:npm/%40babel/core@7.24.0", "pkg:npm/left-pad@1.3.0"])
    );
    let req = dir.path().join("requirements.txt");
    std::fs::write(&req, "Typing_Extensions==4.12.2\n").unwrap();
    let bom = audit(&req, "cyclonedx");
    assert_eq!(
        bom["components"][0]["purl"],
        "pkg:pypi/typing-extensions@4.12.2"
    );
}

/// The audit's SBOM read back as input finds exactly what the lockfile's audit found; an
/// SPDX 2.3 document listing the same purls too.
#[test]
fn an_sbom_audits_like_its_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "public/npm/alexa-sandwich-recipe/package-lock.json",
        "public/cargo/advent-of-code-2020/Cargo.lock",
        "python/requirements/requirements.txt",
    ] {
        let path = fixture(rel);
        let expected = advisories(results(&audit(&path, "json")));
        assert!(!expected.is_empty(), "{rel}");
        let bom = audit(&path, "cyclonedx");

        let cdx = dir.path().join("app.cdx.json");
        std::fs::write(&cdx, serde_json::to_string_pretty(&bom).unwrap()).unwrap();
        let report = audit(&cdx, "json");
        assert_eq!(report["lockfiles"][0]["kind"], "cyclonedx", "{report}");
        assert_eq!(
            advisories(results(&report)),
            expected,
            "{rel} via CycloneDX"
        );
        // Results point at the SBOM line naming the package.
        let text = std::fs::read_to_string(&cdx).unwrap();
        let first = &report["results"][0];
        let line = first["line"].as_u64().unwrap() as usize;
        assert!(
            text.lines().nth(line - 1).unwrap().contains("pkg:"),
            "{first}"
        );

        let packages: Vec<Value> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "SPDXID": format!("SPDXRef-Package-{i}"),
                    "name": c["name"],
                    "versionInfo": c["version"],
                    "downloadLocation": "NOASSERTION",
                    "externalRefs": [{
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": c["purl"],
                    }],
                })
            })
            .collect();
        let spdx = dir.path().join("app.spdx.json");
        std::fs::write(
            &spdx,
            json!({
                "spdxVersion": "SPDX-2.3",
                "dataLicense": "CC0-1.0",
                "SPDXID": "SPDXRef-DOCUMENT",
                "name": "app",
                "packages": packages,
            })
            .to_string(),
        )
        .unwrap();
        let report = audit(&spdx, "json");
        assert_eq!(report["lockfiles"][0]["kind"], "spdx", "{report}");
        assert_eq!(advisories(results(&report)), expected, "{rel} via SPDX");
    }
}

/// A file named explicitly is recognised as an SBOM by its content; in a directory, by the
/// names the specs recommend (`*.cdx.json`, `*.spdx.json`).
#[test]
fn sboms_are_recognised_by_content_and_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bom = json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5",
        "components": [{ "type": "library", "name": "lodash", "version": "4.17.4",
                         "purl": "pkg:npm/lodash@4.17.4" }],
    });
    let plain = dir.path().join("sbom.json");
    std::fs::write(&plain, bom.to_string()).unwrap();
    let report = audit(&plain, "json");
    assert_eq!(report["lockfiles"][0]["kind"], "cyclonedx");
    assert!(
        results(&report).contains_key(&("pkg:npm/lodash@4.17.4".to_owned(), "4.17.4".to_owned()))
    );

    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("sbom.json"), bom.to_string()).unwrap();
    std::fs::write(tree.path().join("web.cdx.json"), bom.to_string()).unwrap();
    let report = audit(tree.path(), "json");
    let kinds: Vec<&Value> = report["lockfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["kind"])
        .collect();
    assert_eq!(kinds, [&json!("cyclonedx")], "only the .cdx.json: {report}");

    // The committed SBOMs (also the fuzz seeds) read without error, with the advisories of
    // the requirements file they describe.
    let report = audit(&support::lockfile("sbom"), "json");
    let kinds: BTreeSet<&str> = report["lockfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert!(l["error"].is_null(), "{l}");
            l["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, BTreeSet::from(["cyclonedx", "spdx"]));
    let requirements = audit(
        &support::lockfile("python/requirements/requirements.txt"),
        "json",
    );
    assert_eq!(
        advisories(results(&report)),
        advisories(results(&requirements))
    );

    let other = dir.path().join("notes.json");
    std::fs::write(&other, "{\"hello\": 1}").unwrap();
    let out = depfw(&["audit", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SBOM"));
}

/// A malformed SBOM is an error at its line; a huge one is refused unread; neither panics
/// (exit 2, not 101) and the other files are still audited.
#[test]
fn hostile_sboms_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.cdx.json");
    std::fs::write(
        &broken,
        "{\n  \"bomFormat\": \"CycloneDX\",\n  \"components\": [\n    {\"purl\": 7}\n  ]\n}\n",
    )
    .unwrap();
    let bad_purl = dir.path().join("purl.spdx.json");
    std::fs::write(
        &bad_purl,
        "{\"spdxVersion\": \"SPDX-2.3\", \"packages\": [{\"externalRefs\": [\n{\"referenceCategory\": \"PACKAGE-MANAGER\", \"referenceType\": \"purl\", \"referenceLocator\": \"npm/x@1\"}]}]}",
    )
    .unwrap();
    let huge = dir.path().join("huge.cdx.json");
    // Sparse: takes no disk, and is refused by its size before a byte is read.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(depfw::audit::run::MAX_LOCKFILE_BYTES + 1)
        .unwrap();
    let deep = dir.path().join("deep.cdx.json");
    std::fs::write(
        &deep,
        format!(
            "{{\"bomFormat\": \"CycloneDX\", \"components\": {}{}}}",
            "[{\"components\": ".repeat(100_000),
            "]}".repeat(100_000)
        ),
    )
    .unwrap();
    let good = dir.path().join("package-lock.json");
    std::fs::copy(support::lockfile("npm/v3/package-lock.json"), &good).unwrap();

    let out = depfw(&["audit", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: BTreeMap<String, String> = report["lockfiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| !l["error"].is_null())
        .map(|l| {
            let path = l["path"].as_str().unwrap();
            let name = Path::new(path).file_name().unwrap().to_str().unwrap();
            (name.to_owned(), l["error"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(
        errors["broken.cdx.json"].contains("broken.cdx.json:4: invalid JSON"),
        "{errors:?}"
    );
    assert!(
        errors["purl.spdx.json"].contains(":2: invalid package URL `npm/x@1`"),
        "{errors:?}"
    );
    assert!(
        errors["huge.cdx.json"].contains("larger than 256 MiB"),
        "{errors:?}"
    );
    assert!(
        errors["deep.cdx.json"].contains("recursion limit"),
        "{errors:?}"
    );
    assert!(
        report["packages_scanned"].as_u64().unwrap() >= 5,
        "the good lockfile is still scanned: {report}"
    );
}
