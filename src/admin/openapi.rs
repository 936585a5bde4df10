//! The OpenAPI 3 description of the admin API, served at `/admin/api/openapi.json`.
//!
//! Hand-written; a test checks that its operations are exactly the router's API routes.

use serde_json::{json, Value};

fn error_responses(codes: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    // Every route that checks the token also counts wrong ones (`admin::throttle`).
    let throttled = codes.contains(&"401").then_some("429");
    for code in codes.iter().copied().chain(throttled) {
        let description = match code {
            "400" => "bad input (malformed JSON, unknown field, invalid value); nothing changed",
            "401" => "no or wrong admin token",
            "404" => "unknown id or name",
            "409" => "duplicate, or already resolved/removed/suspended; nothing changed",
            "413" => "request body over the limit",
            "422" => "the config file was refused (`{reloaded: false, errors: [...]}`, every problem); the policy in force stays",
            "503" => "no policy that can decide (it failed to load, or an ecosystem has no advisory data)",
            "429" => "too many wrong admin tokens from this address; `Retry-After` says when to try again",
            _ => "error",
        };
        map.insert(
            code.to_owned(),
            json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(map)
}

fn op(summary: &str, ok: (&str, &str), errors: &[&str], extra: Value) -> Value {
    let mut responses = error_responses(errors);
    if let Value::Object(map) = &mut responses {
        map.insert(
            ok.0.to_owned(),
            json!({"description": ok.1, "content": {"application/json": {}}}),
        );
    }
    let mut operation = json!({ "summary": summary, "responses": responses });
    if let (Value::Object(o), Value::Object(e)) = (&mut operation, extra) {
        o.extend(e);
    }
    operation
}

fn body(schema: &str) -> Value {
    json!({"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

fn path_param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
}

/// The document.
pub(crate) fn document() -> Value {
    let id = path_param("id", "integer");
    let name = path_param("name", "string");
    let agent_op = |summary: &str, with_body: bool| {
        let mut extra = json!({"parameters": [name.clone()]});
        if with_body {
            if let (Value::Object(e), Value::Object(b)) = (&mut extra, body("Reason")) {
                e.extend(b);
            }
        }
        json!({"post": op(summary, ("200", "the agent (rotate: with its new token, shown once)"), &["400", "401", "404", "409"], extra)})
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "depfw admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Quarantine queue, allow/deny lists, agents, provenance log and feed status of a depfw proxy. Every route needs `Authorization: Bearer <admin token>`. Changes are recorded as made by `admin`."
        },
        "servers": [{"url": super::MOUNT}],
        "security": [{"adminToken": []}],
        "paths": {
            "/api/quarantine": {"get": op("List held versions", ("200", "{items: [QuarantineItem]}"), &["400", "401"],
                json!({"parameters": [
                    query_param("status", "pending (default), approved, rejected or all"),
                    query_param("agent", "only items this agent asked for (`anonymous`: anonymous clients)")
                ]}))},
            "/api/quarantine/{id}/approve": {"post": op("Approve a held version: creates an allow entry", ("200", "{item, override}"), &["400", "401", "404", "409", "413"],
                merge(json!({"parameters": [id.clone()]}), body("Approve")))},
            "/api/quarantine/{id}/reject": {"post": op("Reject a held version: creates a deny entry", ("200", "{item, override}"), &["400", "401", "404", "409", "413"],
                merge(json!({"parameters": [id.clone()]}), body("Reason")))},
            "/api/overrides": {
                "get": op("List allow/deny entries", ("200", "{items: [Override]}"), &["400", "401"],
                    json!({"parameters": [{"name": "all", "in": "query", "required": false, "description": "also expired and removed entries", "schema": {"type": "boolean"}}]})),
                "post": op("Add an allow or deny entry", ("201", "the entry"), &["400", "401", "409", "413"], body("NewOverride"))
            },
            "/api/overrides/{id}": {"delete": op("Remove an entry (kept in the history)", ("200", "the removed entry"), &["400", "401", "404", "409"],
                json!({"parameters": [id.clone()]}))},
            "/api/agents": {
                "get": op("List agents", ("200", "{items: [Agent]}"), &["401"], json!({})),
                "post": op("Create an agent; the answer carries its token, shown once", ("201", "{agent, token, mirror_urls}"), &["400", "401", "409", "413"], body("NewAgent"))
            },
            "/api/agents/{name}/rotate": agent_op("Replace an agent's token", false),
            "/api/agents/{name}/revoke": agent_op("Revoke an agent for good", false),
            "/api/agents/{name}/suspend": agent_op("Suspend an agent", true),
            "/api/agents/{name}/resume": agent_op("Resume a suspended agent", false),
            "/api/log": {"get": op("Search the provenance log, newest first", ("200", "{filter, entries}"), &["400", "401"],
                json!({"parameters": [
                    query_param("agent", "agent name"),
                    query_param("package", "package name (substring)"),
                    query_param("verdict", "allow, warn, quarantine or deny"),
                    query_param("since", "YYYY-MM-DD or RFC 3339"),
                    query_param("until", "YYYY-MM-DD or RFC 3339"),
                    query_param("limit", "1 to 1000, default 100")
                ]}))},
            "/api/log/verify": {"post": op("Verify the log's hash chain and signatures (`depfw log verify`)", ("200", "{intact, report}"), &["400", "401", "413"], body("VerifyLog"))},
            "/api/log/export": {"get": op("Every matching record, oldest first, as JSON lines (`depfw log export`)", ("200", "application/x-ndjson"), &["400", "401"],
                json!({"parameters": [
                    query_param("agent", "agent name"),
                    query_param("since", "YYYY-MM-DD or RFC 3339")
                ]}))},
            "/api/feeds": {"get": op("Feed status", ("200", "feed freshness"), &["401"], json!({}))},
            "/api/feeds/details": {"get": op("Every stored feed source and what the advisory data in use covers per ecosystem (`depfw feeds status`)", ("200", "{sources: [SourceStatus], coverage: [Coverage]}"), &["401"], json!({}))},
            "/api/reload": {"post": op("Read the config file again and apply its `[policy]` and `[overrides]` from the next request (what SIGHUP does); other sections wait for a restart and are named. A file with problems is refused, the policy in force stays. Any body is ignored", ("200", "{reloaded: true, applied: [section], restart_needed: [section], revision}"), &["401", "422"], json!({}))},
            "/api/feeds/sync": {"post": op("Download and store every feed source of the server's config, then apply the new advisories at once (`depfw feeds sync`); a failed source keeps its last good data and is reported, not an error. Any body is ignored", ("200", "{sources: [{name, advisories, error, kept}]}"), &["401"], json!({}))},
            "/api/feeds/import": {"post": op("Store the uploaded OSV data (a record, a JSON array, JSON lines or an all.zip; at most 256 MiB) as a feed source, then apply it at once (`depfw feeds import`)", ("200", "{name, advisories, records, withdrawn}"), &["400", "401", "413"],
                json!({
                    "parameters": [
                        {"name": "name", "in": "query", "required": true, "description": "the source name in the store (1 to 200 characters, no `/`)", "schema": {"type": "string"}},
                        query_param("file", "the uploaded file's name, for messages")
                    ],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary", "maxLength": crate::admin::MAX_FEED_UPLOAD_BYTES}}}}
                }))},
            "/api/evaluate": {"post": op("The running policy's decision for each package (`depfw check` and `depfw audit` while depfw serve holds the store)", ("200", "{answers: [{verdict, findings, upgrade_to}]}, one per query, in order"), &["400", "401", "413", "503"], body("Evaluate"))},
            "/api/openapi.json": {"get": op("This document", ("200", "OpenAPI 3 document"), &["401"], json!({}))}
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Reason": {"type": "object", "additionalProperties": false, "required": ["reason"],
                    "properties": {"reason": {"type": "string", "maxLength": 1000}}},
                "Approve": {"type": "object", "additionalProperties": false, "required": ["reason"], "properties": {
                    "scope": {"type": "string", "description": "`version` (default) or a range that includes the held version"},
                    "reason": {"type": "string", "maxLength": 1000},
                    "expires": {"type": "string", "description": "YYYY-MM-DD or RFC 3339, in the future"}}},
                "NewOverride": {"type": "object", "additionalProperties": false, "required": ["kind", "ecosystem", "name", "reason"], "properties": {
                    "kind": {"type": "string", "enum": ["allow", "deny"]},
                    "ecosystem": {"type": "string", "enum": ["npm", "PyPI", "crates.io"]},
                    "name": {"type": "string"},
                    "versions": {"type": "string", "description": "`*` (default), an exact version or a range"},
                    "reason": {"type": "string", "maxLength": 1000},
                    "expires": {"type": "string", "description": "YYYY-MM-DD or RFC 3339, in the future"}}},
                "VerifyLog": {"type": "object", "additionalProperties": false, "properties": {
                    "public_key": {"type": "string", "description": "`ed25519:<base64>` as `depfw log public-key` printed it; default: the data directory's own key"},
                    "checkpoints": {"type": "string", "description": "the text of a checkpoint file"}}},
                "Evaluate": {"type": "object", "additionalProperties": false, "required": ["queries"], "properties": {
                    "queries": {"type": "array", "maxItems": 1000, "items": {"type": "object", "additionalProperties": false, "required": ["ecosystem", "name"], "properties": {
                        "ecosystem": {"type": "string", "enum": ["npm", "PyPI", "crates.io"]},
                        "name": {"type": "string"},
                        "version": {"type": "string", "description": "omitted: name-level checks only"},
                        "metadata": {"type": "object", "description": "registry metadata as `depfw check --online` gathers it: published, publish_time_expected, package_created, license, has_install_scripts, deprecated, yanked"}}}},
                    "fix": {"type": "boolean", "description": "also answer `upgrade_to`, the lowest allowed version the advisories name as fixed"}}},
                "NewAgent": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
                    "policy": {"type": "string", "enum": ["default", "strict"]}}}
            }
        }
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}
