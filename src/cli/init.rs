//! `depfw init <client>`: prints the configuration that points a package manager at this
//! depfw, so that setting up a project is one copy-paste (values from `server.public-url`).

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
}

#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The package manager to configure.
    #[arg(value_enum)]
    pub client: Client,
    /// Print the mirror URLs of this agent (`/a/<token>/…`), so its installs are attributed
    /// to it and judged by its policy preset.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// The agent's token (shown once by `depfw agents add` / `rotate`). Without it the
    /// snippet carries the placeholder `AGENT_TOKEN`.
    #[arg(
        long,
        env = "DEPFW_AGENT_TOKEN",
        hide_env_values = true,
        requires = "agent"
    )]
    pub token: Option<String>,
}

/// The placeholder printed when `--agent` is given without `--token`.
pub(crate) const TOKEN_PLACEHOLDER: &str = "AGENT_TOKEN";

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
        Client::Cargo => format!(
            "# .cargo/config.toml\n\
             [source.crates-io]\nreplace-with = \"depfw\"\n\n\
             [source.depfw]\nregistry = \"sparse+{base}/cargo/index/\"\n"
        ),
    }
}

pub(crate) fn run(args: &InitArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let Some(agent) = &args.agent else {
        print!("{}", snippet(args.client, &config.server.public_url));
        return Ok(ExitCode::SUCCESS);
    };
    crate::agents::validate_name(agent)?;
    let token = match &args.token {
        Some(token) => crate::agents::Token::parse(token)
            .map_err(|e| anyhow::anyhow!("--token: {e}"))?
            .expose_secret()
            .to_owned(),
        None => TOKEN_PLACEHOLDER.to_owned(),
    };
    let base = config.server.public_url.as_str().trim_end_matches('/');
    let agent_url = url::Url::parse(&format!("{base}/a/{token}/"))?;
    println!("# depfw mirror for agent `{agent}`");
    if args.token.is_none() {
        println!(
            "# replace {TOKEN_PLACEHOLDER} with the agent's token (`depfw agents rotate {agent}` issues a new one)"
        );
    }
    print!("{}", snippet(args.client, &agent_url));
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
