//! `depfw audit` on real lockfiles taken unchanged from public projects
//! (`tests/fixtures/lockfiles/public/`, provenance in its README.md): every file must parse,
//! with package counts and pins checked against the files by hand.

use std::path::{Path, PathBuf};

use depfw::audit::{parse_lockfile, LockfileKind, PackageSource};

fn public_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lockfiles/public")
}

/// (path under `public/`, package count, pins checked by reading the file)
type Expected = (&'static str, usize, &'static [(&'static str, &'static str)]);

const EXPECTED: &[Expected] = &[
    (
        "cargo/advent-of-code-2020/Cargo.lock",
        49,
        &[("libc", "0.2.80"), ("rand", "0.3.23"), ("rand", "0.4.6")],
    ),
    (
        "cargo/game-of-life-rust/Cargo.lock",
        7,
        &[("libc", "0.2.140")],
    ),
    // Cargo.lock `version = 4` (cargo 1.83+): macroquad 0.4.14 and its tree.
    (
        "cargo/rust-maze/Cargo.lock",
        34,
        &[
            ("macroquad", "0.4.14"),
            ("ttf-parser", "0.21.1"),
            ("winapi", "0.3.9"),
        ],
    ),
    (
        "pipfile/contact-book-cli/Pipfile.lock",
        2,
        &[("click", "7.0"), ("nose", "1.3.7")],
    ),
    // v1: the nested `dependencies` tree, sha1 integrities.
    (
        "npm/alexa-sandwich-recipe/package-lock.json",
        19,
        &[
            ("alexa-sdk", "1.0.12"),
            ("aws-sdk", "2.100.0"),
            ("lodash", "4.17.4"),
        ],
    ),
    // v2: `packages` is read, the duplicate v1 `dependencies` section is not counted twice.
    (
        "npm/curso-node-table/package-lock.json",
        17,
        &[
            ("colors", "1.4.0"),
            ("yargs", "17.4.1"),
            ("yargs-parser", "21.0.1"),
        ],
    ),
    // v3: 41 registry packages plus the project's `"hello-world": "file:"` link to itself.
    (
        "npm/alexa-guitar-tuner/package-lock.json",
        42,
        &[
            ("aws-sdk", "2.1692.0"),
            ("hello-world", "1.2.0"),
            ("querystring", "0.2.0"),
            ("which-typed-array", "1.1.16"),
        ],
    ),
    // npm-shrinkwrap.json, lockfileVersion 1: flat `dependencies`, chalk resolved over
    // `http://registry.npmjs.org` (still the default registry).
    (
        "npm/codeblock/npm-shrinkwrap.json",
        17,
        &[
            ("JSV", "4.0.2"),
            ("chalk", "0.4.0"),
            ("jsonlint", "1.6.3"),
            ("underscore", "1.6.0"),
        ],
    ),
    // npm 2 era npm-shrinkwrap.json: no `lockfileVersion`, nested `dependencies` three deep,
    // `resolved` only on nyks.
    (
        "npm/json_index/npm-shrinkwrap.json",
        10,
        &[
            ("glob", "4.0.5"),
            ("lru-cache", "2.5.0"),
            ("mootools-more", "1.5.1"),
            ("nyks", "0.1.6"),
        ],
    ),
    // Classic v1, with a quoted `a@^3 || ^4` key.
    (
        "yarn/use-worker-async/yarn.lock",
        5,
        &[
            ("js-tokens", "4.0.0"),
            ("react", "18.3.1"),
            ("typescript", "5.6.3"),
        ],
    ),
    // Berry (`__metadata` version 8): three npm packages; the root `workspace:.` entry is
    // the project itself and is skipped.
    (
        "yarn/toposort/yarn.lock",
        3,
        &[("diff", "1.0.8"), ("eyes", "0.1.8"), ("vows", "0.7.0")],
    ),
    // v9: `packages` only (`snapshots` repeats them); two versions of ms, safe-buffer,
    // encodeurl and on-finished.
    (
        "pnpm/express-railway/pnpm-lock.yaml",
        76,
        &[
            ("express", "4.21.2"),
            ("ms", "2.0.0"),
            ("ms", "2.1.3"),
            ("ipaddr.js", "1.9.1"),
        ],
    ),
    // v5.3: `/name/version` keys, a scoped package with a peer suffix
    // (`/@tepez/auth0-rules-types/0.3.1_@types+node@14.14.37`), two form-data versions.
    (
        "pnpm/eseuri-scripts/pnpm-lock.yaml",
        57,
        &[
            ("@tepez/auth0-rules-types", "0.3.1"),
            ("form-data", "2.3.3"),
            ("form-data", "2.5.1"),
            ("request", "2.88.2"),
        ],
    ),
    // v6.0 (pnpm 8): `/name@version` keys, `settings`, devDependencies only: yargs 17.7.2's tree.
    (
        "pnpm/minigolf-friday-scripts/pnpm-lock.yaml",
        16,
        &[
            ("cliui", "8.0.1"),
            ("escalade", "3.1.2"),
            ("yargs", "17.7.2"),
            ("yargs-parser", "21.1.1"),
        ],
    ),
    // v5.4 (pnpm 7): bare-float `lockfileVersion: 5.4`, `/name/version` keys, `specifiers`.
    (
        "pnpm/htn-backend-scripts/pnpm-lock.yaml",
        7,
        &[
            ("dotenv", "16.0.3"),
            ("formdata-polyfill", "4.0.10"),
            ("node-fetch", "3.3.0"),
        ],
    ),
    // Text bun.lock (JSON with trailing commas); the root workspace has no `packages` entry.
    (
        "bun/s3lite/bun.lock",
        5,
        &[
            ("@types/bun", "1.3.11"),
            ("bun-types", "1.3.11"),
            ("undici-types", "7.18.2"),
        ],
    ),
    // lock_version 4.4.1: 22 `[[package]]` tables, coverage 7.4.4 twice (plain and
    // `extras = ["toml"]`), which is one package to audit.
    (
        "pdm/gilded-rose-python/pdm.lock",
        21,
        &[
            ("coverage", "7.4.4"),
            ("pylint", "3.1.0"),
            ("watchdog", "4.0.0"),
        ],
    ),
    // lock-version 1.1, `[metadata.files]` hashes; py 1.10.0 has PYSEC-2022-42969.
    (
        "poetry/tictactoe/poetry.lock",
        24,
        &[
            ("py", "1.10.0"),
            ("pytest", "6.2.4"),
            ("typing-extensions", "3.10.0.0"),
        ],
    ),
    // 7 registry packages plus the project itself (`source = { virtual = "." }`).
    (
        "uv/test_pkg/uv.lock",
        8,
        &[
            ("polars", "1.32.3"),
            ("pytest", "8.4.1"),
            ("test-pkg", "0.1.0"),
        ],
    ),
    // PEP 751 `pylock.toml` written by uv (lock-version 1.0): wheels only, no `index` keys,
    // some wheels on the Pyodide CDN; one package is an `archive` from a GitHub release.
    (
        "pylock/ext-reg/pylock.toml",
        18,
        &[
            ("fastapi", "0.141.1"),
            ("inkcre-extension-toolkit", "0.2.0"),
            ("pydantic-core", "2.27.2"),
            ("sqlalchemy", "2.0.52"),
        ],
    ),
    // pip-compile --generate-hashes with `--find-links .` and an "unsafe" section.
    (
        "requirements/rhc-worker-playbook/requirements.txt",
        11,
        &[
            ("ansible-runner", "2.4.0"),
            ("pyyaml", "6.0.1"),
            ("setuptools", "71.1.0"),
        ],
    ),
];

#[test]
fn each_public_lockfile_parses_to_the_pins_it_holds() {
    for (rel, count, pins) in EXPECTED {
        let path = public_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = LockfileKind::detect(&path).unwrap();
        let lockfile = parse_lockfile(&path, kind, &text).unwrap();
        assert_eq!(lockfile.packages.len(), *count, "{rel}");
        for (name, version) in *pins {
            assert!(
                lockfile
                    .packages
                    .iter()
                    .any(|p| p.name == *name && p.version == *version),
                "{rel}: {name} {version} missing"
            );
        }
    }
}

/// Every package of these files comes from the default registry except these, read off the
/// files: the Cargo and uv projects themselves (Cargo.lock records no path for its root
/// crate), the npm project's `file:` link to itself, the pylock `archive` wheel and the two
/// pylock packages whose only wheels are Pyodide builds on a CDN (pydantic, with a PyPI
/// wheel beside its CDN one, stays a registry package).
#[test]
fn only_the_projects_themselves_are_reported_as_non_registry() {
    let mut found = Vec::new();
    for (rel, _, _) in EXPECTED {
        let path = public_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let kind = LockfileKind::detect(&path).unwrap();
        for p in parse_lockfile(&path, kind, &text).unwrap().packages {
            if p.source != (PackageSource::Registry { url: None }) {
                found.push((rel.to_string(), p.name, p.source));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            (
                "cargo/advent-of-code-2020/Cargo.lock".to_string(),
                "advent-of-code-2020".to_string(),
                PackageSource::Workspace { path: "".into() }
            ),
            (
                "cargo/game-of-life-rust/Cargo.lock".to_string(),
                "conway_rust".to_string(),
                PackageSource::Workspace { path: "".into() }
            ),
            (
                "cargo/rust-maze/Cargo.lock".to_string(),
                "rust-maze".to_string(),
                PackageSource::Workspace { path: "".into() }
            ),
            (
                "npm/alexa-guitar-tuner/package-lock.json".to_string(),
                "hello-world".to_string(),
                PackageSource::Path { path: ".".into() }
            ),
            (
                "pylock/ext-reg/pylock.toml".to_string(),
                "inkcre-extension-toolkit".to_string(),
                PackageSource::Url {
                    url: "https://github.com/InKCre/ext-reg/releases/download/toolkit-v0.2.0/inkcre_extension_toolkit-0.2.0-py3-none-any.whl".into()
                }
            ),
            (
                "pylock/ext-reg/pylock.toml".to_string(),
                "markupsafe".to_string(),
                PackageSource::Url {
                    url: "https://cdn.jsdelivr.net/pyodide/v0.28.3/full/markupsafe-3.0.2-cp313-cp313-pyodide_2025_0_wasm32.whl".into()
                }
            ),
            (
                "pylock/ext-reg/pylock.toml".to_string(),
                "pydantic-core".to_string(),
                PackageSource::Url {
                    url: "https://cdn.jsdelivr.net/pyodide/v0.28.3/full/pydantic_core-2.27.2-cp313-cp313-pyodide_2025_0_wasm32.whl".into()
                }
            ),
            (
                "uv/test_pkg/uv.lock".to_string(),
                "test-pkg".to_string(),
                PackageSource::Workspace { path: ".".into() }
            ),
        ]
    );
}

#[test]
fn every_public_lockfile_is_covered_by_this_test() {
    let mut found = Vec::new();
    let mut stack = vec![public_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if LockfileKind::detect(&path).is_some() {
                found.push(
                    path.strip_prefix(public_dir())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(rel, _, _)| rel.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

#[test]
fn audit_over_the_public_directory_scans_every_package() {
    let out = crate::support::depfw_command()
        .arg("audit")
        .arg(public_dir())
        .args(["--format", "json"])
        .env_remove("DEPFW_CONFIG")
        .env_remove("DEPFW_DATA_DIR")
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: usize = EXPECTED.iter().map(|(_, n, _)| n).sum();
    assert_eq!(report["packages_scanned"].as_u64().unwrap() as usize, total);
}

/// The bundled advisory snapshot flags the one pin of this real poetry.lock that PyPA lists:
/// py 1.10.0 (PYSEC-2022-42969, every py release up to 1.11.0), at its `[[package]]` entry.
/// The advisory has no severity data and names no fix, so it warns (`unfixed-advisory`)
/// and the audit passes. The 23 others — typed-ast 1.4.3 among them, past PYSEC-2019-130's
/// fix — stay clean.
#[test]
fn audit_flags_the_vulnerable_pin_of_a_real_poetry_lock() {
    let out = crate::support::depfw_command()
        .arg("audit")
        .arg(public_dir().join("poetry/tictactoe/poetry.lock"))
        .args(["--format", "json"])
        .env_remove("DEPFW_CONFIG")
        .env_remove("DEPFW_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["packages_scanned"], 24);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{report}");
    let py = &results[0];
    assert_eq!(
        (py["name"].as_str(), py["version"].as_str()),
        (Some("py"), Some("1.10.0"))
    );
    assert_eq!(py["line"], 156);
    assert_eq!(py["verdict"], "warn");
    assert_eq!(py["findings"][0]["code"], "unfixed-advisory");
    assert!(py["ids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|id| id == "PYSEC-2022-42969"));
}
