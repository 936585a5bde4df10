//! The content rules' holds as every door sees them: a version a scan held (kept in the
//! store by `depfw serve`) is reported by the policy `depfw check` and `depfw audit` build
//! from the same store, with the configured verdict; `enabled = false` drops them.

use depfw::config::Config;
use depfw::diag::{Code, Finding, Severity, Verdict};
use depfw::package::{Ecosystem, PackageName, Version};
use depfw::policy::PackageCtx;
use depfw::store::content::ContentStore;
use depfw::store::Store;

fn verdict_of(config: &Config, store: &Store, version: &str) -> (Verdict, Vec<Code>) {
    let engine = depfw::engine::load(config, Some(store)).unwrap();
    let name = PackageName::parse(Ecosystem::PyPI, "depfw-content-fixture").unwrap();
    let version = Version::parse(Ecosystem::PyPI, version).unwrap();
    let decision = engine.policy.evaluate(&PackageCtx {
        name: &name,
        version: Some(&version),
        metadata: None,
        now: chrono::Utc::now(),
    });
    let codes = decision.findings.iter().map(|f| f.code.clone()).collect();
    (decision.verdict, codes)
}

#[test]
fn a_held_version_is_refused_by_the_policy_built_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let finding = Finding::new(
        Code::PthExecutesCode,
        Severity::High,
        Verdict::Quarantine,
        "litellm_init.pth: line 1 runs at every Python start and uses `subprocess`".into(),
    );
    ContentStore::new(&store)
        .unwrap()
        .hold(
            Ecosystem::PyPI,
            "depfw-content-fixture",
            "1.82.8",
            &[finding],
        )
        .unwrap();

    let config = Config::default();
    let (verdict, codes) = verdict_of(&config, &store, "1.82.8");
    assert_eq!(verdict, Verdict::Quarantine);
    assert!(codes.contains(&Code::PthExecutesCode), "{codes:?}");
    // Other versions are untouched.
    let (_, codes) = verdict_of(&config, &store, "1.82.6");
    assert!(!codes.contains(&Code::PthExecutesCode));

    // The verdict is the current config's, not the one the scan was made under.
    let deny = Config::from_toml("[policy.content]\npth-executes-code = \"deny\"\n", "t").unwrap();
    assert_eq!(verdict_of(&deny, &store, "1.82.8").0, Verdict::Deny);
    let off = Config::from_toml("[policy.content]\nenabled = false\n", "t").unwrap();
    let (_, codes) = verdict_of(&off, &store, "1.82.8");
    assert!(!codes.contains(&Code::PthExecutesCode));
}

#[test]
fn content_config_problems_name_their_keys() {
    let err = Config::from_toml(
        "[policy.content]\nmax-entries = 0\nagent-config-write = \"block\"\n",
        "depfw.toml",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("policy.content.max-entries"), "{err}");
    assert!(err.contains("policy.content.agent-config-write"), "{err}");
}
