//! Issue #12 §3 with the real npm client, as an agent (the token in `.npmrc`'s
//! `_authToken`, as `depfw init npm --agent` prints it): a refusal that says "quarantined,
//! awaiting approval" leaves an item in the queue; approving it through the admin API makes
//! the next install succeed, without a restart. Once for a name held at name level, once
//! for a version hidden from metadata.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client;
use crate::require::NPM;
use crate::support::registry::{self, Depfw, TestCheck};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use depfw::agents::PolicyPreset;
use depfw::store::quarantine::{QuarantineItem, QuarantineStatus};
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "admin-token-0123456789";

struct Env {
    depfw: Depfw,
    admin: depfw::admin::AdminState,
    tmp: tempfile::TempDir,
    token: String,
    // Last: dropped after the servers' handles, stopping them.
    rt: tokio::runtime::Runtime,
}

/// depfw over the fixture registry with `check`, its admin endpoint wired as `depfw serve`
/// wires it, and an agent `builder`.
fn start(check: TestCheck) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("admin-token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    // depfw refuses a token file others can read.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!("[admin]\ntoken-file = \"{}\"\n", token_file.display());
    let (depfw, config) = rt.block_on(async {
        let (upstream, _fixture) = registry::start_fixture().await;
        let depfw = registry::start_depfw(&upstream, registry::policy(check.clone()), &extra).await;
        let config = registry::config(&upstream, &depfw.base, depfw.dir.path(), &extra);
        (depfw, config)
    });
    let admin = registry::admin_rebuilding(&depfw.state, &config, &depfw.store, check);
    let (_, token) = depfw
        .state
        .agents()
        .add("builder", PolicyPreset::Default)
        .unwrap();
    Env {
        depfw,
        admin,
        tmp,
        token: token.expose_secret().to_owned(),
        rt,
    }
}

impl Env {
    /// A project configured as `depfw init npm --agent builder` prints it.
    fn project(&self, name: &str) -> PathBuf {
        let project = self.tmp.path().join(name);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("package.json"),
            r#"{"name": "depfw-it", "version": "1.0.0", "private": true}"#,
        )
        .unwrap();
        let registry = format!("{}/auth/npm/", self.depfw.base);
        let nerf = registry.split_once("//").unwrap().1.to_owned();
        std::fs::write(
            project.join(".npmrc"),
            format!("registry={registry}\n//{nerf}:_authToken=${{DEPFW_TOKEN}}\nfetch-retries=0\n"),
        )
        .unwrap();
        project
    }

    /// `npm install <spec>` in `project` with a fresh cache: success and the output.
    fn install(&self, project: &Path, spec: &str, attempt: &str) -> (bool, String) {
        let cache = self.tmp.path().join(format!("cache-{attempt}"));
        let mut cmd = client::command("npm", &["npm_config_"]);
        cmd.args(["install", spec, "--no-audit", "--no-fund"])
            .args(["--no-update-notifier", "--userconfig=/dev/null"])
            .arg(format!("--cache={}", cache.display()))
            .arg(format!(
                "--globalconfig={}",
                self.tmp.path().join("nothing").display()
            ))
            .env("DEPFW_TOKEN", &self.token)
            .current_dir(project);
        client::run(&mut cmd)
    }

    fn pending(&self) -> Vec<QuarantineItem> {
        assert!(self.depfw.state.flush_approvals(Duration::from_secs(10)));
        self.depfw
            .state
            .quarantine()
            .list(Some(QuarantineStatus::Pending))
            .unwrap()
    }

    /// Approves `item` through the admin API (`POST /admin/api/quarantine/{id}/approve`).
    fn approve(&self, item: &QuarantineItem) {
        let req = Request::post(format!("/admin/api/quarantine/{}/approve", item.id))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"reason":"reviewed"}"#))
            .unwrap();
        let router = depfw::admin::standalone(self.admin.clone());
        let status = self
            .rt
            .block_on(async { router.oneshot(req).await.unwrap().status() });
        assert_eq!(status, StatusCode::OK);
    }

    fn installed(&self, project: &Path, name: &str) -> Option<String> {
        let manifest = project.join("node_modules").join(name).join("package.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).ok()?).ok()?;
        doc["version"].as_str().map(str::to_owned)
    }
}

fn name_hold_refused_requested_approved_then_installs() {
    let env = start(TestCheck {
        quarantine_names: vec!["is-odd".into()],
        ..TestCheck::default()
    });
    let project = env.project("p");
    let (ok, out) = env.install(&project, "is-odd@3", "1");
    assert!(!ok, "{out}");
    assert!(out.contains("quarantined, awaiting approval"), "{out}");
    let held = env.pending();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("is-odd", "*")
    );
    assert_eq!(held[0].requesters[0].who, "builder");

    env.approve(&held[0]);
    let (ok, out) = env.install(&project, "is-odd@3", "2");
    assert!(ok, "{out}");
    assert_eq!(env.installed(&project, "is-odd").as_deref(), Some("3.0.1"));
}

fn hidden_version_refused_requested_approved_then_installs() {
    let env = start(TestCheck {
        quarantine: vec!["is-number@7.0.0".into()],
        ..TestCheck::default()
    });
    let project = env.project("p");
    // 7.0.0 is hidden: npm finds no version matching `7`.
    let (ok, out) = env.install(&project, "is-number@7", "1");
    assert!(!ok, "{out}");
    assert!(out.contains("ETARGET"), "{out}");
    let held = env.pending();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].name.as_str(), held[0].version.as_str()),
        ("is-number", "7.0.0")
    );

    env.approve(&held[0]);
    let (ok, out) = env.install(&project, "is-number@7", "2");
    assert!(ok, "{out}");
    assert_eq!(
        env.installed(&project, "is-number").as_deref(),
        Some("7.0.0")
    );
}

crate::require::trials! {
    [NPM] =>
        name_hold_refused_requested_approved_then_installs,
        hidden_version_refused_requested_approved_then_installs;
}
