//! One handler for every registry `depfw serve` mounts: `/{MOUNT}/…` (and the same under an
//! agent's `/a/<token>/`) is routed by the protocol ([`Protocol::route`]); metadata and
//! listed artifacts run the [`super::pipeline`], and only what the registry alone has (a
//! [`Route::Quirk`]) reaches that protocol's own handler ([`Quirks`]: `server::npm`,
//! `server::pypi`, `server::cargo`).
//!
//! This is why a new ecosystem needs no server code: its protocol module, with `type Quirk
//! = Infallible` when it has none, and its line in `protocols!` (`server/mod.rs`).

use std::convert::Infallible;
use std::future::Future;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};

use super::delivery::Delivery;
use super::error::ProxyError;
use super::pipeline::{Gate, Served};
use super::verdicts::OnRefusal;
use super::{AppState, Protocols, RequestCtx};
use crate::registry::{Protocol, Route};

/// A protocol as the router mounts it: [`Protocol`] plus where its state lives; written for
/// each protocol by `protocols!`.
pub(crate) trait Mounted: Protocol
where
    Self::Quirk: Quirks<Self>,
{
    fn served(protocols: &Protocols) -> &Served<Self>;
}

/// One request as a handler sees it.
pub(crate) struct Call<'a> {
    pub state: &'a AppState,
    pub ctx: &'a RequestCtx,
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

impl Call<'_> {
    /// `HEAD` (uv sends one per wheel): artifacts get the policy's answer without a download.
    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// The 404 for a path depfw does not serve.
    pub(crate) fn not_served(&self) -> ProxyError {
        let method = if self.method == Method::GET {
            String::new()
        } else {
            format!("{} ", self.method)
        };
        ProxyError::NotFound(format!(
            "{method}{} is not served by depfw",
            self.uri.path()
        ))
    }
}

/// The handler of a protocol's [`Protocol::Quirk`]s: whatever its registry serves besides
/// metadata documents and the files they list.
pub(crate) trait Quirks<P: Protocol>: Sized {
    fn serve(
        self,
        s: &Served<P>,
        call: &Call<'_>,
    ) -> impl Future<Output = Result<Response, ProxyError>> + Send;
}

/// A protocol without quirks.
impl<P: Protocol> Quirks<P> for Infallible {
    async fn serve(self, _: &Served<P>, _: &Call<'_>) -> Result<Response, ProxyError> {
        match self {}
    }
}

/// The router path of `P`'s mount.
pub(crate) fn route_path<P: Protocol>() -> String {
    format!("/{}/{{*rest}}", P::MOUNT)
}

/// Every request under `/{P::MOUNT}/`, any method.
pub(crate) async fn serve<P: Mounted>(
    State(state): State<AppState>,
    ctx: RequestCtx,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response
where
    P::Quirk: Quirks<P>,
{
    let call = Call {
        state: &state,
        ctx: &ctx,
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let mut route = "other";
    let mut resp = match respond::<P>(&call, &mut route).await {
        Ok(resp) => resp,
        Err(e) if P::PLAIN_TEXT_ERRORS => plain_text(e),
        Err(e) => e.into_response(),
    };
    resp.extensions_mut()
        .insert(super::observe::RouteTag(route));
    resp
}

/// Serves `call`, naming what it routed to in `kind` (for the request metrics).
async fn respond<P: Mounted>(
    call: &Call<'_>,
    kind: &mut &'static str,
) -> Result<Response, ProxyError>
where
    P::Quirk: Quirks<P>,
{
    let s = P::served(&call.state.inner.protocols);
    let rest = call
        .uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(P::MOUNT))
        .ok_or_else(|| ProxyError::BadRequest(format!("not a {} path", P::ECOSYSTEM)))?;
    let route = s.protocol.route(rest)?;
    *kind = match &route {
        Route::Metadata(_) => "metadata",
        Route::Artifact(_) => "artifact",
        Route::Quirk(_) => "quirk",
        Route::NotServed => "other",
    };
    call.state.require_decidable(P::ECOSYSTEM)?;
    if let Route::Quirk(quirk) = route {
        return quirk.serve(s, call).await;
    }
    if call.method != Method::GET && !call.is_head() {
        return Err(call.not_served());
    }
    match route {
        Route::Metadata(name) => {
            let gate = Gate::new(call.state, call.ctx)?;
            gate.metadata(s, &name, call.headers, call.uri.query())
                .await
        }
        Route::Artifact(req) => {
            let gate = Gate::new(call.state, call.ctx)?;
            let origins = s.protocol.artifact_origins(&req.name);
            let how = Delivery {
                metadata_url: None,
                origins: &origins,
                on_refusal: OnRefusal::Refuse,
                head: call.is_head(),
            };
            gate.listed_artifact(s, req, how).await
        }
        Route::NotServed | Route::Quirk(_) => Err(call.not_served()),
    }
}

/// An error as a client that prints bodies verbatim (cargo) shows it best.
fn plain_text(e: ProxyError) -> Response {
    let text = format!("{e}\n");
    let mut resp = e.into_response();
    *resp.body_mut() = axum::body::Body::from(text);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
