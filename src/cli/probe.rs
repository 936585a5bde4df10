//! `depfw probe URL`: a health check for a supervisor that has no HTTP client to run.
//!
//! ```sh
//! depfw probe http://127.0.0.1:7878/readyz   # exit 0: ready; exit 1: not ready
//! ```
//!
//! The container image is distroless (no shell, no curl), so its `HEALTHCHECK` runs the
//! binary itself. One GET, no redirects followed, bounded by `--timeout-secs`: exit 0 on a
//! 2xx answer, 1 on any other status, a refused connection or the timeout, 2 when the URL
//! is not an http(s) URL. It reads no config file and opens no store, so a probe never
//! touches the state of the server it checks.

use std::process::ExitCode;
use std::time::Duration;

use super::exit;

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The URL to GET, e.g. `http://127.0.0.1:7878/readyz`.
    url: url::Url,
    /// Seconds the whole request may take (connect, headers, body) before it counts as a
    /// failure.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    timeout_secs: u64,
}

/// Runs the probe; prints one line saying why on a failure (the supervisor's log keeps it).
pub(crate) fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.url.scheme(), "http" | "https") || args.url.host().is_none() {
        anyhow::bail!("probe `{}`: expected an http(s) URL with a host", args.url);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let response = client.get(args.url.clone()).send().await?;
        let status = response.status();
        // Read the (small) body so that a server that stalls after its headers also
        // counts against the timeout.
        response.bytes().await?;
        Ok::<_, reqwest::Error>(status)
    });
    match outcome {
        Ok(status) if status.is_success() => Ok(ExitCode::from(exit::CLEAN)),
        Ok(status) => {
            eprintln!("depfw probe: {} answered {status}", args.url);
            Ok(ExitCode::from(exit::FINDINGS))
        }
        Err(e) => {
            let why = if e.is_timeout() {
                format!("{}: no answer within {} s", args.url, args.timeout_secs)
            } else {
                // reqwest's message names the URL, its chain the cause (connection
                // refused, DNS, TLS).
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    why = format!("{why}: {cause}");
                    source = cause.source();
                }
                why
            };
            eprintln!("depfw probe: {why}");
            Ok(ExitCode::from(exit::FINDINGS))
        }
    }
}
