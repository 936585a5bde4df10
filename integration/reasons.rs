//! `cargo test --test integration reasons`: the reason, in every client's own output (issue
//! #12, section 4). Each of the 8 real clients meets depfw's three refusals — an exact pin
//! of a denied version, a typosquat name, an exact pin of a version quarantined by the
//! release cooldown — and the test reads what the client prints. Where the client prints
//! one of depfw's channels (a 403's body or reason phrase, npm's `npm-notice` header), the
//! reason text is asserted; where it prints none of them, the words it does print are
//! asserted, and that depfw's reason is absent, so that a client release changing either
//! fails here. Every cell of the README table "What each client shows when depfw refuses"
//! is one arm of [`expected`].
//!
//! Every client runs each pin twice: with the default `server.refused-versions = "remove"`,
//! and with `"yank"`, where pip, uv and poetry choose the yanked file of an `==` pin and
//! print its download's 403, and the npm clients resolve the pin to a version listed as
//! deprecated with the reason and meet its tarball's 403.

use chrono::Utc;

use crate::client::combined;
use crate::npm::{self, pnpm_workspace};
use crate::pypi;
use crate::require::{BUN, CARGO, NPM, PIP, PNPM, POETRY, UV, YARN};
use crate::support::registry::{self, FixtureState, Served, TestCheck};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Npm,
    Pnpm,
    Yarn,
    Bun,
    Pip,
    Uv,
    Poetry,
    Cargo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `name@version` pinned exactly, the version denied (the test deny list, as an
    /// advisory or a malicious-package record would).
    DeniedPin,
    /// A name that imitates another (`possible-typosquat`, denied).
    Typosquat,
    /// `name@version` pinned exactly, the version published an hour ago and held by a
    /// 72-hour release cooldown (quarantine).
    Quarantined,
}

/// `server.refused-versions`; the typosquat case has no version to yank, so it runs in
/// `Remove` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Remove,
    Yank,
}

/// The fixture package and version each ecosystem's cases use, and its look-alike name.
struct Subject {
    name: &'static str,
    version: &'static str,
    squat: &'static str,
}

impl Client {
    fn subject(self) -> Subject {
        match self {
            Client::Npm | Client::Pnpm | Client::Yarn | Client::Bun => Subject {
                name: "is-odd",
                version: "3.0.1",
                squat: "is-nunber",
            },
            Client::Pip | Client::Uv | Client::Poetry => Subject {
                name: "idna",
                version: "3.10",
                squat: "idnaa",
            },
            Client::Cargo => Subject {
                name: "itoa",
                version: "1.0.11",
                squat: "itao",
            },
        }
    }
}

impl Case {
    fn check(self, s: &Subject) -> TestCheck {
        let spec = format!("{}@{}", s.name, s.version);
        match self {
            Case::DeniedPin => TestCheck {
                deny: vec![spec],
                ..TestCheck::default()
            },
            Case::Typosquat => TestCheck {
                deny_names: vec![s.squat.to_owned()],
                ..TestCheck::default()
            },
            Case::Quarantined => TestCheck {
                cooldown_hours: Some(72),
                ..TestCheck::default()
            },
        }
    }

    /// Makes the fixture's release of the subject an hour old (the cooldown case).
    fn prepare(self, s: &Subject, fixture: &FixtureState) {
        if self == Case::Quarantined {
            let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
            fixture
                .times
                .lock()
                .unwrap()
                .insert((s.name.to_owned(), s.version.to_owned()), an_hour_ago);
        }
    }

    /// depfw's reason as every channel words it.
    fn reason(self, s: &Subject) -> String {
        let spec = format!("{}@{}", s.name, s.version);
        match self {
            Case::DeniedPin => format!("{spec} is denied by policy: deny-listed"),
            Case::Typosquat => format!("{} is denied by policy: possible-typosquat", s.squat),
            Case::Quarantined => {
                format!("{spec} is quarantined, awaiting approval: release-cooldown")
            }
        }
    }
}

/// What a client prints for a case: depfw's reason (and the client's own words around
/// it), or only its own words, without the reason.
enum Shows {
    Reason(&'static [&'static str]),
    Only(&'static [&'static str]),
}

/// The README table, cell by cell: the words each client prints (read off the pinned
/// clients on 2026-12-03), around depfw's reason where it prints one.
fn expected(client: Client, case: Case, mode: Mode) -> Shows {
    use Case::*;
    use Client::*;
    use Mode::*;
    use Shows::*;
    match (client, case, mode) {
        // The `npm-notice` header of the packument, which lists the versions depfw hid.
        (Npm, DeniedPin | Quarantined, Remove) => Reason(&[
            "npm notice depfw: not served: ",
            "No matching version found for is-odd@3.0.1",
        ]),
        // The pin resolves to the deprecated version; the notice, then the tarball's 403 body.
        (Npm, DeniedPin | Quarantined, Yank) => Reason(&[
            "npm notice depfw: not served: ",
            "npm error code E403",
            "403 Forbidden - depfw: is-odd@3.0.1 is ",
        ]),
        // The 403 body.
        (Npm, Typosquat, _) => Reason(&["E403", "403 Forbidden - depfw: "]),
        (Pnpm, DeniedPin | Quarantined, Remove) => Only(&[
            "ERR_PNPM_NO_MATCHING_VERSION",
            "No matching version found for is-odd@3.0.1",
        ]),
        // pnpm names the deprecation but not its message, and the 403 without its reason.
        (Pnpm, DeniedPin | Quarantined, Yank) => Only(&[
            "[WARN] deprecated: is-odd@3.0.1. 3.0.0 is not deprecated.",
            "ERR_PNPM_TARBALL_SIBLING_FETCH_FAILED",
            "Tarball server returned HTTP 403 for",
        ]),
        // The reason phrase of the `GET /is-nunber/latest` pnpm 12 asks first.
        (Pnpm, Typosquat, _) => Reason(&["(403 Forbidden - depfw: "]),
        (Yarn, DeniedPin | Quarantined, Remove) => Only(&["is-odd@npm:3.0.1: No candidates found"]),
        // The tarball's reason phrase.
        (Yarn, DeniedPin, Yank) => Reason(&["Response Code: 403 (Forbidden - depfw: "]),
        // yarn's own release-age gate (`npmMinimalAgeGate`, on by default) reads the listed
        // version's `time` and refuses it before depfw's gate is asked.
        (Yarn, Quarantined, Yank) => {
            Only(&[r#"is-odd@npm:3.0.1: All versions satisfying "3.0.1" are quarantined"#])
        }
        (Yarn, Typosquat, _) => Reason(&["Response Code: 403 (Forbidden - depfw: "]),
        (Bun, DeniedPin | Quarantined, Remove) => Only(&[
            r#"No version matching "3.0.1" found for specifier "is-odd" (but package exists)"#,
        ]),
        // The deprecation message, then the tarball's bare 403.
        (Bun, DeniedPin | Quarantined, Yank) => Reason(&[
            "warn: deprecated is-odd@3.0.1: depfw: ",
            "/npm/is-odd/-/is-odd-3.0.1.tgz - 403",
        ]),
        (Bun, Typosquat, _) => Only(&["/npm/is-nunber - 403"]),
        (Pip, DeniedPin | Quarantined, Remove) => {
            Only(&["requirement idna==3.10 (from versions: 3.9)"])
        }
        // The yanked file is chosen, and its download's reason phrase printed.
        (Pip, DeniedPin | Quarantined, Yank) => {
            Reason(&["HTTP error 403 Client Error: Forbidden - depfw: "])
        }
        (Pip, Typosquat, _) => Only(&["requirement idnaa (from versions: none)"]),
        (Uv, DeniedPin | Quarantined, Remove) => Only(&["there is no version of idna==3.10"]),
        (Uv, DeniedPin | Quarantined, Yank) => Reason(&["(403 Forbidden - depfw: "]),
        (Uv, Typosquat, _) => Only(&[
            "idnaa was not found in the package registry",
            "returned a 403 Forbidden error",
        ]),
        (Poetry, DeniedPin | Quarantined, Remove) => {
            Only(&["depends on idna (3.10) which doesn't match any versions"])
        }
        (Poetry, DeniedPin | Quarantined, Yank) => {
            Reason(&["403 Client Error: Forbidden - depfw: "])
        }
        (Poetry, Typosquat, _) => Only(&[
            "Authorization error accessing",
            "depends on idnaa (*) which doesn't match any versions",
        ]),
        (Cargo, DeniedPin | Quarantined, Remove) => Only(&[
            "failed to select a version for the requirement `itoa = \"=1.0.11\"`",
            "candidate versions found which didn't match: 1.0.10",
        ]),
        (Cargo, DeniedPin | Quarantined, Yank) => Only(&["version 1.0.11 is yanked"]),
        // The 403 body of the index file, under `body:`.
        (Cargo, Typosquat, _) => Reason(&["got 403", "body:"]),
    }
}

/// Runs `client` on `case`; returns whether it succeeded and what it printed.
fn run(client: Client, case: Case, mode: Mode) -> (bool, String) {
    let s = client.subject();
    let pin = format!("{}@{}", s.name, s.version);
    let wanted = match case {
        Case::Typosquat => s.squat.to_owned(),
        Case::DeniedPin | Case::Quarantined => pin,
    };
    match client {
        Client::Npm | Client::Pnpm | Client::Yarn | Client::Bun => {
            let server = if mode == Mode::Yank { pypi::YANK } else { "" };
            let env = npm::start_in(registry::policy(case.check(&s)), server);
            case.prepare(&s, &env.fixture);
            let out = match client {
                Client::Npm => env.npm(&["install", &wanted]),
                _ => {
                    let tool = match client {
                        Client::Pnpm => {
                            // pnpm's own release-age gate would answer the cooldown case
                            // before depfw's: off, to see what depfw's refusal shows.
                            std::fs::write(
                                env.project.join("pnpm-workspace.yaml"),
                                pnpm_workspace(&env, "minimumReleaseAge: 0\n"),
                            )
                            .unwrap();
                            npm::Client::Pnpm
                        }
                        Client::Yarn => npm::Client::Yarn,
                        _ => npm::Client::Bun,
                    };
                    tool.run(&env, &["add", &wanted])
                }
            };
            (out.status.success(), combined(&out))
        }
        Client::Pip | Client::Uv | Client::Poetry | Client::Cargo => {
            let server = if mode == Mode::Yank { pypi::YANK } else { "" };
            let served: Served = registry::serve_with(case.check(&s), server);
            case.prepare(&s, &served.fixture);
            let name = match case {
                Case::Typosquat => s.squat,
                _ => s.name,
            };
            match client {
                Client::Pip | Client::Uv => {
                    let requirement = match case {
                        Case::Typosquat => s.squat.to_owned(),
                        _ => format!("{}=={}", s.name, s.version),
                    };
                    let tool = if client == Client::Pip {
                        pypi::Client::Pip
                    } else {
                        pypi::Client::Uv
                    };
                    let (ok, text, _) = pypi::install(tool, &served, &[&requirement]);
                    (ok, text)
                }
                Client::Poetry => {
                    let constraint = match case {
                        Case::Typosquat => "*",
                        _ => s.version,
                    };
                    let project =
                        pypi::poetry_project(&served, &format!("{name} = \"{constraint}\""));
                    pypi::poetry(&served, &project, &["install", "--no-root"])
                }
                _ => {
                    let requirement = match case {
                        Case::Typosquat => "1".to_owned(),
                        _ => format!("={}", s.version),
                    };
                    let app =
                        crate::cargo::project(&served, &format!("{name} = \"{requirement}\""));
                    crate::cargo::cargo(&served, &app, &["fetch"])
                }
            }
        }
    }
}

/// One cell: the client fails, and prints what [`expected`] says.
fn cell(client: Client, case: Case, mode: Mode) {
    let (ok, text) = run(client, case, mode);
    assert!(!ok, "{client:?} succeeded on {case:?} ({mode:?}): {text}");
    let reason = case.reason(&client.subject());
    match expected(client, case, mode) {
        Shows::Reason(words) => {
            assert!(
                text.contains(&reason),
                "{client:?} should print depfw's reason `{reason}` ({case:?}, {mode:?}): {text}"
            );
            for w in words {
                assert!(text.contains(w), "{client:?} should print `{w}`: {text}");
            }
        }
        Shows::Only(words) => {
            for w in words {
                assert!(text.contains(w), "{client:?} should print `{w}`: {text}");
            }
            // A client that starts printing the reason: the README table is out of date.
            for part in ["depfw:", "denied by policy", "awaiting approval"] {
                assert!(
                    !text.contains(part),
                    "{client:?} now prints `{part}` ({case:?}, {mode:?}): update the README \
                     table and this test: {text}"
                );
            }
        }
    }
}

/// A cell in both `server.refused-versions` modes (the exact pins).
fn both_modes(client: Client, case: Case) {
    cell(client, case, Mode::Remove);
    cell(client, case, Mode::Yank);
}

/// npm prints the notice when a range resolves too, and again from a warm cache: a
/// packument that hides versions is sent `no-store`, so npm never answers it from its cache,
/// whose responses it prints no notice of.
fn npm_prints_the_notice_on_every_install_warm_cache_included() {
    let s = Client::Npm.subject();
    let env = npm::start_with(registry::policy(Case::DeniedPin.check(&s)));
    let cache = env.project.with_file_name("warm-npm-cache");
    let reason = Case::DeniedPin.reason(&s);
    for _ in 0..2 {
        let out = env.npm_with_cache(&["install", "is-odd@^3"], &cache);
        let text = combined(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(&format!("npm notice depfw: not served: {reason}")),
            "{text}"
        );
        // Resolve again next time, from the cache, rather than install the lockfile.
        std::fs::remove_file(env.project.join("package-lock.json")).unwrap();
        std::fs::remove_dir_all(env.project.join("node_modules")).unwrap();
    }
}

macro_rules! cells {
    ($($test:ident => $client:ident, $case:ident, $how:ident;)+) => {
        $(fn $test() {
            cells!(@run $how, Client::$client, Case::$case);
        })+
    };
    (@run remove, $client:expr, $case:expr) => { cell($client, $case, Mode::Remove) };
    (@run both, $client:expr, $case:expr) => { both_modes($client, $case) };
}

cells! {
    npm_denied_pin => Npm, DeniedPin, both;
    npm_typosquat => Npm, Typosquat, remove;
    npm_quarantined_pin => Npm, Quarantined, both;
    pnpm_denied_pin => Pnpm, DeniedPin, both;
    pnpm_typosquat => Pnpm, Typosquat, remove;
    pnpm_quarantined_pin => Pnpm, Quarantined, both;
    yarn_berry_denied_pin => Yarn, DeniedPin, both;
    yarn_berry_typosquat => Yarn, Typosquat, remove;
    yarn_berry_quarantined_pin => Yarn, Quarantined, both;
    bun_denied_pin => Bun, DeniedPin, both;
    bun_typosquat => Bun, Typosquat, remove;
    bun_quarantined_pin => Bun, Quarantined, both;
    pip_denied_pin => Pip, DeniedPin, both;
    pip_typosquat => Pip, Typosquat, remove;
    pip_quarantined_pin => Pip, Quarantined, both;
    uv_denied_pin => Uv, DeniedPin, both;
    uv_typosquat => Uv, Typosquat, remove;
    uv_quarantined_pin => Uv, Quarantined, both;
    poetry_denied_pin => Poetry, DeniedPin, both;
    poetry_typosquat => Poetry, Typosquat, remove;
    poetry_quarantined_pin => Poetry, Quarantined, both;
    cargo_denied_pin => Cargo, DeniedPin, both;
    cargo_typosquat => Cargo, Typosquat, remove;
    cargo_quarantined_pin => Cargo, Quarantined, both;
}

crate::require::trials! {
    [NPM] =>
        npm_denied_pin,
        npm_typosquat,
        npm_quarantined_pin,
        npm_prints_the_notice_on_every_install_warm_cache_included;
    [PNPM] => pnpm_denied_pin, pnpm_typosquat, pnpm_quarantined_pin;
    [YARN] => yarn_berry_denied_pin, yarn_berry_typosquat, yarn_berry_quarantined_pin;
    [BUN] => bun_denied_pin, bun_typosquat, bun_quarantined_pin;
    [PIP] => pip_denied_pin, pip_typosquat, pip_quarantined_pin;
    [UV] => uv_denied_pin, uv_typosquat, uv_quarantined_pin;
    [POETRY] => poetry_denied_pin, poetry_typosquat, poetry_quarantined_pin;
    [CARGO] => cargo_denied_pin, cargo_typosquat, cargo_quarantined_pin;
}
