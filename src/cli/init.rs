//! `depfw init <client>`: prints the configuration that points a package manager at this
//! depfw, so that setting up a project is one copy-paste (values from `server.public-url`).
//!
//! With `--agent NAME` the client authenticates the way it does to any private registry
//! (bearer token, HTTP Basic, cargo registry token), reading the token from `$DEPFW_TOKEN`:
//! depfw then renders token-free URLs, so lockfiles carry no secret. `--token-in-path`
//! prints the `/a/<token>/` mirror URLs instead, for clients that cannot send a header.
//! After the registry comes the client's own release cooldown with depfw's age
//! (`doctor::cooldown`), so the resolver never picks a version depfw holds back.

use std::process::ExitCode;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    Npm,
    Pnpm,
    Yarn,
    Bun,
    Pip,
    Uv,
    Poetry,
    Cargo,
    /// Not a client: the rules for an agent's instruction file (AGENTS.md, CLAUDE.md) and
    /// the MCP configuration that starts `depfw mcp` for it.
    AgentRules,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The package manager to configure.
    #[arg(value_enum)]
    pub client: Client,
    /// Configure this agent: the client sends the agent's token in its `Authorization`
    /// header (read from the environment variable `DEPFW_TOKEN`), so its installs are
    /// attributed to it and judged by its policy preset, and lockfiles carry no token.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// Put the token in the mirror URL (`/a/<token>/…`) instead, for clients that cannot
    /// send a header. The token then ends up in lockfiles (package-lock.json's `resolved`,
    /// uv.lock's URLs): do not commit them.
    #[arg(long, requires = "agent")]
    pub token_in_path: bool,
    /// The agent's token (shown once by `depfw agents add` / `rotate`), for
    /// `--token-in-path`. Without it the URL carries the placeholder `AGENT_TOKEN`.
    #[arg(
        long,
        env = "DEPFW_AGENT_TOKEN",
        hide_env_values = true,
        requires = "agent"
    )]
    pub token: Option<String>,
}

/// The placeholder printed when `--token-in-path` is given without `--token`.
pub(crate) const TOKEN_PLACEHOLDER: &str = "AGENT_TOKEN";

/// The environment variable the agent snippets read the token from.
pub(crate) use crate::agents::TOKEN_ENV;

/// The snippet for `client`, given depfw's public base URL.
pub(crate) fn snippet(client: Client, public_url: &url::Url) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    let host = public_url.host_str().unwrap_or("127.0.0.1");
    let npm = format!("{base}/npm/");
    let simple = format!("{base}/pypi/simple/");
    match client {
        Client::Npm | Client::Pnpm => format!(
            "# .npmrc (project or ~/.npmrc); or set npm_config_registry={npm}\n\
             registry={npm}\n\
             # keep the default replace-registry-host=npmjs: `never` lets lockfile URLs bypass depfw\n"
        ),
        Client::Yarn => format!(
            "# .yarnrc.yml (yarn berry); env: YARN_NPM_REGISTRY_SERVER, YARN_UNSAFE_HTTP_WHITELIST\n\
             npmRegistryServer: \"{npm}\"\n\
             unsafeHttpWhitelist:\n  - \"{host}\"\n"
        ),
        Client::Bun => format!(
            "# bunfig.toml; or set NPM_CONFIG_REGISTRY={npm}\n\
             [install]\nregistry = \"{npm}\"\n"
        ),
        Client::Pip => format!(
            "# pip.conf (~/.config/pip/pip.conf); or export PIP_INDEX_URL={simple}\n\
             [global]\nindex-url = {simple}\n"
        ),
        Client::Uv => format!(
            "# environment; or in pyproject.toml: [[tool.uv.index]] url = \"{simple}\" default = true\n\
             export UV_DEFAULT_INDEX={simple}\n"
        ),
        Client::Poetry => format!(
            "# pyproject.toml (poetry has no environment variable that replaces PyPI)\n\
             [[tool.poetry.source]]\nname = \"depfw\"\nurl = \"{simple}\"\npriority = \"primary\"\n"
        ),
        Client::AgentRules => agent_rules(public_url, None),
        Client::Cargo => format!(
            "# .cargo/config.toml\n\
             [source.crates-io]\nreplace-with = \"depfw\"\n\n\
             [source.depfw]\nregistry = \"sparse+{base}/cargo/index/\"\n"
        ),
    }
}

/// The snippet for an agent that sends its token in the `Authorization` header, under
/// depfw's `/auth/` mount (a missing token is a 401 there, never an anonymous install).
/// Every snippet reads the token from `$DEPFW_TOKEN` (or says where to write it), so the
/// files it goes into can be committed, and the URLs the client records carry no token.
pub(crate) fn agent_snippet(client: Client, public_url: &url::Url) -> String {
    let base = format!("{}/auth", public_url.as_str().trim_end_matches('/'));
    let host = public_url.host_str().unwrap_or("127.0.0.1");
    let npm = format!("{base}/npm/");
    // npm's "nerf dart": the registry URL without its scheme.
    let nerf = npm.split_once("//").map_or(npm.as_str(), |(_, rest)| rest);
    let simple = format!("{base}/pypi/simple/");
    let t = TOKEN_ENV;
    match client {
        Client::Npm => format!(
            "# .npmrc (project or ~/.npmrc); npm reads ${{{t}}} from the environment\n\
             registry={npm}\n\
             //{nerf}:_authToken=${{{t}}}\n"
        ),
        Client::Pnpm => format!(
            "# .npmrc (project or ~/.npmrc)\n\
             registry={npm}\n\
             # ~/.npmrc: pnpm reads ${{{t}}} from the environment there, never in a project's .npmrc\n\
             //{nerf}:_authToken=${{{t}}}\n"
        ),
        Client::Yarn => format!(
            "# .yarnrc.yml (yarn berry); yarn reads ${{{t}}} from the environment\n\
             npmRegistryServer: \"{npm}\"\n\
             npmAuthToken: \"${{{t}}}\"\n\
             npmAlwaysAuth: true\n\
             unsafeHttpWhitelist:\n  - \"{host}\"\n"
        ),
        Client::Bun => format!(
            "# bunfig.toml; bun reads ${t} from the environment (it also reads an .npmrc as above)\n\
             [install]\nregistry = {{ url = \"{npm}\", token = \"${t}\" }}\n"
        ),
        Client::Pip => format!(
            "# pip.conf (~/.config/pip/pip.conf); or export PIP_INDEX_URL={simple}\n\
             [global]\nindex-url = {simple}\n\
             # and the token as the password in ~/.netrc, which pip sends as HTTP Basic:\n\
             #   printf 'machine {host} login agent password %s\\n' \"${t}\" >> ~/.netrc && chmod 600 ~/.netrc\n"
        ),
        Client::Uv => format!(
            "# pyproject.toml\n\
             [[tool.uv.index]]\nname = \"depfw\"\nurl = \"{simple}\"\ndefault = true\n\
             # environment: uv sends them as HTTP Basic and writes no credentials into uv.lock\n\
             #   export UV_INDEX_DEPFW_USERNAME=agent UV_INDEX_DEPFW_PASSWORD=\"${t}\"\n\
             # (`uv pip` without a pyproject: UV_DEFAULT_INDEX={simple} and a ~/.netrc line\n\
             #  `machine {host} login agent password <token>`)\n"
        ),
        Client::Poetry => format!(
            "# pyproject.toml\n\
             [[tool.poetry.source]]\nname = \"depfw\"\nurl = \"{simple}\"\npriority = \"primary\"\n\
             # environment: poetry sends them as HTTP Basic (poetry.lock holds no URLs)\n\
             #   export POETRY_HTTP_BASIC_DEPFW_USERNAME=agent POETRY_HTTP_BASIC_DEPFW_PASSWORD=\"${t}\"\n"
        ),
        Client::AgentRules => agent_rules(public_url, None),
        Client::Cargo => format!(
            "# .cargo/config.toml\n\
             [registries.depfw]\nindex = \"sparse+{base}/cargo/index/\"\ncredential-provider = \"cargo:token\"\n\n\
             [source.crates-io]\nreplace-with = \"depfw\"\n\
             # environment: cargo sends it as the registry's token (Cargo.lock keeps naming crates.io)\n\
             #   export CARGO_REGISTRIES_DEPFW_TOKEN=\"${t}\"\n"
        ),
    }
}

/// What keeps the client's lockfile on the mirror, printed after its configuration: a
/// lockfile made against a public registry would otherwise install from there (issue #12;
/// `depfw audit --mirror URL` reports such entries).
pub(crate) fn lockfile_note(client: Client, public_url: &url::Url) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    match client {
        Client::Npm => {
            "# lockfiles: fetch every `resolved` tarball, whichever registry wrote it, from \
             the registry above\nreplace-registry-host=always\n"
                .to_owned()
        }
        Client::Pnpm => "# lockfiles: pnpm-lock.yaml records no URL for the configured registry's \
             packages, so installs fetch them from the registry above; `depfw audit` flags \
             tarball URLs elsewhere\n"
            .to_owned(),
        Client::Yarn => "# lockfiles: yarn.lock (berry) records `npm:` resolutions, fetched from \
             npmRegistryServer; yarn classic fetches its `resolved` URLs as written: lock again \
             through depfw\n"
            .to_owned(),
        Client::Bun => "# lockfiles: bun.lock records the registry URL of each package: lock \
             through depfw (`bun install` with the registry above)\n"
            .to_owned(),
        Client::Pip => "# lockfiles: requirements files name no index, so pip uses index-url; \
             `--hash` pins keep them portable\n"
            .to_owned(),
        Client::Uv => format!(
            "# lockfiles: uv.lock records the index and file URLs, and `uv sync --frozen` installs \
             from them: lock through depfw (`uv lock` with the index above) and check with \
             `depfw audit --mirror {base}`\n"
        ),
        Client::Poetry => "# lockfiles: poetry.lock records file hashes, not URLs; poetry \
             fetches from the primary source above\n"
            .to_owned(),
        Client::Cargo => "# lockfiles: Cargo.lock keeps naming crates.io under `replace-with`; \
             cargo fetches through depfw whatever it says\n"
            .to_owned(),
        Client::AgentRules => String::new(),
    }
}

/// `depfw init agent-rules`: what an agent must know about depfw, for its instruction file
/// (AGENTS.md, CLAUDE.md), then the MCP configuration (Claude Code's `.mcp.json`, or
/// `claude mcp add`) that starts `depfw mcp` with the agent's token from `$DEPFW_TOKEN`.
pub(crate) fn agent_rules(public_url: &url::Url, agent: Option<&str>) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    let t = TOKEN_ENV;
    let whose = agent.map_or_else(String::new, |a| format!(" (agent `{a}`)"));
    format!(
        "<!-- Rules for the agent's instruction file (AGENTS.md, CLAUDE.md){whose} -->\n\
         ## Dependencies go through depfw\n\
         \n\
         - Every package is installed through the depfw mirror at {base} that this \
         environment's package managers are configured with. Never bypass it: do not change \
         the registry or index, do not download a package another way (a direct URL, git, \
         curl, another mirror), do not copy or vendor a package's code to get past a \
         refusal.\n\
         - Before adding a dependency, ask depfw with the `check_packages` tool of the `depfw` \
         MCP server (e.g. `npm lodash@^4`, `pypi requests>=2`, `crates.io serde@1`).\n\
         - When depfw refuses a package (HTTP 403, \"denied by policy\", \"quarantined\"), do \
         not work around it: call `explain_refusal` with the request id from the error and \
         use the alternative it names (an allowed version, or the intended package for a \
         look-alike name).\n\
         - If the refused package is really needed, call `request_approval` with an honest \
         justification and tell the user: a human decides. Without the MCP tools, stop and \
         ask the user, with the reason.\n\
         - Lockfiles must resolve through the mirror: `audit_lockfile` reports entries that \
         bypass it.\n\
         \n\
         <!-- MCP server for Claude Code: .mcp.json in the project (the token is expanded \
         from ${t} in Claude Code's environment, so the file holds no secret) -->\n\
         {{\n  \"mcpServers\": {{\n    \"depfw\": {{\n      \"type\": \"stdio\",\n      \
         \"command\": \"depfw\",\n      \"args\": [\"mcp\", \"--url\", \"{base}\"],\n      \
         \"env\": {{ \"{t}\": \"${{{t}}}\" }}\n    }}\n  }}\n}}\n\
         <!-- or: claude mcp add --scope project --transport stdio --env '{t}=${{{t}}}' depfw -- depfw mcp --url {base} -->\n\
         <!-- other MCP clients: run `depfw mcp --url {base}` over stdio with {t} set \
         (or --token-file FILE, mode 600) -->\n"
    )
}

pub(crate) fn run(args: &InitArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.client == Client::AgentRules {
        if let Some(agent) = &args.agent {
            crate::agents::validate_name(agent)?;
        }
        print!(
            "{}",
            agent_rules(&config.server.public_url, args.agent.as_deref())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cooldown = super::doctor::cooldown::init_lines(
        args.client,
        super::doctor::cooldown::enforced_hours(config, args.agent.is_some()),
        args.agent.is_some() && !args.token_in_path,
    );
    let Some(agent) = &args.agent else {
        print!("{}", snippet(args.client, &config.server.public_url));
        print!("{cooldown}");
        print!("{}", lockfile_note(args.client, &config.server.public_url));
        return Ok(ExitCode::SUCCESS);
    };
    crate::agents::validate_name(agent)?;
    if !args.token_in_path {
        println!("# depfw for agent `{agent}`: the token goes in the Authorization header");
        println!(
            "# export {TOKEN_ENV}=<the token `depfw agents add {agent}` printed> (shown once; \
             `depfw agents rotate {agent}` issues a new one)"
        );
        if args.token.is_some() {
            println!(
                "# (--token is for --token-in-path only: this configuration reads ${TOKEN_ENV})"
            );
        }
        print!("{}", agent_snippet(args.client, &config.server.public_url));
        print!("{cooldown}");
        print!("{}", lockfile_note(args.client, &config.server.public_url));
        return Ok(ExitCode::SUCCESS);
    }
    let token = match &args.token {
        Some(token) => crate::agents::Token::parse(token)
            .map_err(|e| anyhow::anyhow!("--token: {e}"))?
            .expose_secret()
            .to_owned(),
        None => TOKEN_PLACEHOLDER.to_owned(),
    };
    let base = config.server.public_url.as_str().trim_end_matches('/');
    let agent_url = url::Url::parse(&format!("{base}/a/{token}/"))?;
    println!("# depfw mirror for agent `{agent}`, token in the URL");
    println!(
        "# for clients that cannot send an Authorization header: the token is written into \
         lockfiles (package-lock.json `resolved`, uv.lock, pnpm/yarn/bun locks); do not commit them"
    );
    if args.token.is_none() {
        println!(
            "# replace {TOKEN_PLACEHOLDER} with the agent's token (`depfw agents rotate {agent}` issues a new one)"
        );
    }
    print!("{}", snippet(args.client, &agent_url));
    print!("{cooldown}");
    print!("{}", lockfile_note(args.client, &config.server.public_url));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_snippets_carry_the_token_prefix() {
        let url = url::Url::parse("http://127.0.0.1:7878/a/AGENT_TOKEN/").unwrap();
        assert!(snippet(Client::Npm, &url)
            .contains("registry=http://127.0.0.1:7878/a/AGENT_TOKEN/npm/\n"));
        assert!(snippet(Client::Cargo, &url)
            .contains("sparse+http://127.0.0.1:7878/a/AGENT_TOKEN/cargo/index/"));
    }

    #[test]
    fn agent_snippets_authenticate_in_headers_with_token_free_urls() {
        let url = url::Url::parse("http://127.0.0.1:7878/").unwrap();
        let npm = agent_snippet(Client::Npm, &url);
        assert!(
            npm.contains("registry=http://127.0.0.1:7878/auth/npm/\n"),
            "{npm}"
        );
        assert!(
            npm.contains("//127.0.0.1:7878/auth/npm/:_authToken=${DEPFW_TOKEN}\n"),
            "{npm}"
        );
        let yarn = agent_snippet(Client::Yarn, &url);
        assert!(yarn.contains("npmAuthToken: \"${DEPFW_TOKEN}\""), "{yarn}");
        assert!(yarn.contains("npmAlwaysAuth: true"), "{yarn}");
        let cargo = agent_snippet(Client::Cargo, &url);
        assert!(cargo.contains("index = \"sparse+http://127.0.0.1:7878/auth/cargo/index/\""));
        assert!(cargo.contains("CARGO_REGISTRIES_DEPFW_TOKEN"), "{cargo}");
        assert!(agent_snippet(Client::Uv, &url).contains("UV_INDEX_DEPFW_PASSWORD"));
        assert!(agent_snippet(Client::Poetry, &url).contains("POETRY_HTTP_BASIC_DEPFW_PASSWORD"));
        assert!(agent_snippet(Client::Pip, &url).contains("machine 127.0.0.1 login agent"));
        assert!(agent_snippet(Client::Bun, &url).contains("token = \"$DEPFW_TOKEN\""));
        for c in [
            Client::Npm,
            Client::Pnpm,
            Client::Yarn,
            Client::Bun,
            Client::Pip,
            Client::Uv,
            Client::Poetry,
            Client::Cargo,
        ] {
            assert!(!agent_snippet(c, &url).contains("/a/"), "{c:?}");
        }
    }

    #[test]
    fn each_client_is_told_what_keeps_its_lockfile_on_the_mirror() {
        let url = url::Url::parse("http://10.0.0.5:7878/").unwrap();
        assert!(lockfile_note(Client::Npm, &url).contains("\nreplace-registry-host=always\n"));
        assert!(
            lockfile_note(Client::Uv, &url).contains("depfw audit --mirror http://10.0.0.5:7878")
        );
        for c in [
            Client::Npm,
            Client::Pnpm,
            Client::Yarn,
            Client::Bun,
            Client::Pip,
            Client::Uv,
            Client::Poetry,
            Client::Cargo,
        ] {
            let note = lockfile_note(c, &url);
            assert!(note.starts_with("# lockfiles: "), "{c:?}");
            // Every line is a comment or a setting of the file the snippet is for.
            assert!(
                note.lines().all(|l| l.starts_with('#') || l.contains('=')),
                "{c:?}"
            );
        }
    }

    #[test]
    fn agent_rules_forbid_bypassing_and_configure_the_mcp_server() {
        let url = url::Url::parse("http://10.0.0.5:7878/").unwrap();
        let rules = agent_rules(&url, Some("ci-bot"));
        for needle in [
            "Never bypass it",
            "`check_packages`",
            "`explain_refusal`",
            "`request_approval`",
            "\"args\": [\"mcp\", \"--url\", \"http://10.0.0.5:7878\"]",
            "\"DEPFW_TOKEN\": \"${DEPFW_TOKEN}\"",
            "claude mcp add",
            "agent `ci-bot`",
        ] {
            assert!(rules.contains(needle), "{needle} not in:\n{rules}");
        }
        // The .mcp.json part is JSON.
        let start = rules.find("{\n").unwrap();
        let end = rules.rfind("}\n").unwrap() + 1;
        let json: serde_json::Value = serde_json::from_str(&rules[start..end]).unwrap();
        assert_eq!(json["mcpServers"]["depfw"]["command"], "depfw");
    }

    #[test]
    fn snippets_use_the_public_url() {
        let url = url::Url::parse("http://10.0.0.5:7878/").unwrap();
        assert!(snippet(Client::Npm, &url).contains("registry=http://10.0.0.5:7878/npm/\n"));
        let yarn = snippet(Client::Yarn, &url);
        assert!(yarn.contains("npmRegistryServer: \"http://10.0.0.5:7878/npm/\""));
        assert!(yarn.contains("- \"10.0.0.5\""));
        assert!(snippet(Client::Cargo, &url)
            .contains("registry = \"sparse+http://10.0.0.5:7878/cargo/index/\""));
        assert!(snippet(Client::Uv, &url)
            .contains("UV_DEFAULT_INDEX=http://10.0.0.5:7878/pypi/simple/"));
        for c in [Client::Pip, Client::Poetry, Client::Bun, Client::Pnpm] {
            assert!(snippet(c, &url).contains("http://10.0.0.5:7878/"), "{c:?}");
        }
    }
}
