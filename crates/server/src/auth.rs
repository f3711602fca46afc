//! API key check for the `/v1` routes.
//!
//! One key for now (scopes and tenants come later). Operational routes (health,
//! metrics, docs) stay open so that probes and scrapers need no secret.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Middleware: when `server.api_key` is set, requires `Authorization: Bearer <key>`.
pub async fn require_api_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = state.config().server.api_key.as_deref() {
        if !bearer_matches(req.headers(), expected) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

/// Whether the headers carry `expected` as a bearer token.
///
/// The comparison takes the same time wherever the first difference is, so that
/// response times do not reveal the key byte by byte.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(token.trim().as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accepts_only_the_exact_bearer_key() {
        let key = "0123456789abcdef";
        assert!(bearer_matches(
            &headers(Some("Bearer 0123456789abcdef")),
            key
        ));
        assert!(bearer_matches(
            &headers(Some("bearer 0123456789abcdef")),
            key
        ));
        for bad in [
            None,
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic 0123456789abcdef"),
            Some("Bearer 0123456789abcdeF"),
        ] {
            assert!(!bearer_matches(&headers(bad), key), "{bad:?}");
        }
        assert!(!bearer_matches(
            &headers(Some("Bearer 0123456789abcdef0")),
            key
        ));
    }
}
