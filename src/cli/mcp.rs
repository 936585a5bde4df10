//! `depfw mcp --url <depfw> [--token-file FILE]`: a Model Context Protocol server on stdio,
//! which an agent tool (Claude Code, Cursor, Codex, …) starts as a subprocess, so that an
//! agent that meets a refusal asks depfw instead of working around it.
//!
//! It speaks JSON-RPC 2.0, one message per line on stdin and stdout (the MCP stdio
//! transport), with the `initialize` handshake of MCP revisions 2024-11-05 to 2025-11-25
//! (it answers a newer client's `server/discover` probe with "method not found", which
//! makes the client fall back to that handshake). Written by hand rather than with the
//! official Rust SDK (`rmcp` 3.11): that crate declares Rust 1.88 against depfw's 1.85, and
//! `.ci/deny.sh` audits every optional feature of the tree (its OAuth, JWT and HTTP
//! transports), for the three requests depfw needs: `initialize`, `tools/list`,
//! `tools/call`.
//!
//! The tools ask the running `depfw serve` at `--url` with the agent's token (from
//! `DEPFW_TOKEN` or `--token-file`) in the `Authorization` header, so every question is in
//! that agent's provenance and judged by its policy preset (`server::agent_api`):
//! `check_packages`, `explain_refusal`, `request_approval`. `audit_lockfile` runs
//! `depfw audit` in this process (the same library, this machine's config and data).
//! The token is never printed, logged or sent anywhere but `--url`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::{exit, Cli};
use crate::agents::Token;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// depfw's base URL, as the agent's package managers reach it (`server.public-url`),
    /// e.g. `http://127.0.0.1:7878`.
    #[arg(long, env = "DEPFW_URL", value_name = "URL")]
    pub url: url::Url,
    /// A file holding the agent's token (readable by its owner only); else the token is
    /// read from the environment variable `DEPFW_TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// MCP revisions whose `initialize` handshake this server speaks, newest first.
const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn read_token(token_file: Option<&Path>) -> anyhow::Result<Token> {
    let text = match token_file {
        Some(path) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path)
                    .with_context(|| format!("--token-file {}", path.display()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "--token-file {}: readable by group or others (mode {:o}); \
                         `chmod 600 {}` first",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    );
                }
            }
            std::fs::read_to_string(path)
                .with_context(|| format!("--token-file {}", path.display()))?
        }
        None => std::env::var(super::init::TOKEN_ENV).map_err(|_| {
            anyhow::anyhow!(
                "no agent token: set {} (what `depfw agents add NAME` printed) or pass \
                 --token-file",
                super::init::TOKEN_ENV
            )
        })?,
    };
    Token::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("the agent token is not one depfw issued: {e}"))
}

/// The server's state: where depfw is, as whom, and this machine's config for audits.
struct Mcp<'a> {
    base: String,
    token: Token,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    cli: &'a Cli,
    config: &'a Config,
}

pub(crate) fn run(args: &McpArgs, cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    if !matches!(args.url.scheme(), "http" | "https") || args.url.host().is_none() {
        anyhow::bail!("--url `{}`: expected depfw's http(s) base URL", args.url);
    }
    let token = read_token(args.token_file.as_deref())?;
    let http = reqwest::Client::builder()
        .user_agent(concat!("depfw-mcp/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mcp = Mcp {
        base: args.url.as_str().trim_end_matches('/').to_owned(),
        token,
        http,
        rt,
        cli,
        config,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(reply) = mcp.handle_line(&line) {
            let mut out = stdout.lock();
            serde_json::to_writer(&mut out, &reply)?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
    }
    Ok(ExitCode::from(exit::CLEAN))
}

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn tools() -> Value {
    json!([
        {
            "name": "check_packages",
            "title": "Check packages against depfw",
            "description": "Ask depfw, before installing, what its policy says about packages for this agent. Each item is `<ecosystem> <name>[@version|range]` (ecosystem npm, pypi or crates.io; PyPI also `name==1.0` or `name>=1,<2`). Returns per item the verdict (allow, warn, quarantine, deny), the findings (codes, advisory ids, messages), the newest allowed version that satisfies the range, and for a typosquat the name it imitates.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "packages": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 100,
                        "description": "e.g. [\"npm lodash@^4\", \"pypi requests>=2,<3\", \"crates.io serde@1\"]"
                    }
                },
                "required": ["packages"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "audit_lockfile",
            "title": "Audit a lockfile",
            "description": "Run `depfw audit` on a lockfile or a directory (searched for lockfiles) and return its JSON report: every pinned package with its verdict and findings, including entries whose source bypasses the depfw mirror.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "A lockfile (package-lock.json, uv.lock, Cargo.lock, …) or a directory"}
                },
                "required": ["path"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "explain_refusal",
            "title": "Explain a refusal",
            "description": "Given the request id of one of this agent's refused requests (the `x-depfw-request-id` response header, or the `request id` in the refusal text), say what was refused, why, and what the agent can do: an allowed version or the intended name, or asking a human with request_approval.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "request_id": {"type": "string"}
                },
                "required": ["request_id"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": "request_approval",
            "title": "Ask a human to approve a package",
            "description": "Put a refused package version (or, without a version, a refused name) in depfw's review queue with your justification. A human approves or rejects it; this tool approves nothing. Use it instead of fetching the package another way.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "package": {"type": "string", "description": "`<ecosystem> <name>[@version]`, e.g. `npm left-pad@1.3.0`"},
                    "justification": {"type": "string", "description": "Why this package is needed, for the reviewer"}
                },
                "required": ["package", "justification"]
            },
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
        }
    ])
}

const INSTRUCTIONS: &str =
    "depfw is the dependency firewall this agent installs packages through. \
Before adding a dependency, call check_packages. When an install is refused, call \
explain_refusal with the request id, use the allowed alternative it names, or call \
request_approval with a justification and wait for a human. Never go around depfw (another \
registry, a direct download URL, vendoring the code).";

impl Mcp<'_> {
    /// The reply to one line, `None` for a notification.
    fn handle_line(&self, line: &str) -> Option<Value> {
        let message: Value = match serde_json::from_str(line) {
            Ok(m) => m,
            Err(e) => return Some(error(Value::Null, PARSE_ERROR, format!("not JSON: {e}"))),
        };
        let Some(obj) = message.as_object() else {
            return Some(error(
                Value::Null,
                INVALID_REQUEST,
                "expected one JSON-RPC message (an object) per line",
            ));
        };
        let method = obj.get("method").and_then(Value::as_str);
        let id = obj.get("id").cloned();
        let (Some(method), Some(id)) = (method, id) else {
            // A notification (no id: `notifications/initialized`, cancellations), or a
            // response to a request this server never sends: nothing to answer.
            return None;
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        let result = match method {
            "initialize" => Ok(initialize(&params)),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({ "tools": tools() })),
            "tools/call" => self.call(&params),
            other => Err((METHOD_NOT_FOUND, format!("method not found: {other}"))),
        };
        Some(match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => error(id, code, message),
        })
    }

    fn call(&self, params: &Value) -> Result<Value, (i64, String)> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or((INVALID_PARAMS, "tools/call needs a tool `name`".to_owned()))?;
        let args = params.get("arguments").cloned().unwrap_or(json!({}));
        let string = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or((INVALID_PARAMS, format!("{name} needs the argument `{key}`")))
        };
        let outcome = match name {
            "check_packages" => {
                let packages: Vec<String> = args
                    .get("packages")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .ok_or((
                        INVALID_PARAMS,
                        "check_packages needs `packages`, a list of strings".to_owned(),
                    ))?;
                self.post("/agent/v1/check", &json!({ "packages": packages }))
            }
            "audit_lockfile" => self.audit(Path::new(&string("path")?)),
            "explain_refusal" => {
                let id = string("request_id")?;
                let id = percent_encoding::utf8_percent_encode(
                    id.trim(),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                self.get(&format!("/agent/v1/requests/{id}"))
            }
            "request_approval" => self.post(
                "/agent/v1/approvals",
                &json!({"package": string("package")?, "justification": string("justification")?}),
            ),
            other => return Err((INVALID_PARAMS, format!("unknown tool: {other}"))),
        };
        Ok(match outcome {
            Ok(value) => tool_result(value, false),
            Err(message) => tool_result(json!({ "error": message }), true),
        })
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request)
    }

    /// Sends with the token; a non-2xx answer is the tool's error, with depfw's message.
    fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let request = request.bearer_auth(self.token.expose_secret());
        self.rt.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| format!("cannot reach depfw at {}: {e}", self.base))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| format!("reading depfw's answer: {e}"))?;
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status.is_success() {
                Ok(body)
            } else {
                let message = body
                    .get("error")
                    .and_then(Value::as_str)
                    .map_or_else(|| body.to_string(), str::to_owned);
                Err(format!("depfw answered {status}: {message}"))
            }
        })
    }

    /// `depfw audit --format json` on `path`, in this process.
    fn audit(&self, path: &Path) -> Result<Value, String> {
        use crate::audit::run::{audit_parsed_online, discover, prepare, MirrorCheck};
        let (lockfiles, errors) = discover(&[path.to_path_buf()]);
        if lockfiles.is_empty() && errors.is_empty() {
            return Err(format!("no lockfiles found at {}", path.display()));
        }
        let data_dir = super::data_dir_in_use(self.cli, self.config)
            .then_some(self.config.server.data_dir.as_path());
        // The store belongs to `depfw serve` when it runs on this machine: the bundled
        // advisory snapshot then stands in for the synced feeds.
        let mut note = None;
        let prepared = match prepare(self.config, data_dir, &lockfiles) {
            Ok(p) => p,
            Err(e) if data_dir.is_some() => {
                note = Some(format!(
                    "the data directory could not be used ({e:#}); audited with the bundled \
                     advisory snapshot"
                ));
                prepare(self.config, None, &lockfiles).map_err(|e| format!("{e:#}"))?
            }
            Err(e) => return Err(format!("{e:#}")),
        };
        let (engine, parsed) = prepared;
        // The mirror is the depfw this server talks to, and whatever the config adds.
        let here = url::Url::parse(&self.base).ok();
        let mirror = MirrorCheck::from_config(self.config, here.as_slice());
        let mut report = crate::audit::evaluate::infallible(audit_parsed_online(
            &engine.policy,
            &parsed,
            &errors,
            None,
            mirror.as_ref(),
        ));
        report
            .results
            .sort_by(|a, b| b.verdict.cmp(&a.verdict).then_with(|| a.name.cmp(&b.name)));
        let mut bytes = Vec::new();
        crate::report::render_json(&report, &mut bytes).map_err(|e| e.to_string())?;
        let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if let (Some(note), Some(obj)) = (note, value.as_object_mut()) {
            obj.insert("note".to_owned(), Value::String(note));
        }
        Ok(value)
    }
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    // The client's revision when this server speaks it, else the newest it speaks (the
    // client then decides whether it can go on).
    let version = asked
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": {
            "name": "depfw",
            "title": "depfw dependency firewall",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": INSTRUCTIONS,
    })
}

/// A `tools/call` result: the JSON as text (what every client shows the model) and as
/// `structuredContent`.
fn tool_result(value: Value, is_error: bool) -> Value {
    let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string());
    let structured = if value.is_object() {
        value
    } else {
        json!({ "result": value })
    };
    json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": structured,
        "isError": is_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_answers_the_clients_revision_or_the_newest() {
        let r = initialize(&json!({"protocolVersion": "2025-06-18"}));
        assert_eq!(r["protocolVersion"], "2025-06-18");
        let r = initialize(&json!({"protocolVersion": "2099-01-01"}));
        assert_eq!(r["protocolVersion"], PROTOCOL_VERSIONS[0]);
        assert_eq!(r["capabilities"]["tools"]["listChanged"], false);
    }

    #[test]
    fn every_tool_has_a_schema_naming_its_required_arguments() {
        let tools = tools();
        let names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "check_packages",
                "audit_lockfile",
                "explain_refusal",
                "request_approval"
            ]
        );
        for t in tools.as_array().unwrap() {
            assert_eq!(t["inputSchema"]["type"], "object");
            assert!(!t["inputSchema"]["required"].as_array().unwrap().is_empty());
        }
    }

    #[test]
    fn a_token_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "dfw_x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("dfw_x"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Readable now, but not a token depfw issued: refused without echoing it.
        let e = read_token(Some(&path)).unwrap_err().to_string();
        assert!(!e.contains("dfw_x"), "{e}");
    }
}
