//! Private upstreams: `[[upstream.npm.scopes]]`, `[[upstream.pypi.private]]` and
//! `[[upstream.cargo.private]]`, each with its own registry and, optionally, its own credentials, so that `depfw serve` can stand
//! in front of an organisation's registry as well as the public one.
//!
//! Routing is by name, and a name has exactly one upstream: `@corp/*` is asked of the
//! scope's registry only, a listed PyPI name (or crate) of its private index only. A 404 there is a
//! 404 to the client, never a retry against the public registry: merging two registries
//! for one name is how dependency confusion happens (the public `@corp/i18n` 99.0.3 that
//! wins the version race).
//!
//! Credentials are never written in the config: a token (or a password) is read from a
//! file, readable by depfw's user alone, when `depfw serve` starts (`server::credentials`).

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::Problems;
use crate::package::{Ecosystem, PackageName};
use crate::policy::internal::NamePattern;

/// `[[upstream.npm.scopes]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNpmScope {
    pub scope: String,
    pub registry: String,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// `[[upstream.pypi.private]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPypiPrivate {
    pub index: String,
    pub files: Option<String>,
    pub names: Vec<String>,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// `[[upstream.cargo.private]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCargoPrivate {
    pub index: String,
    pub downloads: Option<String>,
    pub names: Vec<String>,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// How depfw authenticates to one private upstream; the secret stays in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `token-file`: `Authorization: Bearer <first line>`.
    Bearer { token_file: PathBuf },
    /// `token-file` of a cargo table: `Authorization: <first line>`, as cargo sends a
    /// registry token (the line carries its scheme if the registry wants one).
    Verbatim { token_file: PathBuf },
    /// `username` and `password-file`: HTTP Basic.
    Basic {
        username: String,
        password_file: PathBuf,
    },
}

/// Credentials for every request to one origin (scheme, host, port), and only to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The upstream's origin, `https://npm.corp.example`.
    pub origin: url::Origin,
    pub auth: UpstreamAuth,
    /// The config table it came from (`upstream.npm.scopes[0]`), for messages.
    pub key: String,
}

/// One `[[upstream.npm.scopes]]`: the scope's packuments and tarballs come from `registry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmScope {
    /// `@corp`, lowercase.
    pub scope: String,
    pub registry: Url,
    pub credential: Option<Credential>,
}

impl NpmScope {
    /// Whether `name` is in this scope.
    pub fn routes(&self, name: &PackageName) -> bool {
        name.ecosystem() == Ecosystem::Npm
            && name
                .key()
                .split_once('/')
                .is_some_and(|(scope, _)| scope == self.scope)
    }
}

/// One `[[upstream.pypi.private]]`: the projects `names` matches come from `index`, their
/// files from `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPrivate {
    pub index: Url,
    pub files: Url,
    pub names: Vec<NamePattern>,
    /// For the index's origin, and the same for `files` when that is another origin (the
    /// operator named it as this index's file host).
    pub credentials: Vec<Credential>,
}

impl PypiPrivate {
    /// Whether `name` is one of this index's projects.
    pub fn routes(&self, name: &PackageName) -> bool {
        name.ecosystem() == Ecosystem::PyPI
            && self
                .names
                .iter()
                .any(|p| p.matches(Ecosystem::PyPI, name.key()))
    }
}

/// One `[[upstream.cargo.private]]`: the crates `names` matches come from the sparse
/// index `index`, their `.crate` files from where its `config.json` says (`dl`), on the
/// index's host or `downloads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoPrivate {
    /// The sparse index, without cargo's `sparse+`.
    pub index: Url,
    /// Another host its `dl` may point at (and its credentials go to).
    pub downloads: Option<Url>,
    pub names: Vec<NamePattern>,
    /// For the index's origin, and the same for `downloads` when that is another origin.
    pub credentials: Vec<Credential>,
}

impl CargoPrivate {
    /// Whether `name` is one of this registry's crates (case and `-`/`_` folded, as cargo
    /// compares crate names).
    pub fn routes(&self, name: &PackageName) -> bool {
        name.ecosystem() == Ecosystem::CratesIo
            && self
                .names
                .iter()
                .any(|p| p.matches(Ecosystem::CratesIo, name.key()))
    }

    /// The origins its downloads may come from: the index's, and `downloads`.
    pub fn download_origins(&self) -> impl Iterator<Item = &Url> {
        std::iter::once(&self.index).chain(&self.downloads)
    }
}

/// A registry URL of a private upstream: http(s), and no credentials in it (they would be
/// logged with every URL depfw logs).
fn registry_url(p: &mut Problems, key: &str, value: &str) -> Url {
    let url = p.url(key, value);
    if !url.username().is_empty() || url.password().is_some() {
        p.push(
            key,
            "the URL carries credentials: remove them and use `token-file`, or `username` \
             with `password-file`",
        );
    }
    if url.query().is_some() {
        p.push(key, "a registry URL has no query string");
    }
    url
}

/// The credential fields of the table at `key`: a token file, or a user with a password
/// file, or neither.
fn credential(
    p: &mut Problems,
    key: &str,
    url: &Url,
    token_file: Option<&PathBuf>,
    username: Option<&String>,
    password_file: Option<&PathBuf>,
) -> Option<Credential> {
    let empty = |f: Option<&PathBuf>| f.is_some_and(|f| f.as_os_str().is_empty());
    for (field, path) in [("token-file", token_file), ("password-file", password_file)] {
        if empty(path) {
            p.push(
                format!("{key}.{field}"),
                "an empty path; leave the key out for none",
            );
            return None;
        }
    }
    let auth = match (token_file, username, password_file) {
        (None, None, None) => return None,
        (Some(token_file), None, None) => UpstreamAuth::Bearer {
            token_file: token_file.clone(),
        },
        (None, Some(username), Some(password_file)) => {
            if username.is_empty() || username.contains(':') {
                p.push(
                    format!("{key}.username"),
                    "an HTTP Basic user name is not empty and has no `:`",
                );
                return None;
            }
            UpstreamAuth::Basic {
                username: username.clone(),
                password_file: password_file.clone(),
            }
        }
        (Some(_), _, _) => {
            p.push(
                format!("{key}.token-file"),
                "give either `token-file` (a bearer token) or `username` with `password-file` \
                 (HTTP Basic), not both",
            );
            return None;
        }
        (None, Some(_), None) => {
            p.push(
                format!("{key}.password-file"),
                "missing: `username` is set, and HTTP Basic needs the file holding the password",
            );
            return None;
        }
        (None, None, Some(_)) => {
            p.push(
                format!("{key}.username"),
                "missing: `password-file` is set, and HTTP Basic needs the user name too",
            );
            return None;
        }
    };
    Some(Credential {
        origin: url.origin(),
        auth,
        key: key.to_owned(),
    })
}

/// Validates `[[upstream.npm.scopes]]`.
pub(super) fn npm_scopes(p: &mut Problems, raw: &[RawNpmScope]) -> Vec<NpmScope> {
    let mut scopes: Vec<NpmScope> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let key = format!("upstream.npm.scopes[{i}]");
        let scope = s.scope.trim();
        let valid = scope.strip_prefix('@').is_some_and(|rest| {
            !rest.is_empty()
                && rest.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
                })
        });
        if !valid {
            p.push(
                format!("{key}.scope"),
                format!(
                    "`{scope}` is not an npm scope like `@corp` (lowercase, starting with `@`)"
                ),
            );
            continue;
        }
        if scopes.iter().any(|known| known.scope == scope) {
            p.push(
                format!("{key}.scope"),
                format!("`{scope}` is listed twice: a scope has one registry"),
            );
            continue;
        }
        let registry = registry_url(p, &format!("{key}.registry"), &s.registry);
        let credential = credential(
            p,
            &key,
            &registry,
            s.token_file.as_ref(),
            s.username.as_ref(),
            s.password_file.as_ref(),
        );
        scopes.push(NpmScope {
            scope: scope.to_owned(),
            registry,
            credential,
        });
    }
    scopes
}

/// Validates `[[upstream.pypi.private]]`.
pub(super) fn pypi_private(p: &mut Problems, raw: &[RawPypiPrivate]) -> Vec<PypiPrivate> {
    let mut indexes: Vec<PypiPrivate> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("upstream.pypi.private[{i}]");
        let index = registry_url(p, &format!("{key}.index"), &r.index);
        let files = match &r.files {
            Some(files) => registry_url(p, &format!("{key}.files"), files),
            // The index's own host, where private indexes (devpi, Artifactory, a plain
            // directory) serve their files.
            None => Url::parse(&index.origin().ascii_serialization())
                .map(|u| u.join("/").unwrap_or(u))
                .unwrap_or_else(|_| index.clone()),
        };
        let taken: Vec<&NamePattern> = indexes.iter().flat_map(|x| &x.names).collect();
        let names = name_patterns(p, &key, &r.names, Ecosystem::PyPI, &taken);
        let mut credentials: Vec<Credential> = credential(
            p,
            &key,
            &index,
            r.token_file.as_ref(),
            r.username.as_ref(),
            r.password_file.as_ref(),
        )
        .into_iter()
        .collect();
        if let Some(c) = credentials.first().cloned() {
            if files.origin() != c.origin {
                credentials.push(Credential {
                    origin: files.origin(),
                    ..c
                });
            }
        }
        indexes.push(PypiPrivate {
            index,
            files,
            names,
            credentials,
        });
    }
    indexes
}

/// The `names` of a private table at `key`: names or `*` globs, none claimed by an earlier
/// table (`taken`) or twice in this one, compared as `ecosystem` compares names.
fn name_patterns(
    p: &mut Problems,
    key: &str,
    raw: &[String],
    ecosystem: Ecosystem,
    taken: &[&NamePattern],
) -> Vec<NamePattern> {
    let (what, home, example) = match ecosystem {
        Ecosystem::CratesIo => ("crate", "registry", "`corp-*`, `internal_tool`"),
        _ => ("project", "index", "`corp-*`, `internal-tool`"),
    };
    if raw.is_empty() {
        p.push(
            format!("{key}.names"),
            format!("list the {what}s served from this {home} ({example})"),
        );
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '*')
            || (c == '.' && ecosystem == Ecosystem::PyPI)
    };
    // `Corp_X` and `corp-x` are one crate (one PyPI project): one name, one upstream.
    let same = |a: &str, b: &str| {
        crate::package::normalize(ecosystem, a).to_lowercase()
            == crate::package::normalize(ecosystem, b).to_lowercase()
    };
    let mut names: Vec<NamePattern> = Vec::new();
    for (j, text) in raw.iter().enumerate() {
        let name_key = format!("{key}.names[{j}]");
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.chars().all(|c| c == '*') {
            p.push(
                name_key,
                format!("`{text}` would send every {what} to this {home}"),
            );
            continue;
        }
        if !trimmed.chars().all(allowed) {
            p.push(
                name_key,
                format!("`{text}` is not a {what} name or a pattern like `corp-*`"),
            );
            continue;
        }
        if taken
            .iter()
            .copied()
            .chain(&names)
            .any(|n| same(n.as_str(), trimmed))
        {
            p.push(
                name_key,
                format!("`{trimmed}` is listed twice: a {what} has one {home}"),
            );
            continue;
        }
        names.push(NamePattern::new(Some(ecosystem), trimmed));
    }
    names
}

/// Validates `[[upstream.cargo.private]]`. The index may be written as cargo writes it,
/// `sparse+https://…`.
pub(super) fn cargo_private(p: &mut Problems, raw: &[RawCargoPrivate]) -> Vec<CargoPrivate> {
    let mut registries: Vec<CargoPrivate> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("upstream.cargo.private[{i}]");
        let text = r.index.trim();
        let index = registry_url(
            p,
            &format!("{key}.index"),
            text.strip_prefix("sparse+").unwrap_or(text),
        );
        let downloads = r
            .downloads
            .as_deref()
            .map(|d| registry_url(p, &format!("{key}.downloads"), d));
        let taken: Vec<&NamePattern> = registries.iter().flat_map(|x| &x.names).collect();
        let names = name_patterns(p, &key, &r.names, Ecosystem::CratesIo, &taken);
        let mut credentials: Vec<Credential> = cargo_auth(
            p,
            &key,
            &index,
            r.token_file.as_ref(),
            r.username.as_ref(),
            r.password_file.as_ref(),
        )
        .into_iter()
        .collect();
        if let (Some(c), Some(downloads)) = (credentials.first().cloned(), &downloads) {
            if downloads.origin() != c.origin {
                credentials.push(Credential {
                    origin: downloads.origin(),
                    ..c
                });
            }
        }
        registries.push(CargoPrivate {
            index,
            downloads,
            names,
            credentials,
        });
    }
    registries
}

/// [`credential`] as cargo presents it: a token file's line goes out verbatim, as cargo
/// sends the token of `credentials.toml` (`Authorization: <token>`; Kellnr's and
/// crates.io's are bare, Artifactory's is written `Bearer <token>`).
fn cargo_auth(
    p: &mut Problems,
    key: &str,
    url: &Url,
    token_file: Option<&PathBuf>,
    username: Option<&String>,
    password_file: Option<&PathBuf>,
) -> Option<Credential> {
    let mut c = credential(p, key, url, token_file, username, password_file)?;
    if let UpstreamAuth::Bearer { token_file } = c.auth {
        c.auth = UpstreamAuth::Verbatim { token_file };
    }
    Some(c)
}

/// The credentials of `[upstream.cargo]` itself (a registry manager in front of
/// crates.io), for its index's origin.
pub(super) fn cargo_credential(
    p: &mut Problems,
    cargo: &super::raw::RawCargoUpstream,
    index: &Url,
) -> Option<Credential> {
    cargo_auth(
        p,
        "upstream.cargo",
        index,
        cargo.token_file.as_ref(),
        cargo.username.as_ref(),
        cargo.password_file.as_ref(),
    )
}

/// The credentials of `[upstream.npm]` and `[upstream.pypi]` themselves: for the npm
/// registry's origin, for the index's and (when another) the files host's.
pub(super) fn main_credentials(
    p: &mut Problems,
    npm: &super::raw::RawNpmUpstream,
    pypi: &super::raw::RawPypiUpstream,
) -> Vec<Credential> {
    let mut found = Vec::new();
    // The URLs are validated with the rest of `[upstream]`; an unusable one is reported there.
    let parse =
        |url: &Option<String>, default: &str| Url::parse(url.as_deref().unwrap_or(default)).ok();
    if let Some(registry) = parse(&npm.registry, super::raw::NPM_REGISTRY) {
        found.extend(credential(
            p,
            "upstream.npm",
            &registry,
            npm.token_file.as_ref(),
            npm.username.as_ref(),
            npm.password_file.as_ref(),
        ));
    }
    if let Some(index) = parse(&pypi.index, super::raw::PYPI_INDEX) {
        if let Some(c) = credential(
            p,
            "upstream.pypi",
            &index,
            pypi.token_file.as_ref(),
            pypi.username.as_ref(),
            pypi.password_file.as_ref(),
        ) {
            if let Some(files) = parse(&pypi.files, super::raw::PYPI_FILES) {
                if files.origin() != c.origin {
                    found.push(Credential {
                        origin: files.origin(),
                        ..c.clone()
                    });
                }
            }
            found.push(c);
        }
    }
    found
}

/// Two tables that give different credentials for one origin: an origin has one identity,
/// since depfw attaches credentials by origin (as npm's `//host/:_authToken` does).
pub(super) fn check_origins<'a>(
    p: &mut Problems,
    credentials: impl Iterator<Item = &'a Credential>,
) {
    let mut seen: Vec<&Credential> = Vec::new();
    for c in credentials {
        match seen.iter().find(|s| s.origin == c.origin) {
            Some(first) if first.auth != c.auth => p.push(
                c.key.clone(),
                format!(
                    "other credentials than `{}` for the same origin {}: one origin has one \
                     set of credentials",
                    first.key,
                    c.origin.ascii_serialization()
                ),
            ),
            Some(_) => {}
            None => seen.push(c),
        }
    }
}

impl super::UpstreamConfig {
    /// The credentials of every private upstream.
    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        let npm = self.npm_scopes.iter().filter_map(|s| s.credential.as_ref());
        npm.chain(self.pypi_private.iter().flat_map(|x| &x.credentials))
            .chain(self.cargo_private.iter().flat_map(|x| &x.credentials))
            .chain(&self.main_credentials)
    }

    /// The private upstreams' URLs (registries, indexes, file hosts): where depfw fetches
    /// from, and so where an upstream may redirect.
    pub fn private_urls(&self) -> impl Iterator<Item = &Url> {
        let npm = self.npm_scopes.iter().map(|s| &s.registry);
        npm.chain(self.pypi_private.iter().flat_map(|x| [&x.index, &x.files]))
            .chain(
                self.cargo_private
                    .iter()
                    .flat_map(CargoPrivate::download_origins),
            )
    }

    /// The `[[upstream.cargo.private]]` registry `name` is routed to, if any: the first
    /// whose names match.
    pub fn cargo_private_for(&self, name: &PackageName) -> Option<&CargoPrivate> {
        self.cargo_private.iter().find(|c| c.routes(name))
    }

    /// The names the private upstreams serve, as `[policy.internal-names]` patterns.
    pub(crate) fn private_names(&self) -> Vec<NamePattern> {
        let npm = self
            .npm_scopes
            .iter()
            .map(|s| NamePattern::new(Some(Ecosystem::Npm), &format!("{}/*", s.scope)));
        npm.chain(
            self.pypi_private
                .iter()
                .flat_map(|x| x.names.iter().cloned()),
        )
        .chain(
            self.cargo_private
                .iter()
                .flat_map(|x| x.names.iter().cloned()),
        )
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn problems(text: &str) -> Vec<(String, String)> {
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        err.problems
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    fn name(ecosystem: Ecosystem, n: &str) -> PackageName {
        PackageName::parse(ecosystem, n).unwrap()
    }

    #[test]
    fn scopes_and_private_indexes_route_their_names_only() {
        let config = Config::from_toml(
            r#"
[[upstream.npm.scopes]]
scope = "@corp"
registry = "https://npm.corp.example/"
token-file = "/etc/depfw/npm.token"

[[upstream.pypi.private]]
index = "https://pypi.corp.example/simple/"
names = ["corp-*", "Internal_Tool"]
username = "depfw"
password-file = "/etc/depfw/pypi.password"
"#,
            "t.toml",
        )
        .unwrap();
        let u = &config.upstream;
        assert!(u.npm_scopes[0].routes(&name(Ecosystem::Npm, "@corp/ui")));
        assert!(!u.npm_scopes[0].routes(&name(Ecosystem::Npm, "@corpx/ui")));
        assert!(!u.npm_scopes[0].routes(&name(Ecosystem::Npm, "corp")));
        let pypi = &u.pypi_private[0];
        assert!(pypi.routes(&name(Ecosystem::PyPI, "corp.auth")));
        assert!(pypi.routes(&name(Ecosystem::PyPI, "internal-tool")));
        assert!(!pypi.routes(&name(Ecosystem::PyPI, "requests")));
        assert_eq!(pypi.files.as_str(), "https://pypi.corp.example/");
        assert_eq!(u.credentials().count(), 2);
        // Internal names served privately are where they must come from.
        let served = &config.policy.internal_names.served_privately;
        assert!(served.iter().any(|p| p.as_str() == "@corp/*"));
        assert!(served.iter().any(|p| p.as_str() == "corp-*"));
    }

    #[test]
    fn every_problem_is_located() {
        let found = problems(
            r#"
[[upstream.npm.scopes]]
scope = "corp"
registry = "https://npm.corp.example/"

[[upstream.npm.scopes]]
scope = "@corp"
registry = "https://user:secret@npm.corp.example/"

[[upstream.npm.scopes]]
scope = "@other"
registry = "https://npm.other.example/"
username = "depfw"

[[upstream.npm.scopes]]
scope = "@third"
registry = "https://npm.other.example/"
token-file = "/t"
password-file = "/p"

[[upstream.npm.scopes]]
scope = "@corp"
registry = "https://npm.corp.example/"

[[upstream.pypi.private]]
index = "https://pypi.corp.example/simple/"
names = ["*", "a b", "corp-x", "CORP-X"]

[[upstream.pypi.private]]
index = "https://pypi2.corp.example/simple/"
"#,
        );
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "upstream.npm.scopes[0].scope",
                "upstream.npm.scopes[1].registry",
                "upstream.npm.scopes[2].password-file",
                "upstream.npm.scopes[3].token-file",
                "upstream.npm.scopes[4].scope",
                "upstream.pypi.private[0].names[0]",
                "upstream.pypi.private[0].names[1]",
                "upstream.pypi.private[0].names[3]",
                "upstream.pypi.private[1].names",
            ],
            "{found:#?}"
        );
        assert!(
            found.iter().all(|(_, m)| !m.contains("secret")),
            "{found:#?}"
        );
    }

    #[test]
    fn the_main_upstreams_take_credentials_too() {
        let config = Config::from_toml(
            r#"
[upstream.npm]
registry = "https://artifactory.corp.example/api/npm/npm-remote/"
token-file = "/etc/depfw/artifactory.token"

[upstream.pypi]
index = "https://artifactory.corp.example/api/pypi/pypi-remote/simple/"
files = "https://files.corp.example/"
token-file = "/etc/depfw/artifactory.token"
"#,
            "t.toml",
        )
        .unwrap();
        let origins: Vec<(String, String)> = config
            .upstream
            .credentials()
            .map(|c| (c.origin.ascii_serialization(), c.key.clone()))
            .collect();
        assert_eq!(
            origins,
            [
                (
                    "https://artifactory.corp.example".into(),
                    "upstream.npm".into()
                ),
                ("https://files.corp.example".into(), "upstream.pypi".into()),
                (
                    "https://artifactory.corp.example".into(),
                    "upstream.pypi".into()
                ),
            ]
        );
        let found = problems(
            "[upstream.npm]\nregistry = \"https://npm.corp.example/\"\ntoken-file = \"/a\"\n\
             [[upstream.npm.scopes]]\nscope = \"@corp\"\nregistry = \"https://npm.corp.example/\"\n\
             token-file = \"/b\"\n",
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].0 == "upstream.npm" && found[0].1.contains("upstream.npm.scopes[0]"));
    }

    #[test]
    fn one_origin_has_one_set_of_credentials() {
        let found = problems(
            r#"
[[upstream.npm.scopes]]
scope = "@a"
registry = "https://npm.pkg.example/"
token-file = "/a.token"

[[upstream.npm.scopes]]
scope = "@b"
registry = "https://npm.pkg.example/"
token-file = "/b.token"
"#,
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].0, "upstream.npm.scopes[1]");
        assert!(found[0].1.contains("upstream.npm.scopes[0]"), "{found:#?}");
    }

    #[test]
    fn a_private_cargo_registry_routes_its_crates_with_a_verbatim_token() {
        let config = Config::from_toml(
            r#"
[upstream.cargo]
token-file = "/etc/depfw/crates-mirror.token"

[[upstream.cargo.private]]
index = "sparse+https://cargo.corp.example/api/v1/crates/"
downloads = "https://dl.corp.example/"
names = ["corp-*", "Internal_Tool"]
token-file = "/etc/depfw/cargo-corp.token"
"#,
            "t.toml",
        )
        .unwrap();
        let u = &config.upstream;
        let c = &u.cargo_private[0];
        assert_eq!(
            c.index.as_str(),
            "https://cargo.corp.example/api/v1/crates/"
        );
        // cargo's name rules: case-insensitive, `-` and `_` the same.
        for routed in ["corp_auth", "CORP-auth", "internal-tool", "INTERNAL_TOOL"] {
            assert!(c.routes(&name(Ecosystem::CratesIo, routed)), "{routed}");
            assert!(u
                .cargo_private_for(&name(Ecosystem::CratesIo, routed))
                .is_some());
        }
        assert!(!c.routes(&name(Ecosystem::CratesIo, "corpx")));
        assert!(!c.routes(&name(Ecosystem::PyPI, "corp-auth")));
        let origins: Vec<(String, String, bool)> = u
            .credentials()
            .map(|c| {
                let verbatim = matches!(c.auth, UpstreamAuth::Verbatim { .. });
                (c.origin.ascii_serialization(), c.key.clone(), verbatim)
            })
            .collect();
        assert_eq!(
            origins,
            [
                (
                    "https://cargo.corp.example".into(),
                    "upstream.cargo.private[0]".into(),
                    true
                ),
                (
                    "https://dl.corp.example".into(),
                    "upstream.cargo.private[0]".into(),
                    true
                ),
                (
                    "https://index.crates.io".into(),
                    "upstream.cargo".into(),
                    true
                ),
            ]
        );
        let urls: Vec<&str> = u.private_urls().map(Url::as_str).collect();
        assert!(urls.contains(&"https://dl.corp.example/"), "{urls:?}");
        let served = &config.policy.internal_names.served_privately;
        assert!(served.iter().any(|p| p.as_str() == "Internal_Tool"));
    }

    #[test]
    fn every_cargo_problem_is_located() {
        let found = problems(
            r#"
[[upstream.cargo.private]]
index = "git+https://cargo.corp.example/index"
names = ["*", "corp.x", "corp-x", "CORP_X"]

[[upstream.cargo.private]]
index = "https://tok:en@cargo2.corp.example/"
names = ["corp-x"]
username = "depfw"

[[upstream.cargo.private]]
index = "https://cargo3.corp.example/"
"#,
        );
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "upstream.cargo.private[0].index",
                "upstream.cargo.private[0].names[0]",
                "upstream.cargo.private[0].names[1]",
                "upstream.cargo.private[0].names[3]",
                "upstream.cargo.private[1].index",
                "upstream.cargo.private[1].names[0]",
                "upstream.cargo.private[1].password-file",
                "upstream.cargo.private[2].names",
            ],
            "{found:#?}"
        );
        assert!(found.iter().all(|(_, m)| !m.contains("en@")), "{found:#?}");
        assert!(
            found[3].1.contains("a crate has one registry"),
            "{found:#?}"
        );
    }

    #[test]
    fn the_commented_examples_in_the_example_config_are_valid() {
        let text = include_str!("../../config/depfw.example.toml");
        let mut examples = String::new();
        for header in [
            "# [[upstream.npm.scopes]]",
            "# [[upstream.pypi.private]]",
            "# [[upstream.cargo.private]]",
        ] {
            let at = text.find(header).unwrap();
            for line in text[at..].lines().take_while(|l| l.starts_with("# ")) {
                examples.push_str(&line[2..]);
                examples.push('\n');
            }
        }
        let config = Config::from_toml(&examples, "example").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.upstream.npm_scopes.len(), 1);
        assert_eq!(config.upstream.pypi_private[0].names.len(), 2);
        assert_eq!(config.upstream.cargo_private[0].names.len(), 2);
        assert_eq!(config.upstream.credentials().count(), 3);
    }
}
