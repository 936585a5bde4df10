//! One error type for the admin API: the right status and `{"error": "..."}`.
//!
//! Refusals (bad input, unknown ids, duplicates) carry a message meant for the admin.
//! Failures of depfw itself (a store error) are logged with their cause and answered with a
//! generic 500, so that internals never reach the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::agents::AgentError;
use crate::store::overrides::{FieldError, OverrideError};
use crate::store::quarantine::QuarantineError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 400: the request is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong admin token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the endpoint is off, or a browser request failed the CSRF/origin check.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such item.
    #[error("{0}")]
    NotFound(String),
    /// 409: a duplicate, or already resolved/removed/suspended.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 429: too many wrong tokens from this address (see `admin::throttle`).
    #[error("too many wrong admin tokens from this address: try again in {} s", .0.as_secs().max(1))]
    TooManyAttempts(std::time::Duration),
    /// 503: what the request needs is not available now (no policy, no advisory data).
    #[error("{0}")]
    Unavailable(String),
    /// 500: depfw failed; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub(crate) fn public_message(&self) -> String {
        match self {
            AdminError::Internal(_) => "internal error; see the depfw log".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Debug formatting quotes the message: input echoed in it cannot forge log lines.
        if status.is_server_error() {
            tracing::error!(error = ?self.to_string(), "admin request failed");
        } else {
            tracing::info!(status = status.as_u16(), error = ?self.to_string(), "admin request refused");
        }
        let body = serde_json::json!({ "error": self.public_message() });
        let mut response = (status, Json(body)).into_response();
        if let AdminError::TooManyAttempts(wait) = self {
            retry_after(&mut response, wait);
        }
        response
    }
}

/// Sets `Retry-After` to `wait`, in whole seconds rounded up.
pub(crate) fn retry_after(response: &mut Response, wait: std::time::Duration) {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Internal(e.to_string())
    }
}

impl From<OverrideError> for AdminError {
    fn from(e: OverrideError) -> Self {
        let text = e.to_string();
        match e {
            OverrideError::ReasonRequired
            | OverrideError::AuthorRequired
            | OverrideError::ExpiryInPast { .. }
            | OverrideError::BadText { .. }
            | OverrideError::BadAgent(_) => AdminError::BadRequest(text),
            OverrideError::Duplicate { .. } | OverrideError::AlreadyRemoved(_) => {
                AdminError::Conflict(text)
            }
            OverrideError::Unknown(_) => AdminError::NotFound(text),
            OverrideError::Store(e) => e.into(),
        }
    }
}

impl From<QuarantineError> for AdminError {
    fn from(e: QuarantineError) -> Self {
        let text = e.to_string();
        match e {
            QuarantineError::Unknown(_) => AdminError::NotFound(text),
            QuarantineError::AlreadyResolved { .. } => AdminError::Conflict(text),
            QuarantineError::RequesterRequired
            | QuarantineError::JustificationRequired
            | QuarantineError::BadRange(_)
            | QuarantineError::RangeExcludesVersion { .. } => AdminError::BadRequest(text),
            QuarantineError::Override(e) => e.into(),
            QuarantineError::Store(e) => e.into(),
        }
    }
}

impl From<AgentError> for AdminError {
    fn from(e: AgentError) -> Self {
        let text = e.to_string();
        match e {
            AgentError::InvalidName(_) | AgentError::ReasonRequired | AgentError::BadReason => {
                AdminError::BadRequest(text)
            }
            AgentError::Duplicate(_)
            | AgentError::Revoked(_)
            | AgentError::AlreadySuspended(_)
            | AgentError::NotSuspended(_) => AdminError::Conflict(text),
            AgentError::Unknown(_) => AdminError::NotFound(text),
            AgentError::Random(_) | AgentError::TokenCollision | AgentError::Store(_) => {
                AdminError::Internal(text)
            }
        }
    }
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::BadRequest(e.to_string())
    }
}

/// `Json<T>` whose rejections are [`AdminError`]s: 413 over the body limit, else 400 with
/// serde's message (which names an unknown field or a wrong type and its position).
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AdminError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AdminError::TooLarge(format!(
            "the request body is larger than {} bytes",
            super::MAX_BODY_BYTES
        ));
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            AdminError::BadRequest("send a JSON body with `Content-Type: application/json`".into())
        }
        other => AdminError::BadRequest(format!("invalid JSON body: {}", other.body_text())),
    }
}

/// `Query<T>` with 400 [`AdminError`] rejections.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                AdminError::BadRequest(format!("invalid query: {}", e.body_text()))
            })
    }
}

/// `Path<T>` with 400 [`AdminError`] rejections (a non-numeric id, say).
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                AdminError::BadRequest(format!("invalid path: {}", e.body_text()))
            })
    }
}
