//! The one error type of the proxy's handlers: it logs the real cause and tells the client
//! what it needs in a `{"error": "depfw: …"}` body, which npm prints, and in the status
//! line's reason phrase, which pip, poetry and pnpm print.
//!
//! Status choices: a policy refusal is 403 (never 5xx/429, which clients retry); bad client
//! input is 400; upstream faults are 502 (504 for timeouts), so a flaky upstream is retried;
//! an unevaluable policy is 503: the proxy is unable to decide, which is neither "this package
//! is bad" (403 would be recorded by people and tools as a verdict) nor "not found" (cargo
//! reads 404/451 as a missing crate). Clients retry a 503 a few times and then fail, which
//! is the honest outcome while the policy is broken.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why an upstream could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFault {
    Timeout,
    Connect,
    Status(u16),
    TooLarge,
    Invalid,
    Integrity,
    Io,
}

impl UpstreamFault {
    /// The fault's label in `depfw_upstream_errors_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            UpstreamFault::Timeout => "timeout",
            UpstreamFault::Connect => "connect",
            UpstreamFault::Status(s) if *s >= 500 => "status_5xx",
            UpstreamFault::Status(_) => "status_4xx",
            UpstreamFault::TooLarge => "too_large",
            UpstreamFault::Invalid => "invalid",
            UpstreamFault::Integrity => "integrity",
            UpstreamFault::Io => "io",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("depfw: bad request: {0}")]
    BadRequest(String),
    #[error("depfw: {0}")]
    NotFound(String),
    /// A policy refusal; the message is complete (`<pkg> is denied by policy: …`).
    #[error("depfw: {0}")]
    Refused(String),
    #[error("depfw: the policy cannot be evaluated, refusing every package: {0}")]
    PolicyUnavailable(String),
    /// A registry endpoint depfw deliberately does not answer; the message says why and
    /// what to use instead.
    #[error("depfw: {0}")]
    NotImplemented(String),
    #[error("depfw: upstream {url} failed: {detail}")]
    Upstream {
        fault: UpstreamFault,
        url: String,
        detail: String,
    },
    #[error("depfw: internal error (see the depfw log)")]
    Internal(#[source] anyhow::Error),
}

impl ProxyError {
    pub fn upstream(fault: UpstreamFault, url: &str, detail: impl Into<String>) -> ProxyError {
        crate::observe::upstream_failed(fault.label());
        ProxyError::Upstream {
            fault,
            url: url.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::Refused(_) => StatusCode::FORBIDDEN,
            ProxyError::PolicyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::Upstream { fault, .. } => match fault {
                UpstreamFault::Timeout => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            },
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::registry::ProtocolError> for ProxyError {
    fn from(e: crate::registry::ProtocolError) -> Self {
        match e {
            crate::registry::ProtocolError::BadPath(why) => ProxyError::BadRequest(why),
            crate::registry::ProtocolError::BadUpstream(why) => {
                ProxyError::upstream(UpstreamFault::Invalid, "", why)
            }
        }
    }
}

impl From<crate::store::StoreError> for ProxyError {
    fn from(e: crate::store::StoreError) -> Self {
        ProxyError::Internal(e.into())
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ProxyError::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            ProxyError::Refused(_) | ProxyError::NotFound(_) | ProxyError::BadRequest(_) => {
                tracing::info!(%status, "{self}")
            }
            _ => tracing::warn!(%status, "{self}"),
        }
        let message = self.to_string();
        let reason = reason_phrase(status, &message);
        let body = serde_json::json!({ "error": message }).to_string();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(reason) = reason {
            resp.extensions_mut().insert(reason);
        }
        resp
    }
}

/// The longest reason phrase depfw writes; clients print it on one line.
const REASON_MAX: usize = 240;

/// The HTTP/1.1 status line's reason phrase: the standard text, then depfw's message
/// (`403 Forbidden - depfw: idna 3.10 is denied by policy: …`). Clients that print the
/// reason phrase rather than the body (pip and poetry through requests' `raise_for_status`,
/// pnpm through the fetch `statusText`) then show why, not just "Forbidden". Only visible
/// ASCII and spaces (RFC 9112's `reason-phrase`), cut at [`REASON_MAX`].
fn reason_phrase(status: StatusCode, message: &str) -> Option<hyper::ext::ReasonPhrase> {
    let standard = status.canonical_reason().unwrap_or("Error");
    let mut text = format!("{standard} - ");
    push_visible_ascii(&mut text, message, REASON_MAX);
    hyper::ext::ReasonPhrase::try_from(text.into_bytes()).ok()
}

/// Appends `message` to `text` as one line of visible ASCII and spaces (what a reason
/// phrase or header value may hold and every client prints as is): other characters
/// become `?`, line breaks spaces; cut with `...` once `text` reaches `max` bytes.
pub(crate) fn push_visible_ascii(text: &mut String, message: &str, max: usize) {
    for c in message.chars() {
        if text.len() >= max {
            text.push_str("...");
            break;
        }
        text.push(match c {
            ' '..='~' => c,
            '\t' | '\n' | '\r' => ' ',
            _ => '?',
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_phrase_carries_the_message_in_visible_ascii_and_is_bounded() {
        let refused = ProxyError::Refused("idna 3.10 is denied by policy: “CVE” \u{7}x".into());
        let resp = refused.into_response();
        let reason = resp.extensions().get::<hyper::ext::ReasonPhrase>().unwrap();
        let text = std::str::from_utf8(reason.as_bytes()).unwrap();
        assert_eq!(
            text,
            "Forbidden - depfw: idna 3.10 is denied by policy: ?CVE? ?x"
        );

        let long = ProxyError::Refused("x".repeat(10_000)).into_response();
        let reason = long.extensions().get::<hyper::ext::ReasonPhrase>().unwrap();
        assert!(reason.as_bytes().len() <= REASON_MAX + 3);
        assert!(reason.as_bytes().ends_with(b"..."));
    }
}
