//! The release signals and the internal-name rule through the proxy's real pipeline: the
//! fixture registry serves packuments of real-world shape (`integration/fixtures/npm/`,
//! from `tests/fixtures/signals/make.py`), the configured checks run in
//! `Policy::evaluate`, and the client sees the versions hidden and their tarballs refused
//! with the reason, with nothing fetched for them.

use std::sync::Arc;

use axum::http::StatusCode;
use depfw::config::Config;
use depfw::policy::internal::InternalNamesCheck;
use depfw::policy::signals::SignalsCheck;
use depfw::policy::Policy;
use depfw::server::{AppState, PolicyState};
use depfw::store::Store;

use crate::router::{get, json};
use crate::support::registry::{self, FixtureState};

const PUBLIC: &str = "http://depfw.test:7878";

struct Proxy {
    state: AppState,
    fixture: Arc<FixtureState>,
    _dir: tempfile::TempDir,
}

/// depfw with the signals and internal-name checks as `policy` (TOML) configures them.
async fn proxy(policy: &str) -> Proxy {
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, PUBLIC, dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let settings = Config::from_toml(policy, "policy.toml").unwrap();
    let policy = Policy::new(
        vec![
            Arc::new(SignalsCheck::new(settings.policy.signals.clone())),
            Arc::new(InternalNamesCheck::new(
                settings.policy.internal_names.clone(),
            )),
        ],
        Arc::default(),
        "signals".into(),
    );
    let state = AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap();
    Proxy {
        state,
        fixture,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_nx_like_release_is_hidden_and_its_tarball_refused_with_the_reason() {
    let p = proxy("").await;
    let doc = json(get(&p.state, "/npm/nx-like").await).await;
    let versions = doc["versions"].as_object().unwrap();
    assert!(versions.get("21.5.0").is_none(), "served: {versions:?}");
    assert!(versions.get("20.9.0").is_none(), "served: {versions:?}");
    assert!(versions.get("21.4.1").is_some(), "the clean release stays");
    assert_eq!(doc["dist-tags"]["latest"], "21.4.1", "latest repointed");

    let resp = get(&p.state, "/npm/nx-like/-/nx-like-21.5.0.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("nx-like@21.5.0 is quarantined"), "{err}");
    assert!(err.contains("install-script-added"), "{err}");
    assert!(err.contains("provenance-lost"), "{err}");
    assert!(err.contains("21.4.1"), "names the baseline: {err}");
    assert_eq!(p.fixture.hits("/nx-like/-/nx-like-21.5.0.tgz"), 0);

    // Its legitimate counterparts are served whole.
    for (name, count) in [
        ("native-like", 4),
        ("never-attested", 3),
        ("cadence-like", 8),
    ] {
        let doc = json(get(&p.state, &format!("/npm/{name}")).await).await;
        assert_eq!(doc["versions"].as_object().unwrap().len(), count, "{name}");
    }
}

#[tokio::test]
async fn a_maintainer_swap_is_held_a_release_burst_only_warned() {
    let p = proxy("").await;
    let doc = json(get(&p.state, "/npm/swap-like").await).await;
    assert!(doc["versions"].get("3.1.3").is_none(), "{doc}");
    assert_eq!(doc["dist-tags"]["latest"], "3.1.2");
    let resp = get(&p.state, "/npm/swap-like/-/swap-like-3.1.3.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("maintainers-replaced"), "{err}");
    assert!(err.contains("`mallory`"), "{err}");

    let doc = json(get(&p.state, "/npm/burst-like").await).await;
    assert_eq!(doc["versions"].as_object().unwrap().len(), 7, "warn serves");
}

#[tokio::test]
async fn verdicts_follow_the_config() {
    let p = proxy(
        "[policy.signals]\nrelease-burst = \"quarantine\"\nmaintainers-replaced = \"warn\"\n",
    )
    .await;
    let doc = json(get(&p.state, "/npm/burst-like").await).await;
    let versions: Vec<&String> = doc["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["1.120.0"], "only the release before the burst");
    let doc = json(get(&p.state, "/npm/swap-like").await).await;
    assert!(doc["versions"].get("3.1.3").is_some(), "warned, served");
}

#[tokio::test]
async fn an_internal_name_is_refused_before_any_fetch_and_says_where_it_comes_from() {
    let p = proxy(
        "[policy.internal-names]\nnpm = [\"@mycorp/*\"]\n\
         source = \"https://npm.mycorp.internal\"\n",
    )
    .await;
    for path in ["/npm/@mycorp%2fi18n", "/npm/@mycorp/i18n/-/i18n-99.0.3.tgz"] {
        let resp = get(&p.state, path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let err = json(resp).await["error"].as_str().unwrap().to_owned();
        assert!(err.contains("depfw: @mycorp/i18n"), "{err}");
        assert!(err.contains("is denied by policy: internal-name"), "{err}");
        assert!(err.contains("`@mycorp:registry=`"), "{err}");
        assert!(
            err.contains("must come from https://npm.mycorp.internal"),
            "{err}"
        );
    }
    let fetched: Vec<String> = p.fixture.hits.lock().unwrap().keys().cloned().collect();
    assert!(
        fetched.iter().all(|path| !path.contains("mycorp")),
        "fetched from the public upstream: {fetched:?}"
    );

    // Without the pattern the same packument is an ordinary package.
    let open = proxy("").await;
    let doc = json(get(&open.state, "/npm/@mycorp%2fi18n").await).await;
    assert!(doc["versions"].get("99.0.3").is_some(), "{doc}");
}

/// The axios → `plain-crypto-js` pattern, on the dependency itself: its own first release
/// is hours old, so the reputation check's `new-package` hides it.
#[tokio::test]
async fn a_dependency_published_hours_ago_is_held_as_a_new_package() {
    use depfw::policy::reputation::ReputationCheck;
    let (upstream, fixture) = registry::start_fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let config = registry::config(&upstream, PUBLIC, dir.path(), "");
    let store = Store::open(dir.path()).unwrap();
    let defaults = Config::default();
    let policy = Policy::new(
        vec![
            Arc::new(ReputationCheck::new(defaults.policy.reputation.clone())),
            Arc::new(SignalsCheck::new(defaults.policy.signals.clone())),
        ],
        Arc::default(),
        "reputation+signals".into(),
    );
    let state = AppState::new(&config, &store, PolicyState::Ready(policy)).unwrap();
    set_times(
        &fixture,
        "plain-crypto-like",
        &[("4.2.1", 2 * 60), ("created", 2 * 60)],
    );
    let doc = json(get(&state, "/npm/plain-crypto-like").await).await;
    assert!(doc["versions"].as_object().unwrap().is_empty(), "{doc}");
    let resp = get(
        &state,
        "/npm/plain-crypto-like/-/plain-crypto-like-4.2.1.tgz",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("new-package"), "{err}");
    assert!(err.contains("release-cooldown"), "{err}");
}

/// Sets `package`'s publish times to so many minutes ago.
fn set_times(fixture: &FixtureState, package: &str, minutes_ago: &[(&str, i64)]) {
    let now = chrono::Utc::now();
    let mut times = fixture.times.lock().unwrap();
    for (key, minutes) in minutes_ago {
        times.insert(
            (package.into(), (*key).into()),
            now - chrono::Duration::minutes(*minutes),
        );
    }
}

const DAY: i64 = 24 * 60;

/// axios 1.14.1's shape (`integration/fixtures/npm/axios-like.json`): 1.14.0 added the
/// long-established `ms`, 1.14.1 (an hour ago) adds `plain-crypto-like`, first published
/// three hours ago.
fn axios_like_times(fixture: &FixtureState) {
    set_times(
        fixture,
        "axios-like",
        &[("1.13.0", 60 * DAY), ("1.14.0", 10 * DAY), ("1.14.1", 60)],
    );
    set_times(
        fixture,
        "plain-crypto-like",
        &[("4.2.1", 180), ("created", 180)],
    );
}

#[tokio::test]
async fn a_patch_release_adding_a_dependency_first_published_hours_ago_is_held() {
    let p = proxy("").await;
    axios_like_times(&p.fixture);
    let doc = json(get(&p.state, "/npm/axios-like").await).await;
    assert!(doc["versions"].get("1.14.1").is_none(), "{doc}");
    assert!(
        doc["versions"].get("1.14.0").is_some(),
        "adding an established dependency is not held"
    );
    assert_eq!(doc["dist-tags"]["latest"], "1.14.0");
    let resp = get(&p.state, "/npm/axios-like/-/axios-like-1.14.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("young-dependency-added"), "{err}");
    assert!(err.contains("`plain-crypto-like`"), "{err}");
    assert!(err.contains("2 hours before this one"), "{err}");
    assert_eq!(p.fixture.hits("/axios-like/-/axios-like-1.14.1.tgz"), 0);
    // The dependency was looked up once, and the memo answers the next document.
    assert_eq!(p.fixture.hits("/plain-crypto-like"), 1);

    // A new major version that adds it is only warned (`young-dependency-added-major`).
    set_times(
        &p.fixture,
        "major-like",
        &[("1.0.0", 60 * DAY), ("2.0.0", 60)],
    );
    let doc = json(get(&p.state, "/npm/major-like").await).await;
    assert!(doc["versions"].get("2.0.0").is_some(), "{doc}");
    assert_eq!(p.fixture.hits("/plain-crypto-like"), 1, "memo");

    // Releases older than `dependency-recent-days` are not looked at.
    let old = proxy("[policy.signals]\ndependency-recent-days = 0\n").await;
    axios_like_times(&old.fixture);
    let doc = json(get(&old.state, "/npm/axios-like").await).await;
    assert!(doc["versions"].get("1.14.1").is_some(), "{doc}");
    assert_eq!(old.fixture.hits("/plain-crypto-like"), 0);
}

/// A dependency whose metadata cannot be had holds the release (fail closed) with a
/// finding that says so; once upstream answers, the next request looks it up again.
#[tokio::test]
async fn an_added_dependency_that_cannot_be_looked_up_holds_the_release_until_it_can() {
    use crate::support::registry::Fault;
    let p = proxy("").await;
    axios_like_times(&p.fixture);
    p.fixture
        .faults
        .lock()
        .unwrap()
        .insert("/plain-crypto-like".into(), Fault::Status500);
    let resp = get(&p.state, "/npm/axios-like/-/axios-like-1.14.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("dependency-unchecked"), "{err}");
    assert!(err.contains("could not be checked"), "{err}");
    assert!(
        !err.contains("127.0.0.1"),
        "no upstream detail to the client: {err}"
    );

    p.fixture.faults.lock().unwrap().clear();
    let resp = get(&p.state, "/npm/axios-like/-/axios-like-1.14.1.tgz").await;
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("young-dependency-added"), "{err}");
    assert!(!err.contains("dependency-unchecked"), "{err}");

    // Over the per-document budget: not looked up at all, and held the same way.
    let broke = proxy("[policy.signals]\ndependency-lookups = 0\n").await;
    axios_like_times(&broke.fixture);
    let resp = get(&broke.state, "/npm/axios-like/-/axios-like-1.14.1.tgz").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("dependency-unchecked"), "{err}");
    assert!(err.contains("dependency-lookups"), "{err}");
    assert_eq!(broke.fixture.hits("/plain-crypto-like"), 0);

    // Configurable: an unanswerable dependency may only warn.
    let lenient = proxy("[policy.signals]\ndependency-unchecked = \"warn\"\n").await;
    axios_like_times(&lenient.fixture);
    lenient
        .fixture
        .faults
        .lock()
        .unwrap()
        .insert("/plain-crypto-like".into(), Fault::Status500);
    let doc = json(get(&lenient.state, "/npm/axios-like").await).await;
    assert!(doc["versions"].get("1.14.1").is_some(), "{doc}");
}

/// Shai-Hulud's shape: one publisher's packages each get a new release within minutes.
/// The proxy remembers the releases of the documents it fetched, so the fifth package
/// fetched shows the burst; the first four (fewer packages seen) do not.
#[tokio::test]
async fn a_burst_across_one_publishers_packages_is_held_when_configured() {
    let p = proxy("[policy.signals]\nrelease-burst = \"quarantine\"\n").await;
    for i in 1..=5 {
        set_times(
            &p.fixture,
            &format!("worm-like-{i}"),
            &[("1.0.0", 200 * DAY), ("1.0.1", 12 - i)],
        );
    }
    for i in 1..=4 {
        let doc = json(get(&p.state, &format!("/npm/worm-like-{i}")).await).await;
        assert!(
            doc["versions"].get("1.0.1").is_some(),
            "worm-like-{i}: {doc}"
        );
    }
    let doc = json(get(&p.state, "/npm/worm-like-5").await).await;
    assert!(doc["versions"].get("1.0.1").is_none(), "{doc}");
    assert!(doc["versions"].get("1.0.0").is_some(), "{doc}");
    let resp = get(&p.state, "/npm/worm-like-5/-/worm-like-5-1.0.1.tgz").await;
    let err = json(resp).await["error"].as_str().unwrap().to_owned();
    assert!(err.contains("release-burst"), "{err}");
    assert!(
        err.contains("`compromised-dev` published 4 other packages"),
        "{err}"
    );

    // Off with `burst-packages = 0`.
    let off = proxy("[policy.signals]\nrelease-burst = \"quarantine\"\nburst-packages = 0\n").await;
    for i in 1..=5 {
        set_times(
            &off.fixture,
            &format!("worm-like-{i}"),
            &[("1.0.0", 200 * DAY), ("1.0.1", 12 - i)],
        );
        let doc = json(get(&off.state, &format!("/npm/worm-like-{i}")).await).await;
        assert!(
            doc["versions"].get("1.0.1").is_some(),
            "worm-like-{i}: {doc}"
        );
    }
}
