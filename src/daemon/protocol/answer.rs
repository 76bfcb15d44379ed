//! The answers: a [`Response`] (ok with data, or an error with its code, kind and
//! typed detail) and the typed data of each action.

use super::*;

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
    /// Extension, sent only to our client: what it may act on, as data (the MFA
    /// device, the SSO session to log in, the AWS error code).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub detail: Option<crate::error::Detail>,
}

impl ErrorBody {
    /// The error this body stands for: its kind when sent, else the code's (see
    /// [`kind_of`]).
    pub fn to_error(&self) -> Error {
        let kind = match &self.kind {
            Some(k) => Kind::parse(k),
            None => kind_of(self.code),
        };
        let mut err = Error::new(kind, self.message.clone());
        err.hint = self.hint.clone();
        err.detail = self.detail.clone();
        err
    }
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

    /// A successful answer carrying `data`.
    pub fn with<T: Serialize>(request_id: &str, data: &T) -> Self {
        Self::ok(request_id, serde_json::to_value(data).ok())
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
                detail: None,
            }),
        }
    }

    /// An error answer for `err`, with its kind and hint for a client that speaks our
    /// extensions.
    pub fn from_error(request_id: &str, extended: bool, code: u16, err: &Error) -> Self {
        let mut r = Self::err(request_id, code, err.message.clone());
        if extended && let Some(body) = r.error.as_mut() {
            body.kind = Some(err.kind.as_str().to_string());
            body.hint = err.hint.clone();
            body.detail = err.detail.clone();
        }
        r
    }

    /// A 400 for a line that is not a request: it gets a fresh UUID.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::err(&uuid::Uuid::new_v4().to_string(), BAD_REQUEST, message)
    }

    /// The error a failed response stands for.
    pub fn error(&self) -> Error {
        match &self.error {
            Some(body) => body.to_error(),
            None => Error::daemon("the daemon answered with an error but gave none"),
        }
    }

    /// The answer's data as `T`, or the error it stands for. `what` names the answer
    /// in the message when the data cannot be read.
    pub fn into_data<T: DeserializeOwned>(mut self, what: &str) -> crate::error::Result<T> {
        if !self.ok {
            return Err(self.error());
        }
        let data = self.data.take().unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| {
            Error::daemon(format!(
                "the daemon sent a {what} answer elhaz cannot read: {e}"
            ))
        })
    }

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

/// The data of a `credentials` (and `refresh`) answer. The original's four fields;
/// the others are our extensions, sent only to our client.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct CredentialsData {
    pub access_key: String,
    pub secret_key: String,
    pub token: String,
    pub expiry_time: String,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub lifetime_seconds: Option<i64>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub region: Option<String>,
    /// Which caller context served it (for a session built from these).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub context_ref: Option<String>,
    /// What helpers (MFA.command, credential_process, SAML or token commands) said on
    /// stderr while the daemon fetched these, control characters escaped.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub notes: Option<Vec<String>>,
}

impl fmt::Debug for CredentialsData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsData")
            .field("access_key", &self.access_key)
            .field("expiry_time", &self.expiry_time)
            .finish_non_exhaustive()
    }
}

impl Drop for CredentialsData {
    fn drop(&mut self) {
        self.secret_key.zeroize();
        self.token.zeroize();
    }
}

/// The data of an `add` or `remove` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Named {
    pub config: String,
}

/// One share, as `share`, `unshare` and `status` describe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShareInfo {
    pub socket: String,
    pub config: String,
    pub whoami: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// The data of a `status` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusData {
    pub version: String,
    pub pid: u32,
    pub uptime_seconds: u64,
    pub socket: String,
    /// One object per session (see daemon::cache's `describe`).
    pub sessions: Vec<Value>,
    pub shares: Vec<ShareInfo>,
}
