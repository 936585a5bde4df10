//! The online audit's HTTP client: one GET with the configured timeout and size limit,
//! answering "here is the body", "the registry does not have it" or why it failed.
//!
//! Not the proxy's `server::upstream::Upstream`: the audit needs the response's
//! `Content-Type` (PyPI answers JSON or HTML), its own User-Agent (crates.io's crawler
//! policy asks for a descriptive one) and no cache (every name is fetched once per run).
// TODO: share the bounded body read with `server::upstream` once that file settles.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use url::Url;

use crate::config::UpstreamConfig;
use crate::registry::REQUEST_ID_HEADER;

/// What a GET found.
pub(super) enum Got {
    Body {
        bytes: Vec<u8>,
        content_type: Option<String>,
        /// Served by a depfw (its `x-depfw-request-id` header), which proxies registry
        /// protocols only, not web APIs such as PyPI's JSON API.
        from_depfw: bool,
    },
    /// The registry answered that it does not serve this (404, 410) or refuses to (403,
    /// 451, e.g. a depfw that denies the whole package): reported as missing, not as fine.
    Absent(String),
}

/// Why a GET failed; `unreachable` marks faults that say the host is down (connect errors,
/// timeouts, 5xx) rather than something about this one package.
pub(super) struct Failure {
    pub message: String,
    pub unreachable: bool,
}

pub(super) struct Http {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: u64,
}

impl Http {
    pub(super) fn new(cfg: &UpstreamConfig, user_agent: &str) -> Result<Http, String> {
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Http {
            client,
            timeout,
            max_bytes: cfg.max_metadata_bytes,
        })
    }

    pub(super) async fn get(&self, url: &Url, accept: &str) -> Result<Got, Failure> {
        let fail = |message: String, unreachable: bool| Failure {
            message: format!("GET {url}: {message}"),
            unreachable,
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                fail(
                    format!("timed out after {} s", self.timeout.as_secs()),
                    true,
                )
            } else {
                fail(error_chain(&e), e.is_connect())
            }
        };
        let resp = self
            .client
            .get(url.clone())
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        match status {
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Ok(Got::Absent(format!(
                    "the registry has no such package (HTTP {status})"
                )))
            }
            StatusCode::FORBIDDEN | StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => {
                return Ok(Got::Absent(format!(
                    "the registry refuses the package (HTTP {status})"
                )))
            }
            s if !s.is_success() => {
                return Err(fail(format!("HTTP {status}"), s.is_server_error()))
            }
            _ => {}
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let from_depfw = resp.headers().contains_key(REQUEST_ID_HEADER);
        let max = self.max_bytes;
        let too_large = || {
            fail(
                format!("response larger than the {max}-byte limit (upstream.max-metadata-bytes)"),
                false,
            )
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Got::Body {
            bytes,
            content_type,
            from_depfw,
        })
    }
}

/// reqwest's Display hides the cause ("connection refused"); walk the chain.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Spaces requests to one host at least `interval` apart (crates.io's crawler policy asks
/// for at most one API request per second). Waiters queue on the lock in arrival order.
pub(super) struct RateGate {
    interval: Duration,
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl RateGate {
    pub(super) fn new(interval: Duration) -> RateGate {
        RateGate {
            interval,
            next: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) async fn wait(&self) {
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at.into()).await;
        }
        *next = Some(Instant::now() + self.interval);
    }
}
