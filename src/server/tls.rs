//! HTTPS for `depfw serve`: with `server.tls-cert` and `server.tls-key` set, the mirror
//! (and a TCP admin listener) speak TLS, so agent tokens, the admin token and the packages
//! themselves cross the network encrypted, and clients verify who they talk to.
//!
//! An agent sandbox that reaches depfw over a network (another host, a VM, a container
//! bridge) would otherwise send its `Authorization` header in clear to anyone on the path.
//! Clients trust depfw's certificate the way they trust any private registry's: npm
//! `cafile`, pip `--cert` / `PIP_CERT`, uv `SSL_CERT_FILE`, cargo `http.cainfo` (the README's
//! "HTTPS" section).
//!
//! Only HTTP/1.1 is offered (ALPN `http/1.1`): the connection loop in `server::listener` is
//! hyper's HTTP/1 server. The handshake runs in the connection's own task under the header
//! deadline (`server.header-timeout-secs`), so a client that opens a socket and never
//! finishes the handshake holds one slot for that long, like a slow request, and never the
//! accept loop. The private key must be readable by depfw's user alone, as the admin token
//! and the signing key are: a key other users can read proves nothing.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, crypto::ring};
pub(crate) use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Why the certificate or key cannot be used; each names the file and the key that set it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("server.tls-cert: cannot read certificates from {path}: {detail}")]
    Cert { path: String, detail: String },
    #[error("server.tls-cert: {path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCert { path: String },
    #[error("server.tls-key: cannot read a PEM private key from {path}: {detail}")]
    Key { path: String, detail: String },
    #[error(
        "server.tls-key: {path} is accessible to group or others (mode {mode:o}); \
         `chmod 600` it and run depfw as its own user"
    )]
    KeyExposed { path: String, mode: u32 },
    #[error("server.tls-cert / server.tls-key: {0}")]
    Rejected(String),
}

/// The TLS acceptor for `files`: the certificate chain (leaf first) and its private key.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rejected(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Rejected(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert { path: shown });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| TlsError::Key {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    if let Some(mode) = crate::store::signing::exposed_mode(&meta) {
        return Err(TlsError::KeyExposed { path: shown, mode });
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: shown,
        detail: e.to_string(),
    })
}
