//! Private upstreams (`[[upstream.npm.scopes]]`, `[[upstream.pypi.private]]`,
//! `[[upstream.cargo.private]]`): a private
//! name is asked of its own registry only, with that registry's credentials only, and a
//! refused or missing credential is a 502 that says which table to fix, never the secret.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;
use depfw::server::AppState;
use depfw::store::Store;

use crate::support::registry::{
    config, get_text, policy, start_fixture, Fault, FixtureState, TestCheck,
};

const TOKEN: &str = "s3cret-npm-token";
const SCOPED: &str = "/npm/@isaacs%2fstring-locale-compare";
const TARBALL: &str = "/npm/@isaacs/string-locale-compare/-/string-locale-compare-1.1.0.tgz";
/// Where the fixture registry serves the tarball.
const UPSTREAM_TARBALL: &str = "/@isaacs/string-locale-compare/-/string-locale-compare-1.1.0.tgz";

/// A public and a private fixture registry (the private one requiring `Bearer {TOKEN}`), and
/// depfw over both with `table` (an `[[upstream.*]]` table; `{private}`, `{public}` and
/// `{token}` are replaced by the registries' bases and a token file holding `token`).
struct Setup {
    state: AppState,
    public: Arc<FixtureState>,
    private: Arc<FixtureState>,
    private_base: String,
    public_base: String,
    _dir: tempfile::TempDir,
}

async fn setup(table: &str, token: &str) -> Setup {
    let (public_base, public) = start_fixture().await;
    let (private_base, private) = start_fixture().await;
    *private.required_auth.lock().unwrap() = Some(format!("Bearer {TOKEN}"));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let table = table
        .replace("{private}", &private_base)
        .replace("{public}", &public_base)
        .replace("{token}", &token_file.display().to_string());
    let config = config(&public_base, "http://depfw.test", dir.path(), &table);
    let store = Store::open(dir.path()).unwrap();
    let state = AppState::new(&config, &store, policy(TestCheck::default())).unwrap();
    Setup {
        state,
        public,
        private,
        private_base,
        public_base,
        _dir: dir,
    }
}

const NPM_SCOPE: &str = "\n[[upstream.npm.scopes]]\nscope = \"@isaacs\"\n\
     registry = \"{private}/\"\ntoken-file = \"{token}\"\n";

/// Every `Authorization` header `fixture` received.
fn sent_auth(fixture: &FixtureState) -> Vec<String> {
    let seen = fixture.authorizations.lock().unwrap();
    seen.iter().filter_map(|(_, a)| a.clone()).collect()
}

#[tokio::test]
async fn a_scope_is_fetched_from_its_registry_only_with_its_token() {
    let s = setup(NPM_SCOPE, TOKEN).await;
    let (status, body) = get_text(&s.state, SCOPED).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Tarballs still point at depfw, and nothing of the secret or the private host shows.
    assert!(
        body.contains(&format!("http://depfw.test{TARBALL}")),
        "{body}"
    );
    assert!(
        !body.contains(TOKEN) && !body.contains(&s.private_base),
        "{body}"
    );

    let (status, _) = get_text(&s.state, TARBALL).await;
    assert_eq!(status, StatusCode::OK);
    assert!(s.private.hits("/@isaacs%2fstring-locale-compare") >= 1);
    assert_eq!(s.private.hits(UPSTREAM_TARBALL), 1);
    // The public registry was never asked for the scope, and never saw the token.
    assert!(s.public.hits.lock().unwrap().is_empty());
    let expected = format!("Bearer {TOKEN}");
    let private_auth = sent_auth(&s.private);
    assert!(
        private_auth.len() >= 2 && private_auth.iter().all(|a| *a == expected),
        "{private_auth:?}"
    );

    // Unscoped packages still come from the public registry, without the token.
    let (status, _) = get_text(&s.state, "/npm/is-odd").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.public.hits("/is-odd"), 1);
    assert!(sent_auth(&s.public).is_empty());
}

#[tokio::test]
async fn a_404_from_the_scope_registry_is_a_404_not_a_public_fallback() {
    let s = setup(NPM_SCOPE, TOKEN).await;
    let upstream = "/@isaacs%2fstring-locale-compare";
    s.private
        .faults
        .lock()
        .unwrap()
        .insert(upstream.to_owned(), Fault::NotFound);
    let (status, body) = get_text(&s.state, SCOPED).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(s.private.hits(upstream), 1);
    // The public fixture has the package: asking it would have answered 200.
    assert!(s.public.hits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_token_is_not_sent_on_a_redirect_to_another_host() {
    let s = setup(NPM_SCOPE, TOKEN).await;
    // The private registry sends its tarball to another host (a CDN): here the public
    // fixture, a configured upstream, so that the redirect is followed.
    let public_port = url::Url::parse(&s.public_base).unwrap().port().unwrap();
    s.private.faults.lock().unwrap().insert(
        UPSTREAM_TARBALL.to_owned(),
        Fault::Redirect {
            port: public_port,
            to: UPSTREAM_TARBALL,
        },
    );
    let (status, body) = get_text(&s.state, TARBALL).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.public.hits(UPSTREAM_TARBALL), 1);
    let public_auth = sent_auth(&s.public);
    assert!(public_auth.is_empty(), "{public_auth:?}");
    assert!(sent_auth(&s.private)
        .iter()
        .all(|a| *a == format!("Bearer {TOKEN}")));
}

#[tokio::test]
async fn a_refused_or_missing_credential_is_a_502_naming_the_table_without_the_secret() {
    let wrong = setup(NPM_SCOPE, "not-the-token").await;
    let (status, body) = get_text(&wrong.state, SCOPED).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("refused depfw's credentials"), "{body}");
    assert!(body.contains("upstream.npm.scopes[0]"), "{body}");
    assert!(
        !body.contains("not-the-token") && !body.contains(TOKEN),
        "{body}"
    );
    assert!(wrong.public.hits.lock().unwrap().is_empty());

    let anonymous = "\n[[upstream.npm.scopes]]\nscope = \"@isaacs\"\nregistry = \"{private}/\"\n";
    let missing = setup(anonymous, TOKEN).await;
    let (status, body) = get_text(&missing.state, SCOPED).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("none are configured"), "{body}");
    assert!(sent_auth(&missing.private).is_empty());
}

const PYPI_PRIVATE: &str = "\n[[upstream.pypi.private]]\nindex = \"{private}/pypi/simple/\"\n\
     files = \"{private}/pypi-files/\"\nnames = [\"six\"]\ntoken-file = \"{token}\"\n";

#[tokio::test]
async fn a_private_project_and_its_files_come_from_its_index_only() {
    let s = setup(PYPI_PRIVATE, TOKEN).await;
    let (status, body) = get_text(&s.state, "/pypi/simple/six/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !body.contains(TOKEN) && !body.contains(&s.private_base),
        "{body}"
    );
    // The file's URL points at depfw's `/pypi/files/`, below the private files base.
    let wheel = "six-1.17.0-py2.py3-none-any.whl";
    let at = body.find(&format!("/{wheel}#")).unwrap();
    let start = body[..at].rfind("http://depfw.test/pypi/files/").unwrap();
    let file = &body[start + "http://depfw.test".len()..at + wheel.len() + 1];
    let (status, _) = get_text(&s.state, file).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    let upstream = file.replacen("/pypi/files/", "/pypi-files/", 1);
    assert_eq!(s.private.hits(&upstream), 1, "{upstream}");
    // Neither the public index nor its JSON API heard of the private project.
    assert!(s.public.hits.lock().unwrap().is_empty());
    assert!(sent_auth(&s.private)
        .iter()
        .all(|a| *a == format!("Bearer {TOKEN}")));

    // Other projects: the public index, no token.
    let (status, _) = get_text(&s.state, "/pypi/simple/idna/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.public.hits("/pypi/simple/idna/"), 1);
    assert!(sent_auth(&s.public).is_empty());
}

const CARGO_PRIVATE: &str =
    "\n[[upstream.cargo.private]]\nindex = \"sparse+{private}/cargo-index/\"\n\
     names = [\"ITOA\"]\ntoken-file = \"{token}\"\n";
const CKSUM_11: &str = "49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b";
const CRATE_INDEX: &str = "/cargo-index/it/oa/itoa";
const CRATE_FILE: &str = "/crates/itoa/itoa-1.0.11.crate";

/// [`setup`] with the private fixture requiring the token as cargo sends it: bare.
async fn cargo_setup(table: &str, token: &str) -> Setup {
    let s = setup(table, token).await;
    *s.private.required_auth.lock().unwrap() = Some(TOKEN.to_owned());
    s
}

fn crate_download() -> String {
    format!("/cargo/dl/itoa/1.0.11/{CKSUM_11}")
}

#[tokio::test]
async fn a_private_crate_comes_from_its_registry_only_with_the_bare_token() {
    let s = cargo_setup(CARGO_PRIVATE, TOKEN).await;
    let (status, body) = get_text(&s.state, "/cargo/index/it/oa/itoa").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"vers\": \"1.0.11\""), "{body}");
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(s.private.hits(CRATE_INDEX) >= 1);
    assert!(s.private.hits("/cargo-index/config.json") >= 1);
    assert_eq!(s.private.hits(CRATE_FILE), 1);
    // crates.io (the public fixture) was never asked for the crate, nor saw the token.
    assert!(s.public.hits.lock().unwrap().is_empty());
    let private_auth = sent_auth(&s.private);
    assert!(
        private_auth.len() >= 3 && private_auth.iter().all(|a| a == TOKEN),
        "{private_auth:?}"
    );

    // Other crates: the main index, without the token.
    let (status, _) = get_text(&s.state, "/cargo/index/se/rd/serde").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(s.public.hits("/cargo-index/se/rd/serde"), 1);
    assert_eq!(s.private.hits("/cargo-index/se/rd/serde"), 0);
    assert!(sent_auth(&s.public).is_empty());
}

#[tokio::test]
async fn a_404_from_the_private_index_is_a_404_not_a_crates_io_fallback() {
    let s = cargo_setup(CARGO_PRIVATE, TOKEN).await;
    s.private
        .faults
        .lock()
        .unwrap()
        .insert(CRATE_INDEX.to_owned(), Fault::NotFound);
    let (status, body) = get_text(&s.state, "/cargo/index/it/oa/itoa").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The public fixture has itoa: asking it would have answered 200.
    assert!(s.public.hits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_private_crate_downloads_from_its_registry_hosts_only_and_the_token_stays_there() {
    // The private registry's config.json sends downloads to a host it does not own.
    let s = cargo_setup(CARGO_PRIVATE, TOKEN).await;
    s.private.foreign_tarballs.store(true, Ordering::Relaxed);
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("its table's `downloads`"), "{body}");
    assert_eq!(s.private.hits(CRATE_FILE), 0);

    // A redirect to another (configured) host is followed without the token.
    let s = cargo_setup(CARGO_PRIVATE, TOKEN).await;
    let public_port = url::Url::parse(&s.public_base).unwrap().port().unwrap();
    s.private.faults.lock().unwrap().insert(
        CRATE_FILE.to_owned(),
        Fault::Redirect {
            port: public_port,
            to: CRATE_FILE,
        },
    );
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.public.hits(CRATE_FILE), 1);
    assert!(sent_auth(&s.public).is_empty());

    // A crate the table does not list cannot be sent to the private registry's host by the
    // main index's config.json.
    let other = CARGO_PRIVATE.replace("ITOA", "corp-*");
    let s = cargo_setup(&other, TOKEN).await;
    *s.public.base.lock().unwrap() = s.private_base.clone();
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("server.cargo-download-origins"), "{body}");
    assert!(s.private.hits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_private_registrys_downloads_host_is_allowed_for_its_crates_and_gets_its_token() {
    let table = format!("{CARGO_PRIVATE}downloads = \"{{public}}/\"\n");
    let s = cargo_setup(&table, TOKEN).await;
    // The private index's config.json sends downloads to the (here: public) `downloads` host.
    *s.private.base.lock().unwrap() = s.public_base.clone();
    let (status, body) = get_text(&s.state, &crate_download()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.public.hits(CRATE_FILE), 1);
    assert_eq!(s.public.hits(CRATE_INDEX), 0);
    assert_eq!(sent_auth(&s.public), [TOKEN]);
}

#[tokio::test]
async fn a_refused_cargo_token_is_a_502_naming_the_table_without_the_secret() {
    let s = cargo_setup(CARGO_PRIVATE, "not-the-token").await;
    let (status, body) = get_text(&s.state, "/cargo/index/it/oa/itoa").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("refused depfw's credentials"), "{body}");
    assert!(body.contains("upstream.cargo.private[0]"), "{body}");
    assert!(!body.contains("not-the-token"), "{body}");
    assert!(s.public.hits.lock().unwrap().is_empty());
}
