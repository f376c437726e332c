//! Every API error is JSON: `{"error": {"code", "message", "field"?}}`, with a
//! status that says whose fault it was.

use crate::operations::OperationError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorDetail,
    pub retry_after_seconds: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `unauthorized`, `not-found`, `bad-json`, `invalid`,
    /// `conflict` codes such as `paused`, `too-soon`, `cursor-expired`
    /// (410), `database-unavailable`, `internal`, ...
    pub code: String,
    /// For a person: what was wrong and what is allowed.
    pub message: String,
    /// The request field at fault (`schedule.timezone`, `config`, ...), if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorDetail { code: code.into(), message: message.into(), field: None },
            retry_after_seconds: None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorDetail { code: "invalid".into(), message: format!("{field}: {message}"), field: Some(field) },
            retry_after_seconds: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
    }
}

impl From<OperationError> for ApiError {
    fn from(error: OperationError) -> ApiError {
        match error {
            OperationError::NotFound { .. } => ApiError::not_found(error.to_string()),
            OperationError::Invalid { field, message } => ApiError::invalid(field, message),
            OperationError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            OperationError::TooSoon { message, retry_after_seconds } => ApiError {
                retry_after_seconds: Some(retry_after_seconds),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-soon", message)
            },
            OperationError::Internal(error) => error.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        // The detail goes to the log, not to the client: it may name internals.
        if crate::store::is_unavailable(&error) {
            tracing::warn!(error = %format!("{error:#}"), "API request failed: the database cannot be used");
            return ApiError {
                retry_after_seconds: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "the database cannot be used right now (unreachable, or its disk full); try again shortly",
                )
            };
        }
        tracing::error!(error = %format!("{error:#}"), "API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; see its log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(ErrorBody { error: self.body })).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
