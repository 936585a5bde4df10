use super::*;
use crate::diag::Verdict;

#[test]
fn example_config_parses_and_matches_the_defaults() {
    let text = include_str!("../../config/depfw.example.toml");
    let config =
        Config::from_toml(text, "config/depfw.example.toml").unwrap_or_else(|e| panic!("{e}"));
    let defaults = Config::default();
    assert_eq!(config.policy_fingerprint(), defaults.policy_fingerprint());
    assert_eq!(config.server.listen, defaults.server.listen);
    // No data-dir in the file: the command line's default (`cli::data_dir`) applies.
    assert_eq!(config.server.data_dir, defaults.server.data_dir);
    assert_eq!(
        config.server.refused_versions,
        defaults.server.refused_versions
    );
    assert_eq!(config.upstream, defaults.upstream);
    assert_eq!(config.server.connections, defaults.server.connections);
    assert_eq!(defaults.server.connections, ConnectionLimits::DEFAULT);
    assert_eq!(config.feeds.sources, defaults.feeds.sources);
    assert_eq!(config.agents.limits, defaults.agents.limits);
    assert_eq!(config.agents.default_policy, defaults.agents.default_policy);
    assert_eq!(config.agents.strict_warn, defaults.agents.strict_warn);
    assert_eq!(config.admin, defaults.admin);
    assert_eq!(config.log, defaults.log);
    assert_eq!(config.audit, defaults.audit);
}

#[test]
fn audit_mirror_urls_and_verdict_are_validated() {
    let config = Config::from_toml(
        "[audit]\nmirror-urls = [\"http://depfw.internal:7878\"]\nbypasses-mirror = \"deny\"\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        config.audit.mirror_urls[0].as_str(),
        "http://depfw.internal:7878/"
    );
    assert_eq!(config.audit.bypasses_mirror, Verdict::Deny);
    let err = Config::from_toml(
        "[audit]\nmirror-urls = [\"ftp://x\"]\nbypasses-mirror = \"maybe\"\n",
        "a.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["audit.mirror-urls", "audit.bypasses-mirror"]);
}

#[test]
fn log_checkpoint_intervals_are_validated() {
    let err = Config::from_toml(
        "[log]\ncheckpoint-every-records = 0\ncheckpoint-every-secs = 0\n",
        "a.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("log.checkpoint-every-records"), "{err}");
    assert!(err.contains("log.checkpoint-every-secs"), "{err}");
    let config = Config::from_toml("[log]\ncheckpoint-file = \"cp.jsonl\"\n", "a.toml").unwrap();
    assert_eq!(
        config.log.checkpoint_file.as_deref(),
        Some(std::path::Path::new("cp.jsonl"))
    );
}

#[test]
fn admin_token_env_is_validated() {
    let config = Config::from_toml(
        "[admin]\ntoken-file = \"/run/secrets/admin\"\ntoken-env = \"MY_TOKEN\"\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        config.admin.token_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/admin"))
    );
    assert_eq!(config.admin.token_env, "MY_TOKEN");
    let err = Config::from_toml("[admin]\ntoken-env = \"A-B\"\n", "a.toml").unwrap_err();
    assert_eq!(err.problems[0].key, "admin.token-env");
    assert!(Config::from_toml("[admin]\ntoken = \"secret\"\n", "a.toml").is_err());
}

#[test]
fn agents_section_is_validated() {
    let config = Config::from_toml(
        "[agents]\ndefault-policy = \"strict\"\nstrict-warn = \"quarantine\"\nmax-refusals-per-hour = 5\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        config.agents.default_policy,
        crate::agents::PolicyPreset::Strict
    );
    assert_eq!(config.agents.strict_warn, Verdict::Quarantine);
    assert_eq!(config.agents.limits.max_refusals_per_hour, 5);
    let err = Config::from_toml(
        "[agents]\ndefault-policy = \"paranoid\"\nstrict-warn = \"warn\"\n",
        "a.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["agents.default-policy", "agents.strict-warn"]);
}

#[test]
fn unknown_keys_are_errors_with_a_line() {
    let err =
        Config::from_toml("[policy.advisories]\ndeny-att = \"high\"\n", "x.toml").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("x.toml"), "{text}");
    assert!(text.contains("deny-att"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn every_invalid_value_is_reported_with_its_key() {
    let text = r#"
[server]
listen = "nowhere"
[policy.advisories]
deny-at = "severe"
unfixed = "shrug"
[policy.typosquat]
look-alike = "maybe"
[policy.reputation]
yanked = "maybe"
[admin]
trusted-proxies = ["127.0.0.1", "proxy.internal"]
[upstream]
pypi-json = "ftp://pypi.org/pypi/"
render-cache-bytes = 0
transfer-deadline-secs = 0
redirect-origins = ["https://cdn.example/path"]
[[overrides.allow]]
ecosystem = "npm"
name = "../evil"
reason = ""
expires = "soon"
"#;
    let err = Config::from_toml(text, "bad.toml").unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "server.listen",
        "policy.advisories.deny-at",
        "policy.advisories.unfixed",
        "policy.typosquat.look-alike",
        "policy.reputation.yanked",
        "upstream.pypi-json",
        "upstream.render-cache-bytes",
        "upstream.transfer-deadline-secs",
        "upstream.redirect-origins[0]",
        "admin.trusted-proxies[1]",
        "overrides.allow[0].reason",
        "overrides.allow[0].expires",
        "overrides.allow[0].name",
    ] {
        assert!(keys.contains(&key), "missing {key} in {keys:?}");
    }
    assert!(err
        .to_string()
        .contains("bad.toml: key `policy.reputation.yanked`"));
}

#[test]
fn overrides_from_config_apply() {
    let text = r#"
[[overrides.deny]]
ecosystem = "pypi"
name = "Requests"
versions = "==2.31.0"
reason = "internal incident 42"
expires = "2999-01-01"
"#;
    let config = Config::from_toml(text, "o.toml").unwrap();
    let entries = config.overrides.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name.key(), "requests");
}

#[test]
fn duplicate_overrides_are_rejected() {
    let entry = "[[overrides.allow]]\necosystem = \"npm\"\nname = \"a\"\nreason = \"r\"\n";
    let err = Config::from_toml(&format!("{entry}{entry}"), "d.toml").unwrap_err();
    assert_eq!(err.problems[0].key, "overrides.allow[1]");
}

#[test]
fn refused_versions_is_validated() {
    assert_eq!(
        Config::default().server.refused_versions,
        RefusedVersions::Remove
    );
    let config = Config::from_toml("[server]\nrefused-versions = \"yank\"\n", "a.toml").unwrap();
    assert_eq!(config.server.refused_versions, RefusedVersions::Yank);
    let err = Config::from_toml("[server]\nrefused-versions = \"hide\"\n", "a.toml").unwrap_err();
    assert_eq!(err.problems[0].key, "server.refused-versions");
    assert!(err.problems[0].message.contains("`hide`"), "{err}");
}

#[test]
fn an_empty_versions_is_refused_with_its_key() {
    let toml = "[[overrides.allow]]\necosystem = \"npm\"\nname = \"a\"\nversions = \" \"\nreason = \"r\"\n";
    let err = Config::from_toml(toml, "e.toml").unwrap_err();
    assert_eq!(err.problems[0].key, "overrides.allow[0].versions");
    assert!(err.problems[0].message.contains("`*`"), "{err}");
    assert!(err.to_string().contains("e.toml"), "{err}");
}

#[test]
fn cargo_download_origins_are_origins() {
    let config = Config::from_toml(
        "[server]\ncargo-download-origins = [\"https://dl.example:8443\"]\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        config.server.cargo_download_origins[0].as_str(),
        "https://dl.example:8443/"
    );
    let err = Config::from_toml(
        "[server]\ncargo-download-origins = [\"https://static.crates.io\", \"static.crates.io\", \"https://x.example/crates\"]\n",
        "a.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.cargo-download-origins[1]",
            "server.cargo-download-origins[2]"
        ]
    );
}

#[test]
fn admin_listen_is_its_own_address() {
    let config = Config::default();
    assert_eq!(
        config.admin.listen,
        AdminListen::Tcp("127.0.0.1:7879".parse().unwrap())
    );
    let config = Config::from_toml(
        "[admin]\nlisten = \"unix:/run/depfw/admin.sock\"\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        config.admin.listen,
        AdminListen::Unix("/run/depfw/admin.sock".into())
    );
    for bad in ["127.0.0.1:7878", "unix:", "localhost"] {
        let err =
            Config::from_toml(&format!("[admin]\nlisten = \"{bad}\"\n"), "a.toml").unwrap_err();
        assert_eq!(err.problems[0].key, "admin.listen", "{bad}");
    }
}

/// The five upstream URLs the upstream tests configure, in `UpstreamConfig` order.
const MIRROR_URLS: [&str; 5] = [
    "http://mirror.internal/npm/",
    "http://mirror.internal/simple/",
    "http://mirror.internal/files/",
    "http://mirror.internal/pypi/",
    "http://mirror.internal/index/",
];

fn upstream_urls(config: &Config) -> [&str; 5] {
    let u = &config.upstream;
    [
        u.npm.as_str(),
        u.pypi.as_str(),
        u.pypi_files.as_str(),
        u.pypi_json.as_str(),
        u.cargo_index.as_str(),
    ]
}

#[test]
fn upstream_tables_set_each_registry() {
    let text = r#"
[upstream.npm]
registry = "http://mirror.internal/npm/"
[upstream.pypi]
index = "http://mirror.internal/simple/"
files = "http://mirror.internal/files/"
json-api = "http://mirror.internal/pypi/"
[upstream.cargo]
index = "http://mirror.internal/index/"
"#;
    let config = Config::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(upstream_urls(&config), MIRROR_URLS);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(
        Config::default().warnings.is_empty(),
        "the defaults use no deprecated key"
    );
    let err = Config::from_toml("[upstream.npm]\nurl = \"http://x/\"\n", "t.toml").unwrap_err();
    assert!(err.to_string().contains("unknown field `url`"), "{err}");
}

#[test]
fn flat_upstream_keys_still_work_with_a_warning_naming_the_new_key() {
    let text = r#"
[upstream]
npm = "http://mirror.internal/npm/"
pypi = "http://mirror.internal/simple/"
pypi-files = "http://mirror.internal/files/"
pypi-json = "http://mirror.internal/pypi/"
cargo-index = "http://mirror.internal/index/"
"#;
    let config = Config::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(upstream_urls(&config), MIRROR_URLS);
    let warned: Vec<(&str, &str)> = config
        .warnings
        .iter()
        .map(|w| (w.key.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        warned,
        [
            (
                "upstream.npm",
                "deprecated: use `upstream.npm.registry` instead"
            ),
            (
                "upstream.pypi",
                "deprecated: use `upstream.pypi.index` instead"
            ),
            (
                "upstream.pypi-files",
                "deprecated: use `upstream.pypi.files` instead"
            ),
            (
                "upstream.pypi-json",
                "deprecated: use `upstream.pypi.json-api` instead"
            ),
            (
                "upstream.cargo-index",
                "deprecated: use `upstream.cargo.index` instead"
            ),
        ]
    );
}

#[test]
fn a_flat_upstream_key_and_its_table_key_together_are_an_error() {
    let text = r#"
[upstream]
pypi-files = "http://a/files/"
cargo-index = "http://a/index/"
[upstream.pypi]
files = "http://b/files/"
[upstream.cargo]
index = "http://b/index/"
"#;
    let err = Config::from_toml(text, "both.toml").unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["upstream.pypi-files", "upstream.cargo-index"]);
    let shown = err.to_string();
    assert!(
        shown.contains(
            "both.toml: key `upstream.pypi-files`: deprecated key given together with its \
             replacement `upstream.pypi.files`"
        ),
        "{shown}"
    );
    // `npm = "…"` and `[upstream.npm]` are the same TOML key: the parser refuses that, with
    // the line.
    let err = Config::from_toml(
        "[upstream]\nnpm = \"http://a/\"\n[upstream.npm]\nregistry = \"http://b/\"\n",
        "dup.toml",
    )
    .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("dup.toml") && shown.contains("line 3"),
        "{shown}"
    );
}

#[test]
fn connection_limits_are_read_and_validated() {
    let config = Config::from_toml(
        "[server]\nheader-timeout-secs = 3\nmax-connections = 100\nmax-connections-per-peer = 10\nclient-min-rate = 0\n",
        "a.toml",
    )
    .unwrap();
    let c = config.server.connections;
    assert_eq!(
        (
            c.header_timeout_secs,
            c.max_connections,
            c.max_connections_per_peer,
            c.client_min_rate
        ),
        (3, Some(100), 10, 0)
    );
    let err = Config::from_toml(
        "[server]\nheader-timeout-secs = 0\nbody-timeout-secs = 0\nmax-connections = 0\nmax-connections-per-peer = 0\nclient-rate-window-secs = 0\n",
        "a.toml",
    )
    .unwrap_err();
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.header-timeout-secs",
            "server.body-timeout-secs",
            "server.max-connections",
            "server.max-connections-per-peer",
            "server.client-rate-window-secs"
        ]
    );
}

#[test]
fn tls_needs_both_files_and_makes_the_default_public_url_https() {
    let config = Config::from_toml(
        "[server]\nlisten = \"0.0.0.0:8443\"\ntls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n",
        "a.toml",
    )
    .unwrap();
    let tls = config.server.tls.as_ref().unwrap();
    assert_eq!(tls.cert, std::path::Path::new("c.pem"));
    assert_eq!(tls.key, std::path::Path::new("k.pem"));
    assert_eq!(config.server.public_url.as_str(), "https://0.0.0.0:8443/");
    assert!(Config::default().server.tls.is_none());

    let err = Config::from_toml("[server]\ntls-key = \"k.pem\"\n", "a.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.tls-cert"), "{err}");
}

#[test]
fn store_section_selects_the_backend_and_never_shows_the_password() {
    let config = Config::from_toml("", "a.toml").unwrap();
    assert_eq!(config.store.url, None, "sled is the default");
    let config = Config::from_toml(
        "[store]\nurl = \"postgres://depfw:s3cret@db:5432/depfw\"\npool-size = 4\n",
        "a.toml",
    )
    .unwrap();
    let url = config.store.url.clone().unwrap();
    assert_eq!(url.redacted(), "postgres://depfw:***@db:5432/depfw");
    assert!(!format!("{config:?}").contains("s3cret"));
    assert_eq!(config.store.pool_size, 4);

    let err = Config::from_toml(
        "[store]\nurl = \"mysql://root:hunter2@db/x\"\npool-size = 0\nrefresh-millis = 1\n",
        "a.toml",
    )
    .unwrap_err();
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["store.url", "store.pool-size", "store.refresh-millis"]
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(
        super::redact_url("postgresql://u:p@h/db?sslmode=disable&password=x"),
        "postgresql://u:***@h/db?sslmode=disable&password=***"
    );
}

#[test]
fn quarantine_webhook_is_validated() {
    let err = Config::from_toml(
        "[quarantine]\nwebhook-url = \"https://user:secret@hooks.example/x\"\n\
         webhook-timeout-secs = 0\nwebhook-retries = 11\nadmin-url = \"ftp://x\"\n",
        "a.toml",
    )
    .unwrap_err()
    .to_string();
    for key in [
        "quarantine.webhook-url",
        "quarantine.webhook-timeout-secs",
        "quarantine.webhook-retries",
        "quarantine.admin-url",
    ] {
        assert!(err.contains(key), "{key}: {err}");
    }
    assert!(!err.contains("secret@"), "{err}");
    // Off by default; the admin link follows `admin.listen` unless it is a wildcard.
    let config = Config::default();
    assert_eq!(config.quarantine.webhook_url, None);
    assert_eq!(
        config.quarantine.admin_url.as_ref().map(url::Url::as_str),
        Some("http://127.0.0.1:7879/admin")
    );
    let config = Config::from_toml(
        "[admin]\nlisten = \"0.0.0.0:7879\"\n[quarantine]\nwebhook-url = \"http://127.0.0.1:9/h\"\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(config.quarantine.admin_url, None);
    assert_eq!(
        config.quarantine.webhook_url.as_ref().map(url::Url::as_str),
        Some("http://127.0.0.1:9/h")
    );
}
