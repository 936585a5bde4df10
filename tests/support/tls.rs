//! A throwaway certificate authority for the HTTPS tests: a CA, and a server certificate it
//! signed for `127.0.0.1` and `localhost`, written as PEM files the way an operator would
//! keep them (the key readable by its owner alone).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// The PEM files of one test CA and its server certificate.
pub struct TestCa {
    /// The CA certificate clients are told to trust.
    pub ca: PathBuf,
    /// The server's certificate (`server.tls-cert`).
    pub cert: PathBuf,
    /// The server's private key (`server.tls-key`), mode 0600.
    pub key: PathBuf,
    /// The CA certificate's PEM text.
    pub ca_pem: String,
}

impl TestCa {
    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
    pub fn new(dir: &Path) -> TestCa {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "depfw test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "depfw test server");
        let server_cert = params.signed_by(&server_key, &ca_cert, &ca_key).unwrap();

        let (ca, cert, key) = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        let ca_pem = ca_cert.pem();
        std::fs::write(&ca, &ca_pem).unwrap();
        std::fs::write(&cert, server_cert.pem()).unwrap();
        std::fs::write(&key, server_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        TestCa {
            ca,
            cert,
            key,
            ca_pem,
        }
    }

    /// The `[server]` lines that turn HTTPS on with this certificate.
    pub fn server_toml(&self) -> String {
        format!(
            "tls-cert = \"{}\"\ntls-key = \"{}\"\n",
            self.cert.display(),
            self.key.display()
        )
    }

    /// A client that trusts this CA (and only the built-in roots besides).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap()
    }
}
