//! Responses as plain data (built under the state lock, turned into HTTP outside it), and
//! the ARM error body `{"error":{"code","message","details"}}`.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::model::JsonBody;

#[derive(Debug)]
pub(crate) enum ReplyBody {
    Empty,
    /// Shared with the stored record it came from: a GET copies nothing.
    Json(JsonBody),
    Xml(String),
    Bytes(Bytes),
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, String)>,
    pub body: ReplyBody,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: impl Into<JsonBody>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body.into()),
        }
    }

    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }

    pub(crate) fn into_response(self) -> Response {
        let (content_type, body) = match self.body {
            ReplyBody::Empty => (None, Body::empty()),
            ReplyBody::Json(v) => (
                Some("application/json; charset=utf-8"),
                Body::from(v.text()),
            ),
            ReplyBody::Xml(s) => (Some("application/xml"), Body::from(s)),
            ReplyBody::Bytes(b) => (None, Body::from(b)),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(ct) = content_type {
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(ct),
            );
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// An ARM error answer: status, code, message and optional details.
#[derive(Debug, Clone)]
pub(crate) struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Rarely set parts, boxed to keep `Result<_, ArmError>` small.
    extra: Option<Box<ErrorExtra>>,
}

#[derive(Debug, Clone, Default)]
struct ErrorExtra {
    target: Option<String>,
    details: Vec<Value>,
    headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ArmError {
        ArmError {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut ErrorExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub(crate) fn with_details(mut self, details: Vec<Value>) -> ArmError {
        self.extra().details = details;
        self
    }

    pub(crate) fn with_target(mut self, target: impl Into<String>) -> ArmError {
        self.extra().target = Some(target.into());
        self
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> ArmError {
        self.extra().headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(extra) = &self.extra {
            if let Some(target) = &extra.target {
                error["target"] = json!(target);
            }
            if !extra.details.is_empty() {
                error["details"] = Value::Array(extra.details.clone());
            }
        }
        json!({ "error": error })
    }

    pub(crate) fn into_reply(self) -> Reply {
        let mut reply = Reply::json(self.status, self.body());
        for (name, value) in self.extra.map(|e| e.headers).unwrap_or_default() {
            reply = reply.header(name, value);
        }
        reply
    }

    pub(crate) fn not_found(kind: &str, id_path: &str, name: &str) -> ArmError {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                rg = resource_group_of(id_path).unwrap_or_default()
            ),
        )
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn user_error(message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, "UserError", message)
    }

    pub(crate) fn conflict(code: &str, message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ArmError {
        ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            message,
        )
    }
}

impl From<super::store::StoreError> for ArmError {
    fn from(e: super::store::StoreError) -> ArmError {
        ArmError::internal(format!("the emulator could not persist its state: {e}"))
    }
}

fn resource_group_of(id: &str) -> Option<String> {
    let segs: Vec<&str> = id.split('/').collect();
    segs.iter()
        .position(|s| s.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| segs.get(i + 1))
        .map(|s| s.to_string())
}
