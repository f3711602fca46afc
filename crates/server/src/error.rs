//! Errors, as the HTTP API reports them and as starting a server reports them.
//!
//! Every failure a client can see goes through [`ApiError`], and [`ApiError::status_and_code`]
//! is the one table that decides its HTTP status and machine-readable code, so that
//! the same mistake always gets the same answer. Internal failures are logged with
//! their detail and answered with a generic message: clients cannot act on a disk
//! error's text, and it may reveal paths.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tephra_core::ValidationError;
use tephra_store::StoreError;
use utoipa::ToSchema;

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is out of range; the field names the setting.
    #[error("invalid configuration: {0}")]
    Config(ValidationError),
    /// The store failed while loading.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store's records contradict each other (an id without an index, an
    /// event naming an index nobody has), so the state cannot be rebuilt.
    #[error("the store is inconsistent: {0}")]
    Inconsistent(String),
}

/// A failed request, answered as `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (syntax error or truncated), with line and column.
    #[error("{0}")]
    MalformedJson(String),
    /// The body is not UTF-8 text.
    #[error("{0}")]
    InvalidUtf8(String),
    /// The JSON has the wrong shape: a wrong type, a missing or an unknown field.
    #[error("{message}")]
    InvalidField {
        /// Path of the field at fault, e.g. `[3].value`.
        field: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// A value broke a rule of the data model (bad id, negative value, ...).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The body is larger than `server.max_body_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A batch has more elements than `server.max_batch`.
    #[error("the batch has {len} elements; the limit is {max} (split it into several requests)")]
    BatchTooLarge {
        /// Elements sent.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The named item or user does not exist.
    #[error("{message}")]
    NotFound {
        /// Path of the field that named it, when it came from a body.
        field: Option<String>,
        /// Which id was not found.
        message: String,
    },
    /// No route has this path.
    #[error("no route matches {method} {path}; see /openapi.json for the routes")]
    RouteNotFound {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("{path} does not accept {method}; see /openapi.json for the methods it accepts")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
    /// The request contradicts the current state (a name already taken, an
    /// experiment already running on the scene).
    #[error("{message}")]
    Conflict {
        /// The field at fault.
        field: Option<String>,
        /// What conflicts.
        message: String,
    },
    /// A query parameter is unknown, repeated or out of range.
    #[error("{message}")]
    InvalidQuery {
        /// The parameter at fault.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// A path segment could not be decoded.
    #[error("{0}")]
    InvalidPath(String),
    /// The API key is missing or wrong.
    #[error(
        "this route requires the header `Authorization: Bearer <api key>` with the configured key"
    )]
    Unauthorized,
    /// The key is not valid: unknown, mistyped, rotated or revoked.
    #[error("{0}")]
    InvalidKey(String),
    /// The key is valid but may not do this (scope, tenant, admin route).
    #[error("{0}")]
    Forbidden(String),
    /// The key used up its rate limit; retry after the given seconds.
    #[error("this key sent more requests than its rate limit allows; retry after {retry_after} s")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after: u64,
    },
    /// Too many CPU-heavy requests are running; retry after the given seconds.
    #[error("the server is at capacity for this kind of request; retry after {retry_after} s")]
    Overloaded {
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// The request took longer than `server.request_timeout_secs`.
    #[error("the request took longer than {secs} s and was abandoned; a write may still complete")]
    Timeout {
        /// The configured timeout.
        secs: u64,
    },
    /// The store's disk is full; nothing of the request was stored.
    #[error("the server's disk is full, so nothing of this request was stored; retry once the operator has freed space")]
    StorageFull,
    /// The store's disk failed; nothing of the request was stored.
    #[error("the store could not write this request (a disk error; the server log has the cause), so nothing of it was stored; retry later")]
    StorageFailed,
    /// The service cannot answer right now (store busy or shutting down); retry later.
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable,
    /// The service is not ready to serve (still loading or shutting down).
    #[error("{0}")]
    NotReady(String),
    /// Something failed inside the service; the detail is in the server log.
    #[error("internal error; the detail is in the server log")]
    Internal,
}

impl ApiError {
    /// The one table from error to HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::InvalidUtf8(_) => (StatusCode::BAD_REQUEST, "invalid_utf8"),
            Self::InvalidQuery { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
            Self::Unauthorized | Self::InvalidKey(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::NotFound { .. } | Self::RouteNotFound { .. } => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Invalid(e) if e.code == "duplicate_id" => (StatusCode::CONFLICT, "duplicate_id"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::BatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            Self::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            Self::Invalid(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code),
            Self::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            Self::StorageFailed => (StatusCode::SERVICE_UNAVAILABLE, "storage_failed"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The field or parameter at fault, if one can be named.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. }
            | Self::NotFound { field, .. }
            | Self::Conflict { field, .. } => field.as_deref(),
            Self::Invalid(e) => e.field.as_deref(),
            Self::InvalidQuery { param, .. } => Some(param),
            _ => None,
        }
    }

    /// A missing item or user, named by a path or query id.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::NotFound {
            field: None,
            message: format!("no {kind} has the id `{}`", id.escape_debug()),
        }
    }

    /// A query parameter error.
    pub fn query(param: &str, message: impl Into<String>) -> Self {
        Self::InvalidQuery {
            param: param.to_owned(),
            message: message.into(),
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
                field: self.field().map(str::to_owned),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Invalid(e) => Self::Invalid(e),
            StoreError::Io(ref detail) => {
                tracing::error!(error = %err, "a store operation failed");
                if is_disk_full(detail) {
                    Self::StorageFull
                } else {
                    Self::StorageFailed
                }
            }
            StoreError::Locked(_) | StoreError::Closed => {
                tracing::error!(error = %err, "store unavailable");
                Self::Unavailable
            }
            StoreError::Corrupt(_) | StoreError::UnsupportedVersion { .. } => {
                tracing::error!(error = %err, "store failure");
                Self::Internal
            }
        }
    }
}

/// Whether a storage failure's detail is a full disk (`ENOSPC`, whatever the
/// layer that reported it).
fn is_disk_full(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    detail.contains("no space left on device")
        || detail.contains("os error 28")
        || detail.contains("storage full")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let mut response = (status, axum::Json(self.body())).into_response();
        match &self {
            Self::Unauthorized | Self::InvalidKey(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after } | Self::Overloaded { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

/// Error response body.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for people (`message`) and programs (`code`, `field`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_id`, `not_found`, `malformed_json`.
    pub code: String,
    /// What to change, in words.
    pub message: String,
    /// The field, path (`[3].value`) or query parameter at fault, when one can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_every_kind_to_its_status() {
        let v = |code| ApiError::Invalid(ValidationError::field(code, "[2].id", "dup"));
        let cases = [
            (ApiError::MalformedJson("x".into()), 400, "malformed_json"),
            (ApiError::InvalidUtf8("x".into()), 400, "invalid_utf8"),
            (ApiError::query("n", "bad"), 400, "invalid_query"),
            (ApiError::InvalidPath("x".into()), 400, "invalid_path"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::InvalidKey("x".into()), 401, "unauthorized"),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (
                ApiError::RateLimited { retry_after: 2 },
                429,
                "rate_limited",
            ),
            (ApiError::Overloaded { retry_after: 1 }, 503, "overloaded"),
            (ApiError::not_found("item", "a"), 404, "not_found"),
            (
                ApiError::RouteNotFound {
                    method: "GET".into(),
                    path: "/x".into(),
                },
                404,
                "not_found",
            ),
            (
                ApiError::MethodNotAllowed {
                    method: "PUT".into(),
                    path: "/x".into(),
                },
                405,
                "method_not_allowed",
            ),
            (v("duplicate_id"), 409, "duplicate_id"),
            (ApiError::BodyTooLarge { limit: 1 }, 413, "body_too_large"),
            (
                ApiError::BatchTooLarge { len: 2, max: 1 },
                413,
                "batch_too_large",
            ),
            (
                ApiError::InvalidField {
                    field: None,
                    message: "x".into(),
                },
                422,
                "invalid_field",
            ),
            (v("invalid_id"), 422, "invalid_id"),
            (ApiError::Timeout { secs: 1 }, 503, "timeout"),
            (ApiError::Unavailable, 503, "unavailable"),
            (ApiError::StorageFull, 507, "storage_full"),
            (ApiError::StorageFailed, 503, "storage_failed"),
            (ApiError::NotReady("x".into()), 503, "not_ready"),
            (ApiError::Internal, 500, "internal"),
        ];
        for (err, status, code) in cases {
            assert_eq!(
                err.status_and_code(),
                (StatusCode::from_u16(status).unwrap(), code),
                "{err:?}"
            );
            assert_eq!(err.body().error.code, code);
        }
    }

    #[test]
    fn validation_errors_keep_code_and_field() {
        let err = ApiError::from(StoreError::Invalid(
            ValidationError::field("invalid_value", "value", "negative").at_index(3),
        ));
        let body = err.body();
        assert_eq!(body.error.code, "invalid_value");
        assert_eq!(body.error.field.as_deref(), Some("[3].value"));
        assert!(body.error.message.contains("element 3"));
    }

    #[test]
    fn internal_failures_hide_their_detail() {
        for store_err in [
            StoreError::Io("/secret/path: disk full".into()),
            StoreError::Corrupt("/secret/path".into()),
            StoreError::Locked("/secret/path".into()),
            StoreError::Closed,
        ] {
            let err = ApiError::from(store_err);
            let (status, _) = err.status_and_code();
            assert!(status.is_server_error());
            assert!(!err.body().error.message.contains("secret"));
        }
    }

    #[test]
    fn disk_errors_say_whether_the_disk_is_full() {
        let full = ApiError::from(StoreError::Io(
            "committing: I/O error: No space left on device (os error 28)".into(),
        ));
        assert_eq!(full, ApiError::StorageFull);
        assert_eq!(full.status_and_code().0, StatusCode::INSUFFICIENT_STORAGE);
        assert!(full
            .to_string()
            .contains("nothing of this request was stored"));
        let failed = ApiError::from(StoreError::Io("I/O error: Input/output error".into()));
        assert_eq!(failed, ApiError::StorageFailed);
        assert!(failed.to_string().contains("nothing of it was stored"));
    }

    #[test]
    fn field_is_omitted_when_none() {
        let json = serde_json::to_value(ApiError::Unauthorized.body()).unwrap();
        assert_eq!(json["error"]["code"], "unauthorized");
        assert!(json["error"].get("field").is_none());
        let json = serde_json::to_value(ApiError::query("limit", "too big").body()).unwrap();
        assert_eq!(json["error"]["field"], "limit");
    }

    #[test]
    fn unauthorized_asks_for_bearer() {
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
