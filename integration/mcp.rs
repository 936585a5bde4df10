//! `depfw mcp` (issue #12) driven by the official MCP Python SDK, as an agent tool starts
//! it: `integration/mcp_client.py` launches `depfw mcp --url <depfw>` as a stdio
//! subprocess with the agent's token in `DEPFW_TOKEN`, lists the tools and calls each one.
//! Then, with `depfw serve`'s store released, `depfw log show --agent` lists the agent's
//! checks and its request for approval, and `depfw quarantine list` shows the request with
//! the agent's justification, once however often it asked.

use std::process::Command;

use serde_json::Value;

use crate::require::{note, MCP_SDK};
use crate::support::registry::{self, TestCheck};
use crate::support::{depfw_with_data, repo, stdout};
use depfw::agents::PolicyPreset;

const AGENT: &str = "mcp-agent";
const JUSTIFICATION: &str = "the build needs is-odd 3.0.1's fix for negative zero";

fn mcp_tools_answer_the_agent_in_its_own_provenance() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let check = TestCheck {
        deny: vec!["is-odd@3.0.1".into()],
        deny_names: vec!["is-nunber".into()],
        ..TestCheck::default()
    };
    let depfw = rt.block_on(async {
        let (upstream, _fixture) = registry::start_fixture().await;
        registry::start_depfw(&upstream, registry::policy(check), "").await
    });
    let (_, token) = depfw
        .state
        .agents()
        .add(AGENT, PolicyPreset::Default)
        .unwrap();
    let token = token.expose_secret().to_owned();
    let cfg = serde_json::json!({
        "depfw": env!("CARGO_BIN_EXE_depfw"),
        "url": depfw.base,
        "token": token,
        "packages": ["npm is-odd@^3", "npm is-odd@3.0.1", "npm is-nunber", "npm not a name"],
        "refused_url": format!("{}/npm/is-odd/-/is-odd-3.0.1.tgz", depfw.base),
        "approval": "npm is-odd@3.0.1",
        "justification": JUSTIFICATION,
        "lockfile": repo().join("tests/fixtures/lockfiles/npm/v3/package-lock.json"),
    });
    let out = Command::new("mcp-python")
        .arg(repo().join("integration/mcp_client.py"))
        .arg(cfg.to_string())
        .env_remove("DEPFW_CONFIG")
        .env_remove("DEPFW_DATA_DIR")
        // `depfw mcp` must not find a store in the tester's own state directory.
        .env("XDG_STATE_HOME", crate::support::no_state_home())
        .env_remove("STATE_DIRECTORY")
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    note(format!("mcp_client.py: {}\n{text}\n{err}", out.status));
    assert!(out.status.success());
    assert!(!err.contains(&token), "the token is in the output");
    let seen: Value = serde_json::from_str(text.trim()).unwrap();

    assert_eq!(seen["server"], "depfw");
    assert_eq!(
        seen["tools"],
        serde_json::json!([
            "check_packages",
            "audit_lockfile",
            "explain_refusal",
            "request_approval"
        ])
    );

    // check_packages: the range gets its newest allowed version, the pin its refusal and
    // that alternative, the typosquat its verdict, the unreadable item a reason.
    let check = &seen["check"];
    assert_eq!(check["is_error"], false);
    assert_eq!(check["value"]["agent"], AGENT);
    let results = check["value"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["verdict"], "allow", "{results:#?}");
    assert_eq!(results[0]["newest_allowed"], "3.0.0");
    assert_eq!(results[0]["version"], "3.0.0");
    assert_eq!(results[1]["verdict"], "deny");
    assert_eq!(results[1]["findings"][0]["code"], "deny-listed");
    assert_eq!(results[1]["newest_allowed"], "3.0.0");
    assert!(
        results[1]["advice"]
            .as_str()
            .unwrap()
            .contains("use version 3.0.0 instead"),
        "{results:#?}"
    );
    assert_eq!(results[2]["verdict"], "deny");
    assert_eq!(results[2]["findings"][0]["code"], "possible-typosquat");
    assert!(results[3].get("verdict").is_none(), "{results:#?}");

    // explain_refusal: the agent's own refused download, and what it can do.
    let explain = &seen["explain"]["value"];
    assert_eq!(seen["explain"]["is_error"], false, "{explain:#}");
    assert_eq!(explain["refused"], true);
    assert_eq!(explain["package"], "is-odd@3.0.1");
    assert_eq!(explain["newest_allowed"], "3.0.0");
    assert!(explain["why"]
        .as_str()
        .unwrap()
        .contains("is-odd@3.0.1 is denied by policy"));
    let todo = explain["what_you_can_do"].to_string();
    assert!(todo.contains("is-odd@3.0.0"), "{todo}");
    assert!(todo.contains("request_approval"), "{todo}");
    assert_eq!(seen["explain_unknown"]["is_error"], true);

    // request_approval: queued once, with the justification; asking again counts.
    let approval = &seen["approval"]["value"];
    assert_eq!(approval["status"], "pending", "{approval:#}");
    let id = approval["quarantine_id"].as_u64().unwrap();
    assert_eq!(seen["approval_again"]["value"]["quarantine_id"], id);
    assert_eq!(seen["approval_again"]["value"]["request_count"], 2);

    // audit_lockfile: the `depfw audit` JSON report, with the depfw it talks to as the
    // mirror: the fixture lockfile was resolved on registry.npmjs.org.
    let audit = &seen["audit"];
    assert_eq!(audit["is_error"], false, "{audit:#}");
    let audited = audit["value"]["results"].as_array().unwrap();
    assert!(
        audited
            .iter()
            .any(|r| r["findings"].to_string().contains("bypasses-mirror")),
        "{audit:#}"
    );

    // Stop depfw serve (its tasks hold the store), then read what it recorded.
    let registry::Depfw {
        state, store, dir, ..
    } = depfw;
    drop((state, store));
    drop(rt);
    let log = depfw_with_data(dir.path(), &["log", "show", "--agent", AGENT]);
    let log_text = stdout(&log);
    note(format!("depfw log show --agent {AGENT}:\n{log_text}"));
    assert!(log.status.success());
    assert!(log_text.contains("checked"), "{log_text}");
    assert!(log_text.contains("approval-requested"), "{log_text}");
    assert!(log_text.contains("is-odd@3.0.1"), "{log_text}");
    let queue = depfw_with_data(dir.path(), &["quarantine", "list"]);
    let queue_text = stdout(&queue);
    note(format!("depfw quarantine list:\n{queue_text}"));
    assert!(queue_text.contains(&format!("{AGENT} asks: \"{JUSTIFICATION}\"")));
    assert!(queue_text.contains("requested 2x"), "{queue_text}");
}

crate::require::trials! {
    [MCP_SDK] => mcp_tools_answer_the_agent_in_its_own_provenance;
}
