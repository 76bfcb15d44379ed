//! Wire protocol v1: one JSON request line, one JSON response line, per connection.
//! Compatible with the original elhaz in both directions for its six actions
//! (add, credentials, list, remove, whoami, kill). Our extensions live inside
//! `payload` and `data` (and, for our own client only, inside `error`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

pub const VERSION: u32 = 1;
/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

pub const BAD_REQUEST: u16 = 400;
pub const FORBIDDEN: u16 = 403;
pub const NOT_FOUND: u16 = 404;
pub const CONFLICT: u16 = 409;
pub const INTERNAL: u16 = 500;

fn default_version() -> u32 {
    VERSION
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_version")]
    pub version: u32,
    pub request_id: String,
    pub action: String,
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// Requests can carry a caller context (source keys) and MFA codes: Debug shows the
/// payload's keys only.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("version", &self.version)
            .field("request_id", &self.request_id)
            .field("action", &self.action)
            .field("payload", &self.payload.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Request {
    pub fn new(action: &str, payload: Map<String, Value>) -> Self {
        Request {
            version: VERSION,
            request_id: uuid::Uuid::new_v4().to_string(),
            action: action.to_string(),
            payload,
        }
    }

    /// Parses one request line. The error is the message of a 400 answer.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let req: Request = serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
        if req.version != VERSION {
            return Err(format!(
                "bad request: unsupported version {} (this daemon speaks {VERSION})",
                req.version
            ));
        }
        if req.request_id.is_empty() {
            return Err("bad request: empty request_id".into());
        }
        Ok(req)
    }

    /// A string field of the payload.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    /// Whether the request comes from a client that speaks our extensions.
    pub fn extended(&self) -> bool {
        self.payload.contains_key("ext")
            || self.payload.contains_key("context")
            || self.payload.contains_key("autoadd")
            || self.payload.contains_key("min_remaining_seconds")
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub version: u32,
    pub request_id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Responses can carry credentials: Debug shows only the shape.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("request_id", &self.request_id)
            .field("ok", &self.ok)
            .field("data", &self.data.as_ref().map(|_| "…"))
            .field("error", &self.error)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: u16,
    pub message: String,
    /// Extension, sent only to our client: the error kind (decides the exit code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Extension, sent only to our client: the command that fixes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Response {
    pub fn ok(request_id: &str, data: Option<Value>) -> Self {
        Response {
            version: VERSION,
            request_id: request_id.to_string(),
            ok: true,
            data,
            error: None,
        }
    }

    pub fn err(request_id: &str, code: u16, message: impl Into<String>) -> Self {
        Response {
            version: VERSION,
            request_id: request_id.to_string(),
            ok: false,
            data: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
                kind: None,
                hint: None,
            }),
        }
    }

    /// A 400 for a line that is not a request: it gets a fresh UUID.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::err(&uuid::Uuid::new_v4().to_string(), BAD_REQUEST, message)
    }

    /// One line of JSON, newline included.
    /// The response as one line. Room for a credentials answer is taken up front, so
    /// the line is not moved while it grows (each move would leave a copy of the
    /// secrets behind in freed memory); zeroize it once written.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8192);
        if serde_json::to_writer(&mut v, self).is_err() {
            v.zeroize();
            v.extend_from_slice(b"{}");
        }
        v.push(b'\n');
        v
    }

    /// Overwrites every string in `data` (the credentials of a `credentials` answer)
    /// before the response is freed.
    pub fn wipe(&mut self) {
        if let Some(d) = &mut self.data {
            wipe_value(d);
        }
    }
}

/// Overwrites every string in `v`, at any depth, with zeroes and empties it.
pub fn wipe_value(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_value),
        Value::Object(m) => m.values_mut().for_each(wipe_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let r = Request::parse(br#"{"request_id":"x","action":"list"}"#).unwrap();
        assert_eq!(r.version, 1);
        assert!(r.payload.is_empty());
        assert!(Request::parse(br#"{"request_id":"x","action":"list","extra":1}"#).is_err());
        assert!(Request::parse(b"not json").is_err());
        assert!(Request::parse(br#"{"version":2,"request_id":"x","action":"list"}"#).is_err());
    }

    #[test]
    fn absent_fields_are_omitted() {
        let ok = String::from_utf8(Response::ok("id", None).to_line()).unwrap();
        assert_eq!(ok, "{\"version\":1,\"request_id\":\"id\",\"ok\":true}\n");
        let err = String::from_utf8(Response::err("id", 404, "nope").to_line()).unwrap();
        assert_eq!(
            err,
            "{\"version\":1,\"request_id\":\"id\",\"ok\":false,\"error\":{\"code\":404,\"message\":\"nope\"}}\n"
        );
    }
}
