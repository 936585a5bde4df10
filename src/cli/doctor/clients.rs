//! The per-client checks of `depfw doctor`: which clients a project uses, where each one's
//! registry and release cooldown are set, and what depfw makes of them.

use std::path::Path;

use super::cooldown::{self, UvExclude};
use super::files::{self, ini_pairs, ini_section, toml_at, toml_str, yaml_scalar};
use super::tokens::is_literal_secret;
use super::{Code, Report};

/// Lockfiles doctor reads for tokens only (what they resolve to is `depfw audit`'s job).
const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lock",
    "uv.lock",
    "poetry.lock",
    "Cargo.lock",
];

pub(crate) fn check_all(dir: &Path, report: &mut Report) {
    let exists = |rel: &str| dir.join(rel).exists();
    for lock in LOCKFILES {
        files::read(dir, lock, report);
    }
    let npmrc = files::read(dir, ".npmrc", report);
    let pyproject = files::toml(dir, "pyproject.toml", report);
    let pnpm_used = exists("pnpm-lock.yaml") || exists("pnpm-workspace.yaml");
    let yarn_used = exists("yarn.lock") || exists(".yarnrc.yml");
    let bun_used = exists("bun.lock") || exists("bun.lockb") || exists("bunfig.toml");
    // An .npmrc alone means npm; beside another client's files it is that client's.
    let npm_used = exists("package-lock.json")
        || exists("npm-shrinkwrap.json")
        || (npmrc.is_some() && !(pnpm_used || yarn_used || bun_used));
    if let Some(text) = &npmrc {
        npmrc_auth(text, report);
    }
    if npm_used {
        npm(npmrc.as_deref(), report);
    }
    if pnpm_used {
        pnpm(dir, npmrc.as_deref(), report);
    }
    if yarn_used {
        yarn(dir, report);
    }
    if bun_used {
        bun(dir, npmrc.as_deref(), report);
    }
    let tool = |name: &str| {
        pyproject
            .as_ref()
            .and_then(|p| toml_at(p, &["tool", name]))
            .and_then(|t| t.as_table())
    };
    if exists("uv.lock") || exists("uv.toml") || tool("uv").is_some() {
        let uv_toml = files::toml(dir, "uv.toml", report);
        // uv.toml wins over [tool.uv] when both exist, as in uv.
        match uv_toml {
            Some(t) => uv("uv.toml", &t, report),
            None => match tool("uv") {
                Some(t) => uv("pyproject.toml [tool.uv]", t, report),
                None => uv("uv.toml", &toml::Table::new(), report),
            },
        }
    }
    if exists("poetry.lock") || tool("poetry").is_some() {
        let empty = toml::Table::new();
        poetry(dir, tool("poetry").unwrap_or(&empty), report);
    }
    if let Some(conf) = files::read(dir, "pip.conf", report) {
        pip(&conf, report);
    }
    if exists("Cargo.lock") || exists("Cargo.toml") || exists(".cargo/config.toml") {
        cargo(dir, report);
    }
}

/// The registry verdict for one client: `url` is its setting, if any.
fn registry(report: &mut Report, file: &str, client: &str, url: Option<&str>) {
    match url {
        Some(url) if report.is_depfw(url) => {
            report.ok(file, format!("{client} installs through depfw"))
        }
        Some(_) => report.finding(
            Code::NotThroughDepfw,
            file,
            format!(
                "{client}'s registry is not depfw ({}): `depfw init {client}` prints the setting",
                report.base()
            ),
        ),
        None => report.finding(
            Code::NotThroughDepfw,
            file,
            format!(
                "no registry set for {client} in the project: it uses its default registry \
                 unless a user config says otherwise (`depfw init {client}`)"
            ),
        ),
    }
}

/// The cooldown verdict for one client: `age` is its setting in seconds (`Err` for a
/// value that does not parse), `default` what the client uses when it is unset.
fn cooldown_check(
    report: &mut Report,
    file: &str,
    setting: &str,
    age: Option<Result<u64, String>>,
    default: Option<u64>,
) {
    let Some(hours) = report.cooldown_hours else {
        return;
    };
    let wanted = hours * 3600;
    let (age, source) = match age {
        Some(Ok(age)) => (age, "is"),
        Some(Err(value)) => {
            let value: String = value.chars().take(40).collect();
            report.finding(
                Code::Malformed,
                file,
                format!("`{setting}` has a value the client does not accept: {value:?}"),
            );
            return;
        }
        None => match default {
            Some(age) => (age, "is unset; the client's default is"),
            None => {
                report.finding(
                    Code::CooldownMissing,
                    file,
                    format!(
                        "`{setting}` is unset: the resolver picks versions younger than \
                         depfw's {hours}h cooldown, which depfw then holds back"
                    ),
                );
                return;
            }
        },
    };
    let said = format!("`{setting}` {source} {}", cooldown::human(age));
    if age < wanted {
        report.finding(
            Code::CooldownShorter,
            file,
            format!("{said}, shorter than depfw's {hours}h cooldown"),
        );
    } else {
        report.ok(file, format!("{said}, agrees with depfw's {hours}h"));
    }
}

/// Literal `_authToken=` values in an `.npmrc` (npm, pnpm and bun read it).
fn npmrc_auth(text: &str, report: &mut Report) {
    for (line, key, value) in ini_pairs(text) {
        if (key.ends_with(":_authToken") || key.ends_with(":_auth") || key.ends_with(":_password"))
            && is_literal_secret(value)
        {
            report.finding(
                Code::TokenInFile,
                ".npmrc",
                format!(
                    "line {line}: `{}` holds a literal secret: reference the environment \
                     instead (`${{{}}}` for depfw)",
                    key.rsplit(':').next().unwrap_or(key),
                    crate::agents::TOKEN_ENV
                ),
            );
        }
    }
}

fn npmrc_value<'a>(text: Option<&'a str>, name: &str) -> Option<&'a str> {
    ini_pairs(text?)
        .filter(|(_, key, _)| *key == name)
        .map(|(_, _, value)| value)
        .last()
}

fn npm(npmrc: Option<&str>, report: &mut Report) {
    registry(report, ".npmrc", "npm", npmrc_value(npmrc, "registry"));
    let age = npmrc_value(npmrc, "min-release-age")
        .map(|v| cooldown::parse_npm_days(v).ok_or_else(|| v.to_owned()));
    cooldown_check(report, ".npmrc", "min-release-age", age, None);
}

fn pnpm(dir: &Path, npmrc: Option<&str>, report: &mut Report) {
    let workspace = files::yaml(dir, "pnpm-workspace.yaml", report);
    let yaml = |key: &str| workspace.as_ref().and_then(|w| yaml_scalar(w, key));
    match yaml("registry") {
        Some(url) => registry(report, "pnpm-workspace.yaml", "pnpm", Some(&url)),
        None => registry(report, ".npmrc", "pnpm", npmrc_value(npmrc, "registry")),
    }
    // Minutes, a whole number; pnpm's built-in default is 1440 (one day).
    let age = yaml("minimumReleaseAge").map(|v| {
        v.trim()
            .parse::<u64>()
            .ok()
            .and_then(|m| m.checked_mul(60))
            .ok_or(v)
    });
    cooldown_check(
        report,
        "pnpm-workspace.yaml",
        "minimumReleaseAge",
        age,
        Some(1440 * 60),
    );
}

fn yarn(dir: &Path, report: &mut Report) {
    const FILE: &str = ".yarnrc.yml";
    let rc = files::yaml(dir, FILE, report);
    let value = |key: &str| rc.as_ref().and_then(|r| yaml_scalar(r, key));
    registry(report, FILE, "yarn", value("npmRegistryServer").as_deref());
    let age = value("npmMinimalAgeGate").map(|v| cooldown::parse_yarn_duration(&v).ok_or(v));
    // yarn 4.10+ defaults to one day.
    cooldown_check(report, FILE, "npmMinimalAgeGate", age, Some(86_400));
    if value("npmAuthToken").is_some_and(|t| is_literal_secret(&t)) {
        report.finding(
            Code::TokenInFile,
            FILE,
            format!(
                "`npmAuthToken` holds a literal secret: use \"${{{}}}\"",
                crate::agents::TOKEN_ENV
            ),
        );
    }
}

fn bun(dir: &Path, npmrc: Option<&str>, report: &mut Report) {
    const FILE: &str = "bunfig.toml";
    let table = files::toml(dir, FILE, report).unwrap_or_default();
    let reg = toml_at(&table, &["install", "registry"]);
    let (url, token) = match reg {
        Some(toml::Value::String(url)) => (Some(url.as_str()), None),
        Some(toml::Value::Table(t)) => (
            t.get("url").and_then(|u| u.as_str()),
            t.get("token").and_then(|u| u.as_str()),
        ),
        _ => (None, None),
    };
    match url {
        Some(url) => registry(report, FILE, "bun", Some(url)),
        None => registry(report, ".npmrc", "bun", npmrc_value(npmrc, "registry")),
    }
    let age = toml_at(&table, &["install", "minimumReleaseAge"]).map(|v| match v {
        toml::Value::Integer(s) => u64::try_from(*s).map_err(|_| s.to_string()),
        toml::Value::Float(s) if *s >= 0.0 && *s < 1e15 => Ok(s.round() as u64),
        other => Err(other.to_string()),
    });
    cooldown_check(report, FILE, "[install] minimumReleaseAge", age, None);
    if token.is_some_and(is_literal_secret) {
        report.finding(
            Code::TokenInFile,
            FILE,
            format!(
                "`[install] registry.token` holds a literal secret: use \"${}\"",
                crate::agents::TOKEN_ENV
            ),
        );
    }
}

/// Index URLs a uv or poetry config names: every one must be depfw, or the resolver can
/// take a package from the other.
fn indexes_registry(report: &mut Report, file: &str, client: &str, urls: &[&str]) {
    match urls.iter().find(|u| !report.is_depfw(u)) {
        Some(other) => registry(report, file, client, Some(other)),
        None => registry(report, file, client, urls.first().copied()),
    }
}

fn uv(file: &str, table: &toml::Table, report: &mut Report) {
    let mut urls: Vec<&str> = ["index-url", "default-index"]
        .iter()
        .filter_map(|k| toml_str(table, &[k]))
        .collect();
    for key in ["index", "extra-index-url"] {
        if let Some(list) = table.get(key).and_then(|v| v.as_array()) {
            urls.extend(
                list.iter()
                    .filter_map(|i| i.as_str().or_else(|| i.get("url").and_then(|u| u.as_str()))),
            );
        }
    }
    indexes_registry(report, file, "uv", &urls);
    let age =
        toml_str(table, &["exclude-newer"]).map(|v| match cooldown::parse_uv_exclude_newer(v) {
            Some(UvExclude::Duration(secs)) => Ok(Some(secs)),
            Some(UvExclude::FixedDate) => Ok(None),
            None => Err(v.to_owned()),
        });
    match age {
        Some(Ok(None)) => report.ok(
            file,
            "`exclude-newer` is a fixed date: no cooldown, but nothing newer than it".to_owned(),
        ),
        Some(Ok(Some(secs))) => cooldown_check(report, file, "exclude-newer", Some(Ok(secs)), None),
        Some(Err(v)) => cooldown_check(report, file, "exclude-newer", Some(Err(v)), None),
        None => cooldown_check(report, file, "exclude-newer", None, None),
    }
}

fn poetry(dir: &Path, tool: &toml::Table, report: &mut Report) {
    let urls: Vec<&str> = tool
        .get("source")
        .and_then(|s| s.as_array())
        .map(|list| {
            list.iter()
                .filter(|s| s.get("priority").and_then(|p| p.as_str()) != Some("explicit"))
                .filter_map(|s| s.get("url").and_then(|u| u.as_str()))
                .collect()
        })
        .unwrap_or_default();
    indexes_registry(report, "pyproject.toml [tool.poetry]", "poetry", &urls);
    let local = files::toml(dir, "poetry.toml", report).unwrap_or_default();
    let age = toml_at(&local, &["solver", "min-release-age"]).map(|v| {
        v.as_integer()
            .and_then(|d| u64::try_from(d).ok())
            .and_then(|d| d.checked_mul(86_400))
            .ok_or_else(|| v.to_string())
    });
    cooldown_check(report, "poetry.toml", "solver.min-release-age", age, None);
}

fn pip(conf: &str, report: &mut Report) {
    let global = ini_section(conf, "global");
    let value = |k: &str| global.iter().find(|(_, key, _)| *key == k).map(|p| p.2);
    let mut urls: Vec<&str> = value("index-url").into_iter().collect();
    urls.extend(
        value("extra-index-url")
            .map(|v| v.split_whitespace())
            .into_iter()
            .flatten(),
    );
    indexes_registry(report, "pip.conf", "pip", &urls);
}

fn cargo(dir: &Path, report: &mut Report) {
    const FILE: &str = ".cargo/config.toml";
    let config = files::toml(dir, FILE, report).unwrap_or_default();
    let url = toml_str(&config, &["source", "crates-io", "replace-with"]).and_then(|name| {
        toml_str(&config, &["source", name, "registry"])
            .or_else(|| toml_str(&config, &["registries", name, "index"]))
    });
    registry(report, FILE, "cargo", url);
}

#[cfg(test)]
mod tests {
    use super::super::diagnose;
    use crate::config::Config;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn codes(files: &[(&str, &str)]) -> Vec<(String, String)> {
        let dir = project(files);
        let report = diagnose(dir.path(), &Config::default());
        report
            .findings
            .iter()
            .map(|f| {
                let code = serde_json::to_value(f.code).unwrap();
                (f.file.clone(), code.as_str().unwrap().to_owned())
            })
            .collect()
    }

    fn pair(file: &str, code: &str) -> (String, String) {
        (file.to_owned(), code.to_owned())
    }

    #[test]
    fn a_project_configured_by_init_is_clean() {
        let found = codes(&[
            (".npmrc", "registry=http://127.0.0.1:7878/npm/\nmin-release-age=2\n"),
            ("package-lock.json", "{}"),
            (
                "pnpm-workspace.yaml",
                "minimumReleaseAge: 2880\nregistry: http://127.0.0.1:7878/npm/\n",
            ),
            (
                ".yarnrc.yml",
                "npmRegistryServer: \"http://127.0.0.1:7878/npm/\"\nnpmMinimalAgeGate: \"48h\"\n",
            ),
            (
                "bunfig.toml",
                "[install]\nregistry = \"http://127.0.0.1:7878/npm/\"\nminimumReleaseAge = 172800\n",
            ),
            (
                "uv.toml",
                "exclude-newer = \"48 hours\"\n[[index]]\nurl = \"http://127.0.0.1:7878/pypi/simple/\"\ndefault = true\n",
            ),
            (
                ".cargo/config.toml",
                "[source.crates-io]\nreplace-with = \"depfw\"\n[source.depfw]\nregistry = \"sparse+http://127.0.0.1:7878/cargo/index/\"\n",
            ),
            ("pip.conf", "[global]\nindex-url = http://127.0.0.1:7878/pypi/simple/\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn wrong_registries_and_short_or_missing_cooldowns_are_reported() {
        let found = codes(&[
            (".npmrc", "registry=https://registry.npmjs.org/\n"),
            ("package-lock.json", "{}"),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
            (".yarnrc.yml", "npmMinimalAgeGate: 60\n"),
            ("pyproject.toml", "[tool.uv]\nexclude-newer = \"1 day\"\n"),
            ("Cargo.lock", "version = 4\n"),
            (
                "pip.conf",
                "[global]\nindex-url = http://127.0.0.1:7878/pypi/simple/\nextra-index-url = https://pypi.org/simple/\n",
            ),
        ]);
        for expected in [
            pair(".npmrc", "not-through-depfw"),
            pair(".npmrc", "cooldown-missing"),
            // pnpm's own 1-day default is shorter than 48h.
            pair("pnpm-workspace.yaml", "cooldown-shorter"),
            pair(".yarnrc.yml", "not-through-depfw"),
            pair(".yarnrc.yml", "cooldown-shorter"),
            pair("pyproject.toml [tool.uv]", "not-through-depfw"),
            pair("pyproject.toml [tool.uv]", "cooldown-shorter"),
            pair(".cargo/config.toml", "not-through-depfw"),
            // An extra index lets the resolver take a package from elsewhere.
            pair("pip.conf", "not-through-depfw"),
        ] {
            assert!(found.contains(&expected), "{expected:?} not in {found:?}");
        }
    }

    #[test]
    fn an_npmrc_beside_another_clients_files_is_that_clients() {
        let found = codes(&[
            (".npmrc", "registry=http://127.0.0.1:7878/npm/\n"),
            ("pnpm-workspace.yaml", "minimumReleaseAge: 2880\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
        let found = codes(&[(".npmrc", "registry=http://127.0.0.1:7878/npm/\n")]);
        assert_eq!(found, [pair(".npmrc", "cooldown-missing")]);
    }

    #[test]
    fn malformed_files_are_findings_with_their_path() {
        let found = codes(&[
            ("bunfig.toml", "[install\nregistry = \n"),
            (".yarnrc.yml", "a: [\n"),
            ("pyproject.toml", "\u{0}\u{1}= =\n"),
            (".npmrc", "min-release-age=soon\n"),
            ("package-lock.json", "{}"),
        ]);
        for expected in [
            pair("bunfig.toml", "malformed"),
            pair(".yarnrc.yml", "malformed"),
            pair("pyproject.toml", "malformed"),
            pair(".npmrc", "malformed"),
        ] {
            assert!(found.contains(&expected), "{expected:?} not in {found:?}");
        }
    }

    #[test]
    fn literal_auth_tokens_are_reported_and_env_references_are_not() {
        let found = codes(&[(
            ".npmrc",
            "registry=http://127.0.0.1:7878/auth/npm/\nmin-release-age=2\n//127.0.0.1:7878/auth/npm/:_authToken=${DEPFW_TOKEN}\n",
        )]);
        assert!(found.is_empty(), "{found:?}");
        let dir = project(&[(
            ".npmrc",
            "registry=http://127.0.0.1:7878/auth/npm/\nmin-release-age=2\n//127.0.0.1:7878/auth/npm/:_authToken=npm_secretvalue\n",
        )]);
        let report = diagnose(dir.path(), &Config::default());
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(report.findings[0]
            .message
            .starts_with("line 3: `_authToken`"));
        assert!(!format!("{report:?}").contains("npm_secretvalue"));
    }
}
