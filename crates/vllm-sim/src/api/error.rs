//! vLLM's error JSON: `{"error": {"message", "type", "param", "code"}}`, status = `code`.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error answered the way vLLM 0.33 answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInfo<'a>,
}

#[derive(Serialize)]
struct ErrorInfo<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: u16,
}

impl ApiError {
    /// A handler-side validation failure (`BadRequestError`, 400).
    pub(crate) fn bad_request(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "BadRequestError",
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    /// FastAPI/pydantic body validation (type is the HTTP phrase "Bad Request").
    pub(crate) fn validation(location: &str, error_type: &str, msg: &str) -> ApiError {
        let parts: Vec<String> = location
            .split('.')
            .map(|part| format!("'{part}'"))
            .collect();
        // A Python tuple: one element needs its trailing comma.
        let loc = if parts.len() == 1 {
            format!("{},", parts[0])
        } else {
            parts.join(", ")
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "Bad Request",
            message: format!(
                "1 validation error:\n  {{'type': '{error_type}', 'loc': ({loc}), 'msg': '{msg}'}}"
            ),
            param: Some(location.to_owned()),
        }
    }

    pub(crate) fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "NotFoundError",
            message: format!("The model `{model}` does not exist."),
            param: Some("model".to_owned()),
        }
    }

    /// An `HTTPException`: the type is the HTTP reason phrase.
    pub(crate) fn http(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: status.canonical_reason().unwrap_or("Error"),
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "InternalServerError",
            message: message.into(),
            param: None,
        }
    }

    /// The JSON body, also used inside an SSE `data:` line after a stream has started.
    pub(crate) fn body(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: ErrorInfo {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.status.as_u16(),
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
