//! The decision log's Ed25519 key: `depfw log public-key` prints its public half, `depfw
//! log verify --public-key FILE` checks the log against it.
//!
//! A hash chain alone proves nothing against someone who can write the store: they rewrite
//! a record and re-hash everything after it. So `depfw serve` makes a key the first time it
//! opens a data directory (`<data-dir>/signing-key`, mode 0600) and signs every record's
//! hash and every checkpoint with it (`decisions`). Whoever keeps a copy of the public key
//! elsewhere can tell depfw's records from anyone else's; whoever steals the private key can
//! re-sign, which is what the external checkpoints are for (README, "Provenance").
//!
//! Formats, one line each, so they can be pasted into a ticket or a config:
//! - public key: `ed25519:<base64 of the 32-byte key>` (standard alphabet, padded);
//! - private key file: `depfw-ed25519-secret:<base64 of the 32-byte seed>`;
//! - signature: base64 of the 64-byte Ed25519 signature.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The private key's file name inside the data directory.
pub const KEY_FILE: &str = "signing-key";
const SECRET_PREFIX: &str = "depfw-ed25519-secret:";
const PUBLIC_PREFIX: &str = "ed25519:";

/// A signing key that cannot be made, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} the decision log's signing key {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the decision log's signing key {} is accessible to group or others (mode {mode:o}); \
         anyone who can read it can forge the log: run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{}: {why}", what)]
    Malformed { what: String, why: String },
    #[error("no randomness for a new signing key: {0}")]
    Random(getrandom::Error),
}

fn malformed(what: impl ToString, why: impl ToString) -> KeyError {
    KeyError::Malformed {
        what: what.to_string(),
        why: why.to_string(),
    }
}

/// The log's private key.
pub struct LogKey {
    key: SigningKey,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: Debug output ends up in logs.
        write!(f, "LogKey({})", self.public().encode())
    }
}

impl LogKey {
    /// A key that lives only as long as the process (an in-memory store's log).
    pub fn ephemeral() -> Result<LogKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KeyError::Random)?;
        Ok(LogKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Loads `<data_dir>/signing-key`, making it (mode 0600) if there is none. Refuses a
    /// key file that group or others can access: that key proves nothing.
    pub(crate) fn load_or_create(data_dir: &Path) -> Result<LogKey, KeyError> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => LogKey::load(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LogKey::create(&path),
            Err(source) => Err(KeyError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Reads a key file written by [`LogKey::load_or_create`].
    pub fn load(path: &Path) -> Result<LogKey, KeyError> {
        let io = |action, source| KeyError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(|e| io("read", e))?;
        check_private(path, &meta)?;
        let text = std::fs::read_to_string(path).map_err(|e| io("read", e))?;
        let what = path.display();
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| malformed(&what, format!("does not start with `{SECRET_PREFIX}`")))?;
        let seed: [u8; 32] = BASE64
            .decode(encoded)
            .map_err(|e| malformed(&what, e))?
            .try_into()
            .map_err(|_| malformed(&what, "the seed is not 32 bytes"))?;
        Ok(LogKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    fn create(path: &Path) -> Result<LogKey, KeyError> {
        let key = LogKey::ephemeral()?;
        let line = format!(
            "{SECRET_PREFIX}{}\n",
            BASE64.encode(key.key.to_bytes().as_slice())
        );
        let mut options = std::fs::OpenOptions::new();
        // create_new: two processes racing on a fresh data dir must not both win.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io = |source| KeyError::Io {
            action: "create",
            path: path.to_owned(),
            source,
        };
        let mut file = options.open(path).map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// Base64 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        BASE64.encode(self.key.sign(message).to_bytes())
    }
}

fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyError> {
    match exposed_mode(meta) {
        Some(mode) => Err(KeyError::Exposed {
            path: path.to_owned(),
            mode,
        }),
        None => Ok(()),
    }
}

/// The file's permission bits when a group or other OS user may access it (read a secret,
/// or write their own); `None` when only the owner may. Windows has no mode bits; its ACLs
/// are the operator's to set.
pub(crate) fn exposed_mode(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The log's public key, as `depfw log public-key` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// `ed25519:<base64>`.
    pub fn encode(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }

    /// Parses [`PublicKey::encode`]'s format (surrounding whitespace ignored).
    pub fn decode(text: &str) -> Result<PublicKey, KeyError> {
        let what = "public key";
        let encoded = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            malformed(
                what,
                format!("expected `{PUBLIC_PREFIX}<base64>`, as `depfw log public-key` prints"),
            )
        })?;
        let bytes: [u8; 32] = BASE64
            .decode(encoded)
            .map_err(|e| malformed(what, e))?
            .try_into()
            .map_err(|_| malformed(what, "not 32 bytes"))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| malformed(what, e))
    }

    /// Reads a file holding [`PublicKey::encode`]'s line.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        PublicKey::decode(&text).map_err(|e| malformed(path.display(), e))
    }

    /// Whether `signature` (base64) is this key's signature over `message`. Strict
    /// verification: no malleable or small-order variants.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = BASE64.decode(signature) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = LogKey::load_or_create(dir.path()).unwrap();
        let again = LogKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public(), again.public());
        let sig = first.sign(b"m");
        assert!(again.public().verifies(b"m", &sig));
        assert!(!again.public().verifies(b"n", &sig));
        let text = first.public().encode();
        assert_eq!(
            PublicKey::decode(&format!("{text}\n")).unwrap(),
            first.public()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = LogKey::load_or_create(dir.path()).unwrap_err().to_string();
            assert!(err.contains("accessible to group or others"), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
