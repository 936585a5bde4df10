//! The npm-family lockfile parsers behind `depfw audit`, on lockfiles written by the real
//! tools (see tests/fixtures/lockfiles/README-npm.md) and on hand-made and broken input.

use depfw::audit::{parse_lockfile, LockfileKind, PackageSource, ParseError};
use depfw::package::Ecosystem;

use crate::support::lockfile as fixture;

/// `(line, name, version, source)` with the source written as `kind` or `kind:detail`.
type Row = (u32, String, String, String);

fn show(source: &PackageSource) -> String {
    match source {
        PackageSource::Registry { url: None } => "registry".into(),
        PackageSource::Registry { url: Some(u) } => format!("registry:{u}"),
        PackageSource::Git { url } => format!("git:{url}"),
        PackageSource::Path { path } => format!("path:{path}"),
        PackageSource::Url { url } => format!("url:{url}"),
        PackageSource::Workspace { path } => format!("workspace:{path}"),
    }
}

fn parse_text(rel: &str, text: &str) -> Result<Vec<Row>, ParseError> {
    let path = fixture(rel);
    let kind = LockfileKind::detect(&path).unwrap();
    let lock = parse_lockfile(&path, kind, text)?;
    assert_eq!(lock.kind, kind);
    Ok(lock
        .packages
        .iter()
        .map(|p| {
            assert_eq!(p.ecosystem, Ecosystem::Npm);
            let line = p.line.expect("every fixture entry has a line");
            (line, p.name.clone(), p.version.clone(), show(&p.source))
        })
        .collect())
}

fn parse(rel: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    parse_text(rel, &text).unwrap()
}

fn rows(expected: &[(u32, &str, &str, &str)]) -> Vec<Row> {
    expected
        .iter()
        .map(|(l, n, v, s)| (*l, n.to_string(), v.to_string(), s.to_string()))
        .collect()
}

fn parse_err(name: &str, text: &str) -> ParseError {
    match parse_text(name, text) {
        Err(e) => {
            assert!(e.file.ends_with(name), "error names the file: {e}");
            e
        }
        Ok(rows) => panic!("{name}: expected an error, got {rows:?}"),
    }
}

// ---- package-lock.json ----

/// v2 and v3 (and npm-shrinkwrap.json) read `packages`: the same project gives the same list.
const NPM_V3: &[(u32, &str, &str, &str)] = &[
    (24, "@fx/lib", "0.1.0", "workspace:packages/lib"),
    (28, "@isaacs/string-locale-compare", "1.1.0", "registry"),
    (33, "is-number", "7.0.0", "registry"),
    (41, "is-odd", "3.0.1", "registry"),
    // Nested under is-odd; the alias isnum → is-number@6.0.0 is the same package.
    (52, "is-number", "6.0.0", "registry"),
    (69, "js-tokens", "4.0.0", "registry"),
    (74, "local-pkg", "0.0.1", "path:vendor/local-pkg"),
    (78, "loose-envify", "1.4.0", "registry"),
    (89, "ms", "2.1.3", "registry"),
    (94, "react", "18.2.0", "registry"),
    (105, "use-sync-external-store", "1.2.0", "registry"),
    (120, "ms", "2.1.2", "registry"),
];

#[test]
fn npm_v3_v2_and_shrinkwrap() {
    assert_eq!(parse("npm/v3/package-lock.json"), rows(NPM_V3));
    assert_eq!(parse("npm/v2/package-lock.json"), rows(NPM_V3));
    assert_eq!(parse("npm/shrinkwrap/npm-shrinkwrap.json"), rows(NPM_V3));
}

#[test]
fn npm_v1_nested_dependencies() {
    assert_eq!(
        parse("npm/v1/package-lock.json"),
        rows(&[
            // v1 records workspace members as `file:` with no workspace list.
            (7, "@fx/lib", "file:packages/lib", "path:packages/lib"),
            (13, "ms", "2.1.2", "registry"),
            (19, "@isaacs/string-locale-compare", "1.1.0", "registry"),
            (23, "is-number", "7.0.0", "registry"),
            (27, "is-odd", "3.0.1", "registry"),
            (34, "is-number", "6.0.0", "registry"),
            (44, "js-tokens", "4.0.0", "registry"),
            (
                48,
                "local-pkg",
                "file:vendor/local-pkg",
                "path:vendor/local-pkg"
            ),
            (51, "loose-envify", "1.4.0", "registry"),
            (58, "ms", "2.1.3", "registry"),
            (62, "react", "18.2.0", "registry"),
            (69, "use-sync-external-store", "1.2.0", "registry"),
        ])
    );
}

#[test]
fn npm_v1_alias_gives_the_real_name() {
    let text = r#"{"lockfileVersion": 1, "dependencies": {
  "isnum": {"version": "npm:is-number@6.0.0"}
}}"#;
    assert_eq!(
        parse_text("x/package-lock.json", text).unwrap(),
        rows(&[(2, "is-number", "6.0.0", "registry")])
    );
}

#[test]
fn npm_non_registry_sources() {
    assert_eq!(
        parse("npm/handmade/package-lock.json"),
        rows(&[
            (16, "@hand/util", "2.0.0", "workspace:libs/deep/util"),
            (
                20,
                "from-git",
                "1.2.3",
                "git:git+ssh://git@github.com/example/from-git.git#0123456789abcdef0123456789abcdef01234567",
            ),
            (25, "from-url", "0.5.0", "url:https://example.com/downloads/from-url-0.5.0.tgz"),
            (30, "@corp/private", "3.1.0", "registry:https://npm.corp.example"),
            (35, "local-tgz", "0.0.9", "path:vendor/local-tgz-0.0.9.tgz"),
            (40, "bundler", "1.0.0", "registry"),
            (46, "inner", "4.5.6", "registry"),
            (50, "ms", "2.0.0", "registry"),
            (54, "@scope/real-name", "1.0.0", "registry"),
        ])
    );
}

#[test]
fn npm_malformed() {
    let name = "bad/package-lock.json";
    let e = parse_err(
        name,
        "{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"node_modules/a\": {",
    );
    assert_eq!(e.line, Some(4), "{e}");
    let e = parse_err(name, "[1, 2]");
    assert!(e.message.contains("object"), "{e}");
    let e = parse_err(name, "{\"lockfileVersion\": 3, \"packages\": []}");
    assert!(e.message.contains("packages"), "{e}");
    let e = parse_err(
        name,
        "{\"lockfileVersion\": 3, \"packages\": {\n\"node_modules/a\": {\"version\": 7}}}",
    );
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("version"), "{e}");
    let e = parse_err(name, "{\"packages\": {\"node_modules/a\": {}}}");
    assert!(e.message.contains("no \"version\""), "{e}");
    let e = parse_err(name, "{\"name\": \"x\"}");
    assert!(e.message.contains("not an npm lockfile"), "{e}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    parse_err(name, &deep);
    let long = format!(
        "{{\"lockfileVersion\": 3, \"x\": \"{}",
        "a".repeat(10 << 20)
    );
    parse_err(name, &long);
}

// ---- yarn.lock ----

#[test]
fn yarn_v1() {
    assert_eq!(
        parse("yarn/v1/yarn.lock"),
        rows(&[
            (5, "@isaacs/string-locale-compare", "1.1.0", "registry"),
            (10, "is-number", "7.0.0", "registry"),
            (15, "is-number", "6.0.0", "registry"),
            (20, "is-odd", "3.0.1", "registry"),
            // Line 27, `isnum@npm:is-number@6.0.0`, is is-number 6.0.0 again.
            (32, "js-tokens", "4.0.0", "registry"),
            (37, "local-pkg", "0.0.1", "path:./vendor/local-pkg"),
            (40, "loose-envify", "1.4.0", "registry"),
            (47, "ms", "2.1.2", "registry"),
            (52, "ms", "2.1.3", "registry"),
            (57, "react", "18.2.0", "registry"),
            (64, "use-sync-external-store", "1.2.0", "registry"),
        ])
    );
}

#[test]
fn yarn_v1_alias_alone_gives_the_real_name() {
    let text = "# yarn lockfile v1\n\n\"isnum@npm:is-number@7\":\n  version \"7.0.0\"\n  resolved \"https://registry.yarnpkg.com/is-number/-/is-number-7.0.0.tgz#abc\"\n";
    assert_eq!(
        parse_text("x/yarn.lock", text).unwrap(),
        rows(&[(3, "is-number", "7.0.0", "registry")])
    );
}

#[test]
fn yarn_v1_non_registry_sources() {
    assert_eq!(
        parse("yarn/v1-handmade/yarn.lock"),
        rows(&[
            (5, "@corp/private", "3.1.0", "registry:https://npm.corp.example"),
            (
                10,
                "from-git",
                "1.2.3",
                "git:git+https://github.com/example/from-git.git#0123456789abcdef0123456789abcdef01234567",
            ),
            (14, "from-url", "0.5.0", "url:https://example.com/downloads/from-url-0.5.0.tgz#1234"),
            (18, "@scope/real-name", "1.0.0", "registry"),
            (25, "linked", "0.0.0", "path:./linked"),
        ])
    );
}

#[test]
fn yarn_berry() {
    assert_eq!(
        parse("yarn/berry/yarn.lock"),
        rows(&[
            (8, "@fx/app", "0.0.0-use.local", "workspace:packages/app"),
            (16, "@fx/lib", "0.0.0-use.local", "workspace:packages/lib"),
            (24, "@isaacs/string-locale-compare", "1.1.0", "registry"),
            // Line 31 is the root workspace `fx@workspace:.`, not a dependency.
            (46, "is-number", "7.0.0", "registry"),
            // Key `is-number@npm:^6.0.0, isnum@npm:is-number@6.0.0`.
            (53, "is-number", "6.0.0", "registry"),
            (60, "is-odd", "3.0.1", "registry"),
            (69, "js-tokens", "4.0.0", "registry"),
            (76, "local-pkg", "0.0.1", "path:./vendor/local-pkg"),
            (83, "loose-envify", "1.4.0", "registry"),
            (94, "ms", "2.1.2", "registry"),
            (101, "ms", "2.1.3", "registry"),
            (108, "react", "18.2.0", "registry"),
            (117, "use-sync-external-store", "1.2.0", "registry"),
        ])
    );
}

#[test]
fn yarn_berry_protocols() {
    assert_eq!(
        parse("yarn/berry-handmade/yarn.lock"),
        rows(&[
            // patch: is audited as the npm package it patches.
            (14, "is-number", "7.0.0", "registry"),
            (21, "portaled", "0.0.0-use.local", "path:../portaled"),
            (27, "linked", "0.0.0-use.local", "path:../linked"),
            (
                33,
                "from-git",
                "1.2.3",
                "git:https://github.com/example/from-git.git#commit=0123456789abcdef0123456789abcdef01234567",
            ),
            (40, "from-url", "0.5.0", "url:https://example.com/downloads/from-url-0.5.0.tgz"),
            (47, "@scope/real-name", "1.0.0", "registry"),
        ])
    );
}

#[test]
fn yarn_malformed() {
    let name = "bad/yarn.lock";
    let e = parse_err(name, "# yarn lockfile v1\n\nfoo@1:\n  version \"1.0.0\n");
    assert_eq!(e.line, Some(4), "{e}");
    let e = parse_err(name, "# yarn lockfile v1\n\nfoo@1:\n  resolved \"x\"\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("no version"), "{e}");
    let e = parse_err(name, "  version \"1\"\n");
    assert_eq!(e.line, Some(1), "{e}");
    let e = parse_err(name, "# yarn lockfile v1\n\nnot a key\n");
    assert_eq!(e.line, Some(3), "{e}");
    let e = parse_err(
        name,
        "__metadata:\n  version: 8\n\"a@npm:1\":\n  version: [\n",
    );
    assert!(e.message.contains("YAML"), "{e}");
    assert!(e.line.is_some(), "{e}");
    let e = parse_err(
        name,
        "__metadata:\n  version: 8\n\"a@npm:1\":\n  version: 1.0.0\n",
    );
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("resolution"), "{e}");
    let deep = format!(
        "__metadata: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    parse_err(name, &deep);
    let long = format!("# yarn lockfile v1\n\n\"a@{}", "a".repeat(10 << 20));
    parse_err(name, &long);
}

// ---- pnpm-lock.yaml ----

#[test]
fn pnpm_v5_v6_v9() {
    let common = |lines: [u32; 10]| {
        let names = [
            ("@isaacs/string-locale-compare", "1.1.0"),
            ("is-number", "6.0.0"),
            ("is-number", "7.0.0"),
            ("is-odd", "3.0.1"),
            ("js-tokens", "4.0.0"),
            ("loose-envify", "1.4.0"),
            ("ms", "2.1.2"),
            ("ms", "2.1.3"),
            ("react", "18.2.0"),
            ("use-sync-external-store", "1.2.0"),
        ];
        lines
            .iter()
            .zip(names)
            .map(|(l, (n, v))| (*l, n.to_string(), v.to_string(), "registry".to_string()))
            .collect::<Vec<Row>>()
    };
    let link = |line: u32| {
        (
            line,
            "@fx/lib".into(),
            "link:../lib".into(),
            "workspace:packages/lib".into(),
        )
    };
    let local = |line: u32, v: &str| {
        (
            line,
            "local-pkg".into(),
            v.into(),
            "path:vendor/local-pkg".into(),
        )
    };

    let mut v5 = common([39, 43, 48, 53, 60, 64, 71, 75, 79, 86]);
    v5.insert(0, link(29));
    v5.push(local(94, "0.0.1"));
    assert_eq!(parse("pnpm/v5/pnpm-lock.yaml"), v5);

    let mut v6 = common([50, 54, 59, 64, 71, 75, 82, 86, 90, 97]);
    v6.insert(0, link(38));
    v6.push(local(105, "file:vendor/local-pkg"));
    assert_eq!(parse("pnpm/v6/pnpm-lock.yaml"), v6);

    let mut v9 = common([50, 53, 57, 61, 65, 71, 75, 78, 81, 85]);
    v9.insert(0, link(38));
    v9.insert(6, local(68, "file:vendor/local-pkg"));
    assert_eq!(parse("pnpm/v9/pnpm-lock.yaml"), v9);
}

#[test]
fn pnpm_resolutions_and_aliases() {
    assert_eq!(
        parse("pnpm/v9-handmade/pnpm-lock.yaml"),
        rows(&[
            (20, "sibling", "link:../sibling", "workspace:../sibling"),
            (26, "@scope/real-name", "1.0.0", "registry"),
            (
                31,
                "from-git",
                "1.2.3",
                "url:https://codeload.github.com/example/from-git/tar.gz/0123456789abcdef0123456789abcdef01234567",
            ),
            (35, "from-repo", "2.0.0", "git:https://github.com/example/from-repo.git#89abcdef"),
            (39, "@corp/private", "3.1.0", "registry:https://npm.corp.example"),
            (42, "react", "18.2.0", "registry"),
        ])
    );
}

#[test]
fn pnpm_v5_scoped_peer_suffix_and_host_prefix() {
    let text = "lockfileVersion: 5.4\n\npackages:\n\n  /@types/react-dom/18.0.0_@types+react@18.0.0:\n    resolution: {integrity: sha512-x}\n\n  registry.example.com/left-pad/1.3.0:\n    resolution: {integrity: sha512-y}\n";
    assert_eq!(
        parse_text("x/pnpm-lock.yaml", text).unwrap(),
        rows(&[
            (5, "@types/react-dom", "18.0.0", "registry"),
            (8, "left-pad", "1.3.0", "registry"),
        ])
    );
}

#[test]
fn pnpm_malformed() {
    let name = "bad/pnpm-lock.yaml";
    let e = parse_err(name, "lockfileVersion: '9.0'\npackages:\n  a@1.0.0: {\n");
    assert!(e.message.contains("YAML"), "{e}");
    assert!(e.line.is_some(), "{e}");
    let e = parse_err(name, "packages: {}\n");
    assert!(e.message.contains("lockfileVersion"), "{e}");
    let e = parse_err(name, "lockfileVersion: '9.0'\npackages: [1, 2]\n");
    assert!(e.message.contains("packages"), "{e}");
    let e = parse_err(
        name,
        "lockfileVersion: '9.0'\npackages:\n  no-version-here:\n    resolution: {integrity: x}\n",
    );
    assert_eq!(e.line, Some(3), "{e}");
    let e = parse_err(name, "lockfileVersion: '9.0'\npackages:\n  a@1.0.0: 7\n");
    assert_eq!(e.line, Some(3), "{e}");
    parse_err(name, "- just\n- a list\n");
    parse_err(name, "\u{0}\u{1}garbage: [}\n");
    let deep = format!(
        "lockfileVersion: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    parse_err(name, &deep);
    // Deep block nesting (indentation) rather than flow brackets.
    let block: String = (0..3000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    parse_err(name, &format!("lockfileVersion: '9.0'\npackages:\n{block}"));
    let long = format!(
        "lockfileVersion: '9.0'\npackages: \"{}",
        "a".repeat(10 << 20)
    );
    parse_err(name, &long);
}

// ---- bun.lock ----

#[test]
fn bun_lock() {
    assert_eq!(
        parse("bun/basic/bun.lock"),
        rows(&[
            (34, "@fx/app", "0.2.0", "workspace:packages/app"),
            (36, "@fx/lib", "0.1.0", "workspace:packages/lib"),
            (38, "@isaacs/string-locale-compare", "1.1.0", "registry"),
            (40, "is-number", "7.0.0", "registry"),
            (42, "is-odd", "3.0.1", "registry"),
            // Key `isnum`, an alias of is-number (repeated at line 60 as is-odd/is-number).
            (44, "is-number", "6.0.0", "registry"),
            (46, "js-tokens", "4.0.0", "registry"),
            (
                48,
                "local-pkg",
                "file:vendor/local-pkg",
                "path:vendor/local-pkg"
            ),
            (50, "loose-envify", "1.4.0", "registry"),
            (52, "ms", "2.1.3", "registry"),
            (54, "react", "18.2.0", "registry"),
            (56, "use-sync-external-store", "1.2.0", "registry"),
            (58, "ms", "2.1.2", "registry"),
        ])
    );
}

#[test]
fn bun_non_registry_sources() {
    assert_eq!(
        parse("bun/handmade/bun.lock"),
        rows(&[
            (
                13,
                "@corp/private",
                "3.1.0",
                "registry:https://npm.corp.example"
            ),
            (
                15,
                "from-git",
                "github:example/from-git#0123456",
                "git:github:example/from-git#0123456"
            ),
            (
                17,
                "from-url",
                "https://example.com/downloads/from-url-0.5.0.tgz",
                "url:https://example.com/downloads/from-url-0.5.0.tgz",
            ),
            (19, "@scope/real-name", "1.0.0", "registry"),
            (21, "ms", "2.0.0", "registry"),
        ])
    );
}

#[test]
fn bun_malformed() {
    let name = "bad/bun.lock";
    let e = parse_err(
        name,
        "{\n  \"lockfileVersion\": 1,\n  \"packages\": {\n    \"a\": [\"a@1\", \"\",\n",
    );
    assert!(e.line.is_some(), "{e}");
    let e = parse_err(
        name,
        "{\"lockfileVersion\": 1, \"packages\": {\n\"a\": {\"x\": 1}}}",
    );
    assert_eq!(e.line, Some(2), "{e}");
    let e = parse_err(
        name,
        "{\"lockfileVersion\": 1, \"packages\": {\n\n\"a\": [7]}}",
    );
    assert_eq!(e.line, Some(3), "{e}");
    let e = parse_err(
        name,
        "{\"lockfileVersion\": 1, \"packages\": {\"a\": [\"noversion\"]}}",
    );
    assert!(e.message.contains("name@version"), "{e}");
    let e = parse_err(name, "{\"packages\": {}}");
    assert!(e.message.contains("lockfileVersion"), "{e}");
    parse_err(name, "{'lockfileVersion': 1}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    parse_err(name, &deep);
    let long = format!(
        "{{\"lockfileVersion\": 1, \"x\": \"{}",
        "a".repeat(10 << 20)
    );
    parse_err(name, &long);
}
