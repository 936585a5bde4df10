//! `depfw audit` lockfile parsers for Cargo.lock and the Python formats, on the fixtures
//! in tests/fixtures/lockfiles (sources in README-python-cargo.md).

use std::path::Path;

use depfw::audit::{parse_lockfile, LockedPackage, LockfileKind, PackageSource, ParseError};
use depfw::package::Ecosystem;

use crate::support::lockfile as fixture;

fn parse_file(rel: &str, kind: LockfileKind) -> Result<Vec<LockedPackage>, ParseError> {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_lockfile(&path, kind, &text).map(|l| l.packages)
}

fn parse_text(
    name: &str,
    kind: LockfileKind,
    text: &str,
) -> Result<Vec<LockedPackage>, ParseError> {
    parse_lockfile(Path::new(name), kind, text).map(|l| l.packages)
}

/// (name, version, source, line) — the parts every assertion compares.
type Row = (String, String, PackageSource, Option<u32>);

fn rows(packages: &[LockedPackage]) -> Vec<Row> {
    packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.source.clone(), p.line))
        .collect()
}

fn row(name: &str, version: &str, source: PackageSource, line: u32) -> Row {
    (name.into(), version.into(), source, Some(line))
}

fn registry() -> PackageSource {
    PackageSource::Registry { url: None }
}
fn registry_at(url: &str) -> PackageSource {
    PackageSource::Registry {
        url: Some(url.into()),
    }
}
fn git(url: &str) -> PackageSource {
    PackageSource::Git { url: url.into() }
}
fn local(path: &str) -> PackageSource {
    PackageSource::Path { path: path.into() }
}
fn url(u: &str) -> PackageSource {
    PackageSource::Url { url: u.into() }
}
fn workspace(path: &str) -> PackageSource {
    PackageSource::Workspace { path: path.into() }
}

// ---------------------------------------------------------------- Cargo.lock

#[test]
fn cargo_v4_generated_by_cargo() {
    let pkgs = parse_file("cargo/v4/Cargo.lock", LockfileKind::CargoLock).unwrap();
    assert!(pkgs.iter().all(|p| p.ecosystem == Ecosystem::CratesIo));
    let commit = "https://github.com/example/gitdep#6c9e1eb5321ccb45a8f4f264729b4140b210f52f";
    assert_eq!(
        rows(&pkgs),
        vec![
            row("app", "0.1.0", workspace(""), 6),
            // The `?branch=master` and default-branch entries are the same commit: kept once.
            row("gitdep", "0.1.0", git(commit), 17),
            row("itoa", "1.0.11", registry(), 27),
            row("pathdep", "0.1.0", workspace(""), 33),
            row("smallvec", "1.6.0", registry(), 37),
        ]
    );
}

#[test]
fn cargo_v3_alternative_registry_and_git_rev() {
    let pkgs = parse_file("cargo/v3/Cargo.lock", LockfileKind::CargoLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("app", "0.1.0", workspace(""), 6),
            row(
                "gitdep",
                "0.1.0",
                git("https://github.com/example/gitdep#6c9e1eb5321ccb45a8f4f264729b4140b210f52f"),
                16
            ),
            row(
                "internal-crate",
                "2.3.1",
                registry_at("https://crates.example.com/index/"),
                21
            ),
            row("itoa", "1.0.11", registry(), 27),
            row("pathdep", "0.1.0", workspace(""), 33),
        ]
    );
}

#[test]
fn cargo_v2_two_versions_of_one_crate() {
    let pkgs = parse_file("cargo/v2/Cargo.lock", LockfileKind::CargoLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("app", "0.1.0", workspace(""), 4),
            row("itoa", "0.4.8", registry(), 13),
            row("itoa", "1.0.11", registry(), 19),
            row(
                "vendored",
                "0.3.0",
                registry_at("https://git.example.com/private-index"),
                25
            ),
        ]
    );
}

#[test]
fn cargo_v1_with_metadata_checksums() {
    let pkgs = parse_file("cargo/v1/Cargo.lock", LockfileKind::CargoLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("app", "0.1.0", workspace(""), 2),
            row("itoa", "0.4.8", registry(), 10),
            row("smallvec", "0.6.9", registry(), 15),
        ]
    );
}

#[test]
fn cargo_rustsec_fixture_pins_vulnerable_crates() {
    let pkgs = parse_file("cargo/rustsec/Cargo.lock", LockfileKind::CargoLock).unwrap();
    assert_eq!(pkgs.len(), 8);
    let find = |n: &str| pkgs.iter().find(|p| p.name == n).unwrap();
    // RUSTSEC-2021-0003 (smallvec < 1.6.1) and RUSTSEC-2020-0071 (time < 0.2.23).
    assert_eq!(find("smallvec").version, "1.6.0");
    assert_eq!(find("time").version, "0.1.43");
    assert_eq!(find("rs").source, workspace(""));
    assert!(pkgs
        .iter()
        .filter(|p| p.name != "rs")
        .all(|p| p.source == registry()));
}

#[test]
fn cargo_bad_version_and_source_name_the_line() {
    let text = "version = 3\n\n[[package]]\nname = \"a\"\nversion = \"1.x\"\n";
    let err = parse_text("Cargo.lock", LockfileKind::CargoLock, text).unwrap_err();
    assert_eq!(err.line, Some(5));
    assert!(err.message.contains("1.x"), "{err}");

    let text = "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"ftp+x://y\"\n";
    let err = parse_text("Cargo.lock", LockfileKind::CargoLock, text).unwrap_err();
    assert_eq!(err.line, Some(4));
    assert_eq!(err.file, Path::new("Cargo.lock"));
}

// ---------------------------------------------------------------- uv.lock

#[test]
fn uv_generated_by_uv() {
    let pkgs = parse_file("python/uv/uv.lock", LockfileKind::UvLock).unwrap();
    assert!(pkgs.iter().all(|p| p.ecosystem == Ecosystem::PyPI));
    assert_eq!(
        rows(&pkgs),
        vec![
            row("demo", "0.1.0", workspace("."), 6),
            row("localdep", "0.1.0", local("localdep"), 23),
            row("six", "1.16.0", registry(), 28),
            row("urllib3", "1.26.4", registry(), 37),
        ]
    );
}

#[test]
fn uv_sources_forks_and_workspace_members() {
    let pkgs = parse_file("python/uv-sources/uv.lock", LockfileKind::UvLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("app", "0.1.0", workspace("."), 16),
            row("member-lib", "0.2.0", workspace("packages/member-lib"), 30),
            row("numpy", "1.24.4", registry(), 35),
            row("numpy", "2.0.2", registry(), 44),
            row(
                "private-pkg",
                "3.1.0",
                registry_at("https://pypi.internal.example/simple"),
                53
            ),
            row(
                "requests",
                "2.32.3",
                git("https://github.com/psf/requests?tag=v2.32.3#0e322af87745eff34caffe4df68456ebc20d9068"),
                59
            ),
            row("tarball", "1.0", url("https://example.com/tarball-1.0.tar.gz"), 64),
            row(
                "vendored-wheel",
                "0.5.0",
                local("wheels/vendored_wheel-0.5.0-py3-none-any.whl"),
                70
            ),
        ]
    );
}

#[test]
fn uv_unsupported_version_and_unknown_source() {
    let err = parse_text("uv.lock", LockfileKind::UvLock, "version = 2\n").unwrap_err();
    assert_eq!(err.line, Some(1));
    let text =
        "version = 1\n\n[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { ftp = \"x\" }\n";
    let err = parse_text("uv.lock", LockfileKind::UvLock, text).unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
}

// ---------------------------------------------------------------- poetry.lock

#[test]
fn poetry_2_generated_by_poetry() {
    let pkgs = parse_file("python/poetry-2/poetry.lock", LockfileKind::PoetryLock).unwrap();
    // The fixture's `legacy` source is pypi.org's simple index itself: the default registry.
    assert_eq!(
        rows(&pkgs),
        vec![
            row("localdep", "0.1.0", local("localdep"), 4),
            row("six", "1.16.0", registry(), 18),
            row("urllib3", "1.26.4", registry(), 35),
        ]
    );
}

#[test]
fn poetry_1_git_file_url_sources() {
    let pkgs = parse_file("python/poetry-1/poetry.lock", LockfileKind::PoetryLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row(
                "flask",
                "2.0.0",
                git(
                    "https://github.com/pallets/flask.git#b1abd2aa2ebe0ea6e6ba23c48e4d1b7e1bdd1d50"
                ),
                2
            ),
            row("jinja2", "2.11.2", registry(), 16),
            row(
                "localpkg",
                "0.1.0",
                local("vendor/localpkg-0.1.0.tar.gz"),
                27
            ),
            row(
                "remote-archive",
                "1.2.0",
                url("https://example.com/remote_archive-1.2.0.tar.gz"),
                40
            ),
        ]
    );
}

#[test]
fn poetry_legacy_index_other_than_pypi_is_reported() {
    let text = "[[package]]\nname = \"a\"\nversion = \"1.0\"\n\n[package.source]\ntype = \"legacy\"\nurl = \"https://mirror.example/simple\"\nreference = \"m\"\n\n[metadata]\nlock-version = \"2.0\"\n";
    let pkgs = parse_text("poetry.lock", LockfileKind::PoetryLock, text).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![row(
            "a",
            "1.0",
            registry_at("https://mirror.example/simple"),
            2
        )]
    );
    let bad = text.replace("2.0", "3.0");
    let err = parse_text("poetry.lock", LockfileKind::PoetryLock, &bad).unwrap_err();
    assert_eq!(err.line, Some(11));
}

// ---------------------------------------------------------------- Pipfile.lock

#[test]
fn pipfile_generated_by_pipenv() {
    let pkgs = parse_file("python/pipenv/Pipfile.lock", LockfileKind::PipfileLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("localdep", "", local("./localdep"), 19),
            row("urllib3", "1.26.4", registry(), 23),
            row("six", "1.16.0", registry(), 34),
        ]
    );
}

#[test]
fn pipfile_git_file_and_named_index() {
    let text = r#"{
    "_meta": {"sources": [{"name": "private", "url": "https://pypi.internal.example/simple", "verify_ssl": true}]},
    "default": {
        "requests": {"git": "https://github.com/psf/requests.git", "ref": "0e322af87745eff34caffe4df68456ebc20d9068"},
        "archive": {"file": "https://example.com/archive-1.0.tar.gz"},
        "internal": {"index": "private", "version": "==2.0.0"},
        "anything": {"version": "*"}
    },
    "develop": {}
}"#;
    let pkgs = parse_text("Pipfile.lock", LockfileKind::PipfileLock, text).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row(
                "requests",
                "",
                git("https://github.com/psf/requests.git#0e322af87745eff34caffe4df68456ebc20d9068"),
                4
            ),
            row(
                "archive",
                "",
                url("https://example.com/archive-1.0.tar.gz"),
                5
            ),
            row(
                "internal",
                "2.0.0",
                registry_at("https://pypi.internal.example/simple"),
                6
            ),
            row("anything", "", registry(), 7),
        ]
    );
}

// ---------------------------------------------------------------- pdm.lock

#[test]
fn pdm_sources() {
    let pkgs = parse_file("python/pdm/pdm.lock", LockfileKind::PdmLock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("localdep", "0.1.0", local("./localdep"), 14),
            row(
                "requests",
                "2.32.3",
                git("https://github.com/psf/requests.git#0e322af87745eff34caffe4df68456ebc20d9068"),
                22
            ),
            row("six", "1.16.0", registry(), 32),
            row("urllib3", "1.26.4", registry(), 43),
            row(
                "wheel-from-url",
                "0.9.0",
                url("https://example.com/wheel_from_url-0.9.0-py3-none-any.whl"),
                54
            ),
        ]
    );
}

// ---------------------------------------------------------------- pylock.toml

#[test]
fn pylock_exported_by_uv() {
    let pkgs = parse_file("python/pylock/pylock.toml", LockfileKind::Pylock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row("localdep", "", local("localdep"), 8),
            row("six", "1.16.0", registry(), 12),
            row("urllib3", "1.26.4", registry(), 19),
        ]
    );
}

#[test]
fn pylock_vcs_directory_archive_index() {
    let pkgs = parse_file("python/pylock-sources/pylock.toml", LockfileKind::Pylock).unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            row(
                "attrs",
                "23.2.0",
                registry_at("https://pypi.internal.example/simple"),
                6
            ),
            row(
                "requests",
                "2.32.3",
                git("https://github.com/psf/requests.git#0e322af87745eff34caffe4df68456ebc20d9068"),
                12
            ),
            row("local-tool", "", local("tools/local-tool"), 17),
            row(
                "tarball",
                "1.0",
                url("https://example.com/tarball-1.0.tar.gz"),
                21
            ),
            row("vendored", "", local("vendor/vendored-0.1.tar.gz"), 26),
        ]
    );
}

// ---------------------------------------------------------------- requirements.txt

#[test]
fn requirements_full_example() {
    let pkgs = parse_file(
        "python/requirements/requirements.txt",
        LockfileKind::Requirements,
    )
    .unwrap();
    assert_eq!(
        rows(&pkgs),
        vec![
            // From `-r base.txt` (line 4) and its nested includes; six only once.
            row("urllib3", "1.26.4", registry(), 4),
            row("six", "1.16.0", registry(), 4),
            // The continuation's hashes and the `# via` comment belong to certifi.
            row("certifi", "2024.2.2", registry(), 7),
            row("Django", "4.2.1", registry(), 11),
            row("requests", "2.31.0", registry(), 12),
            row("importlib-metadata", "6.0.0", registry(), 13),
            row("flask", "", registry(), 14),
            // Unpinned here, pinned by `-c constraints.txt`.
            row("idna", "3.6", registry(), 15),
            row(
                "pkg-from-url",
                "1.0",
                url("https://example.com/pkg_from_url-1.0-py3-none-any.whl"),
                16
            ),
            row(
                "tool",
                "",
                git("git+https://github.com/example/tool.git@v1.0"),
                17
            ),
            row("editable-pkg", "", local("./local/editable-pkg"), 18),
            row(
                "vcs-pkg",
                "",
                git("git+https://github.com/example/vcs-pkg.git@abc123#egg=vcs-pkg"),
                19
            ),
            row(
                "bare_wheel",
                "2.0",
                url("https://example.com/bare_wheel-2.0-py3-none-any.whl"),
                20
            ),
        ]
    );
    // Constraint-only entries are not installed, so not reported.
    assert!(!pkgs.iter().any(|p| p.name == "zope-interface"));
}

#[test]
fn requirements_include_cycle_is_an_error() {
    let err = parse_file(
        "python/requirements/cycle/a.txt",
        LockfileKind::Requirements,
    )
    .unwrap_err();
    assert!(err.message.contains("include cycle"), "{err}");
    assert!(err.file.ends_with("cycle/b.txt"), "{err}");
    assert_eq!(err.line, Some(2));
}

#[test]
fn requirements_missing_include_names_file_and_line() {
    let err = parse_file(
        "python/requirements/missing-include.txt",
        LockfileKind::Requirements,
    )
    .unwrap_err();
    assert!(err.file.ends_with("missing-include.txt"));
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("does-not-exist.txt"), "{err}");
}

#[test]
fn requirements_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        std::fs::write(
            dir.path().join(format!("r{i}.txt")),
            format!("-r r{}.txt\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("r40.txt"), "six==1.16.0\n").unwrap();
    let top = dir.path().join("r0.txt");
    let text = std::fs::read_to_string(&top).unwrap();
    let err = parse_lockfile(&top, LockfileKind::Requirements, &text).unwrap_err();
    assert!(err.message.contains("deeper"), "{err}");
}

#[test]
fn requirements_line_level_errors() {
    let cases: &[(&str, u32, &str)] = &[
        (
            "six==1.16.0\nnot a requirement!!\n",
            2,
            "invalid requirement",
        ),
        ("six==1.16.0 --frobnicate\n", 1, "unknown option"),
        ("-r\n", 1, "needs a value"),
        ("six==1.0 --hash=deadbeef\n", 1, "algorithm:digest"),
        ("-r https://example.com/r.txt\n", 1, "remote include"),
        ("\n\nname==${VERSION}\n", 3, "invalid requirement"),
        // Found by fuzzing: pep508_rs panics on this unless the name is checked first.
        (
            "idna==3.6\nzope-=interface==6.0\n",
            2,
            "invalid requirement",
        ),
    ];
    for (text, line, needle) in cases {
        let err = parse_text("requirements.txt", LockfileKind::Requirements, text).unwrap_err();
        assert_eq!(err.line, Some(*line), "{text:?}: {err}");
        assert!(err.message.contains(needle), "{text:?}: {err}");
        assert_eq!(err.file, Path::new("requirements.txt"));
    }
}

#[test]
fn requirements_huge_line_is_refused() {
    let text = format!("six==1.16.0\nx{}==1\n", "a".repeat(200_000));
    let err = parse_text("requirements.txt", LockfileKind::Requirements, &text).unwrap_err();
    assert_eq!(err.line, Some(2));
    // A continuation chain is one logical line: it is measured whole.
    let chained = "a\\\n".repeat(40_000);
    let err = parse_text("requirements.txt", LockfileKind::Requirements, &chained).unwrap_err();
    assert_eq!(err.line, Some(1));
}

#[test]
fn requirements_comments_and_fragments() {
    let text = "# header\n  \nsix==1.16.0#not-a-comment-start\nattrs==23.2.0 # trailing\n";
    // `#` without whitespace before it is part of the requirement, which pep508 refuses.
    let err = parse_text("r.txt", LockfileKind::Requirements, text).unwrap_err();
    assert_eq!(err.line, Some(3));
    let pkgs = parse_text(
        "r.txt",
        LockfileKind::Requirements,
        "# header\nattrs==23.2.0 # trailing\n",
    )
    .unwrap();
    assert_eq!(rows(&pkgs), vec![row("attrs", "23.2.0", registry(), 2)]);
}

// ---------------------------------------------------------------- malformed input

#[test]
fn truncated_and_mistyped_files_are_located_errors() {
    let cases: Vec<(LockfileKind, &str, String)> = vec![
        (
            LockfileKind::CargoLock,
            "Cargo.lock",
            "version = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0".into(),
        ),
        (
            LockfileKind::CargoLock,
            "Cargo.lock",
            "[[package]]\nname = 5\nversion = \"1.0.0\"\n".into(),
        ),
        (
            LockfileKind::UvLock,
            "uv.lock",
            "version = 1\n[[package]]\nname = \"six\"\nversion = [1]\n".into(),
        ),
        (
            LockfileKind::PoetryLock,
            "poetry.lock",
            "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\n[package.source\n".into(),
        ),
        (
            LockfileKind::PdmLock,
            "pdm.lock",
            "[[package]]\nname = \"six\"\nversion = \"1\"\ngit = 3\n".into(),
        ),
        (
            LockfileKind::Pylock,
            "pylock.toml",
            "lock-version = \"1.0\"\n[[packages]]\nname = \"\"\n".into(),
        ),
        (
            LockfileKind::PipfileLock,
            "Pipfile.lock",
            "{\n  \"default\": {\n    \"six\": {\"version\": 1}\n  }\n}".into(),
        ),
        (
            LockfileKind::PipfileLock,
            "Pipfile.lock",
            "{\n  \"default\": {\n    \"six\": {\"version\": \"==1\"".into(),
        ),
    ];
    for (kind, name, text) in cases {
        let err = parse_text(name, kind, &text).unwrap_err();
        assert_eq!(err.file, Path::new(name), "{kind:?}");
        assert!(err.line.is_some(), "{kind:?} {text:?}: {err}");
        let last_line = u32::try_from(text.lines().count()).unwrap();
        assert!(err.line.unwrap() <= last_line.max(1), "{kind:?}: {err}");
    }
}

#[test]
fn real_fixtures_truncated_anywhere_never_panic() {
    let files = [
        ("cargo/v4/Cargo.lock", LockfileKind::CargoLock),
        ("python/uv-sources/uv.lock", LockfileKind::UvLock),
        ("python/poetry-1/poetry.lock", LockfileKind::PoetryLock),
        ("python/pipenv/Pipfile.lock", LockfileKind::PipfileLock),
        ("python/pdm/pdm.lock", LockfileKind::PdmLock),
        ("python/pylock-sources/pylock.toml", LockfileKind::Pylock),
    ];
    for (rel, kind) in files {
        let text = std::fs::read_to_string(fixture(rel)).unwrap();
        let mut errors = 0;
        for cut in (0..text.len())
            .step_by(7)
            .filter(|&i| text.is_char_boundary(i))
        {
            if parse_text("x", kind, &text[..cut]).is_err() {
                errors += 1;
            }
        }
        assert!(errors > 0, "{rel}: no truncation was refused");
    }
}

#[test]
fn requirements_editable_dot_is_named_after_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("my-project");
    std::fs::create_dir(&project).unwrap();
    let file = project.join("requirements.txt");
    let pkgs = parse_lockfile(
        &file,
        LockfileKind::Requirements,
        "-e .[dev]\n-e ../sibling\n",
    )
    .unwrap()
    .packages;
    assert_eq!(
        rows(&pkgs),
        vec![
            row("my-project", "", local("."), 1),
            row("sibling", "", local("../sibling"), 2),
        ]
    );
}

/// Found by the `cargo_lock` fuzz target: `cargo-lock` panicked slicing a checksum inside
/// a multi-byte character.
#[test]
fn cargo_lock_with_a_non_ascii_checksum_is_an_error_not_a_panic() {
    let text = "version = 3\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"712e227841d05\u{11c}\u{39a}e1cd2fb22fa7e5a5461ae8e48fa2ca79ec42cfc1931183f\"\n";
    let err = depfw::audit::parse_lockfile(
        std::path::Path::new("Cargo.lock"),
        depfw::audit::LockfileKind::CargoLock,
        text,
    )
    .unwrap_err();
    assert_eq!(err.line, Some(7), "{err}");
}
