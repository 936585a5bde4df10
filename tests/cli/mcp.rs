//! `depfw mcp` on its own (no depfw to ask): the JSON-RPC framing of the MCP stdio
//! transport, the token's sources, and `depfw init agent-rules`. The tools against a
//! running depfw, driven by the official MCP Python SDK, are in integration/mcp.rs.

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::{code, depfw, depfw_command, stderr, stdout};

/// A token of the shape depfw issues (`dfw_` and 43 URL-safe base64 characters).
const TOKEN: &str = "dfw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// `depfw mcp --url <nowhere>` with `lines` on stdin and the token in the environment.
fn mcp(lines: &[Value], token: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = depfw_command();
    cmd.args(["mcp", "--url", "http://127.0.0.1:9"])
        .current_dir(dir.path())
        .env_remove("DEPFW_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        cmd.env("DEPFW_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn replies(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn it_speaks_json_rpc_line_by_line() {
    let out = mcp(
        &[
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "0"}}}),
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "server/discover"}),
            serde_json::json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": {"name": "check_packages", "arguments": {"packages": ["npm a"]}}}),
            serde_json::json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "explain_refusal", "arguments": {}}}),
        ],
        Some(TOKEN),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = replies(&out);
    // One reply per request, none for the notification.
    let ids: Vec<i64> = r.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(r[0]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(r[0]["result"]["serverInfo"]["name"], "depfw");
    assert_eq!(r[1]["result"]["tools"].as_array().unwrap().len(), 4);
    assert_eq!(r[2]["error"]["code"], -32601);
    // depfw is unreachable: a tool error the model reads, not a protocol error.
    assert_eq!(r[3]["result"]["isError"], true);
    let text = r[3]["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("cannot reach depfw at http://127.0.0.1:9"),
        "{text}"
    );
    assert_eq!(r[4]["error"]["code"], -32602);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(TOKEN), "the token was printed");
}

#[test]
fn it_needs_a_token_from_the_environment_or_a_private_file() {
    let out = mcp(&[], None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("DEPFW_TOKEN"), "{}", stderr(&out));
    let out = mcp(&[], Some("not-a-token"));
    assert_eq!(code(&out), 2);
    assert!(!stderr(&out).contains("not-a-token"), "{}", stderr(&out));
}

#[test]
fn init_agent_rules_prints_the_rules_and_the_mcp_configuration() {
    let out = depfw(&["init", "agent-rules", "--agent", "ci-bot"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "never bypass",
        "request_approval",
        "\"command\": \"depfw\"",
        "\"DEPFW_TOKEN\": \"${DEPFW_TOKEN}\"",
        "claude mcp add",
    ] {
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{needle}: {text}"
        );
    }
}
