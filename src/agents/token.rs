//! Agent tokens: the secret an agent sends in the `Authorization` header (or puts in its
//! mirror URL, `/a/<token>/npm/`).
//!
//! A token is `dfw_` followed by 32 CSPRNG bytes in unpadded URL-safe base64 (43 chars), so
//! it fits a URL path segment as is. depfw keeps only its SHA-256: a leaked store does not
//! leak working tokens. The first 8 bytes of that hash, in hex, are the token's *lookup id*:
//! not secret (knowing them does not help forge a token), they find the agent without a
//! scan; the full hash is then compared in constant time.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every depfw token starts with, so that secret scanners can recognise one.
pub(crate) const TOKEN_PREFIX: &str = "dfw_";
/// Random bytes per token.
const SECRET_BYTES: usize = 32;
/// Length of the base64 part (32 bytes, unpadded).
const SECRET_CHARS: usize = 43;

/// A secret agent token. Shown once, when created or rotated; its `Debug` never prints it
/// and it has no `Display`, so it cannot slip into a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// The SHA-256 of a token: what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.lookup_id())
    }
}

impl TokenHash {
    /// The non-secret index key (16 hex chars).
    pub(crate) fn lookup_id(&self) -> String {
        hex::encode(&self.0[..8])
    }

    pub(crate) fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn from_hex(text: &str) -> Option<TokenHash> {
        let bytes = hex::decode(text).ok()?;
        Some(TokenHash(bytes.try_into().ok()?))
    }

    /// Constant-time equality: the time taken does not depend on where the hashes differ.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Why a string is not a token (before any store lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("an agent token starts with `{TOKEN_PREFIX}`")]
    Prefix,
    #[error("an agent token is `{TOKEN_PREFIX}` and {SECRET_CHARS} URL-safe base64 characters")]
    Body,
}

impl Token {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        Ok(Token(format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(secret)
        )))
    }

    /// Checks the shape of a presented token (a path segment from a request).
    pub fn parse(text: &str) -> Result<Token, MalformedToken> {
        let body = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(MalformedToken::Prefix)?;
        let decoded = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| MalformedToken::Body)?;
        if body.len() != SECRET_CHARS || decoded.len() != SECRET_BYTES {
            return Err(MalformedToken::Body);
        }
        Ok(Token(text.to_owned()))
    }

    /// The secret itself, for showing it once to the person who created it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_well_formed_and_round_trip() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), TOKEN_PREFIX.len() + SECRET_CHARS);
        assert_eq!(Token::parse(a.expose_secret()).unwrap(), a);
        assert_eq!(format!("{a:?}"), "Token(****)");
        assert!(!format!("{:?}", a.hash()).contains(&a.hash().to_hex()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate().unwrap();
        let body = &good.expose_secret()[TOKEN_PREFIX.len()..];
        assert_eq!(Token::parse(body), Err(MalformedToken::Prefix));
        assert_eq!(
            Token::parse(&format!("{TOKEN_PREFIX}{}", &body[1..])),
            Err(MalformedToken::Body)
        );
        assert_eq!(
            Token::parse(&format!("{TOKEN_PREFIX}{}+", &body[1..])),
            Err(MalformedToken::Body)
        );
        assert_eq!(Token::parse(""), Err(MalformedToken::Prefix));
    }

    #[test]
    fn hash_comparison_is_exact() {
        let hash = Token::generate().unwrap().hash();
        let mut last_byte_differs = hash;
        last_byte_differs.0[31] ^= 1;
        assert!(hash.matches(&hash));
        assert!(!hash.matches(&last_byte_differs));
        assert_eq!(hash.lookup_id(), last_byte_differs.lookup_id());
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(TokenHash::from_hex("abcd"), None);
    }
}
