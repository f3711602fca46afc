//! API keys: their format, their scopes and how a presented key is checked.
//!
//! A key reads `tph_<id>_<secret>`: the id (12 hex digits) finds the record
//! without scanning, the secret (43 base64url characters, 256 random bits)
//! proves possession. Only the SHA-256 of the whole string is stored; a fast
//! hash is enough because the secret is random (there is no password to guess
//! from a dictionary), and the comparison is constant-time so that response
//! times reveal nothing about how much of a guess was right.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// What a key may do. Scopes are independent: a key that ingests events need
/// not read recommendations, and the dashboard needs no write access.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Recommendations, lists, catalogue and user reads, analytics.
    Read,
    /// Ingestion: items, users and events (create, update, delete).
    Write,
    /// The tenant's operations: training, experiments.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The name used in key records and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// The scope named `name`, if any.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The scope a `/v1` request needs: reads and recommendations need `read`
    /// (recommendations arrive as `POST /v1/recommend` too), training and
    /// experiment changes `admin`, every other change `write`.
    pub fn required(method: &axum::http::Method, path: &str) -> Scope {
        use axum::http::Method;
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Scope::Read;
        }
        let rest = path.strip_prefix("/v1").unwrap_or(path);
        if rest == "/recommend" {
            Scope::Read
        } else if rest.starts_with("/admin/")
            || rest == "/experiments"
            || rest.starts_with("/experiments/")
        {
            Scope::Admin
        } else {
            Scope::Write
        }
    }
}

/// Prefix of every key, so that leaked keys are easy to find in logs and code.
pub const KEY_PREFIX: &str = "tph_";
/// Hex digits of a key id.
const ID_LEN: usize = 12;
/// Random bytes of a secret.
const SECRET_BYTES: usize = 32;

/// A newly made key: the string to give the client once, and what to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The id, part of the string.
    pub id: String,
    /// The whole key; shown once, never stored.
    pub key: String,
    /// SHA-256 of `key`, hex.
    pub hash: String,
}

/// Fills `buf` from the operating system's random source.
fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("the system's random source failed: {e}"))
}

/// A fresh random key id.
pub fn new_key_id() -> Result<String, String> {
    let mut bytes = [0u8; ID_LEN / 2];
    random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh secret for key `id`.
pub fn new_key(id: &str) -> Result<NewKey, String> {
    let mut secret = [0u8; SECRET_BYTES];
    random_bytes(&mut secret)?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    Ok(NewKey {
        id: id.to_owned(),
        hash: hash_key(&key),
        key,
    })
}

/// Hex SHA-256 of a key string.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id inside a key string, if it has the key format.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some(id)
}

/// Whether `key` hashes to `stored_hash`, in time independent of where they differ.
pub fn key_matches(key: &str, stored_hash: &str) -> bool {
    bool::from(hash_key(key).as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// Whether two secrets are equal, in time independent of where they differ
/// (for keys configured in plain text: `server.api_key`, `server.admin_key`).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn keys_are_random_parse_back_and_match_only_themselves() {
        let id = new_key_id().unwrap();
        let a = new_key(&id).unwrap();
        let b = new_key(&id).unwrap();
        assert_ne!(a.key, b.key, "secrets are random");
        assert_eq!(key_id(&a.key), Some(id.as_str()));
        assert!(a.key.len() > 50, "{}", a.key);
        assert!(key_matches(&a.key, &a.hash));
        assert!(!key_matches(&b.key, &a.hash));
        let mut tampered = a.key.clone();
        tampered.pop();
        assert!(!key_matches(&tampered, &a.hash));
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn key_ids_need_the_format() {
        for bad in [
            "",
            "tph_",
            "tph_abc_def",
            "xyz_0123456789ab_s",
            "tph_0123456789ab_",
            "tph_0123456789ag_s",
        ] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
        assert_eq!(key_id("tph_0123456789ab_s_t"), Some("0123456789ab"));
    }

    #[test]
    fn hash_is_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn routes_need_their_scope() {
        let cases = [
            (Method::GET, "/v1/recommend/u1", Scope::Read),
            (Method::POST, "/v1/recommend", Scope::Read),
            (Method::GET, "/v1/analytics/ctr", Scope::Read),
            (Method::GET, "/v1/experiments", Scope::Read),
            (Method::POST, "/v1/events", Scope::Write),
            (Method::PATCH, "/v1/items/a", Scope::Write),
            (Method::DELETE, "/v1/users/a", Scope::Write),
            (Method::POST, "/v1/admin/train", Scope::Admin),
            (Method::POST, "/v1/experiments", Scope::Admin),
            (Method::POST, "/v1/experiments/x/start", Scope::Admin),
            (Method::DELETE, "/v1/experiments/x", Scope::Admin),
        ];
        for (method, path, scope) in cases {
            assert_eq!(Scope::required(&method, path), scope, "{method} {path}");
        }
    }
}
