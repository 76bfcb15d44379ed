//! Wire protocol v1: one JSON request line, one JSON response line, per connection.
//! Compatible with the original elhaz in both directions for its six actions
//! (add, credentials, list, remove, whoami, kill). Our extensions live inside
//! `payload` and `data` (and, for our own client only, inside `error`).
//!
//! Owns the typed requests ([`Request`], tagged by `action` with `payload` as its
//! content), the typed answers' data, and the one table between error kinds and codes.
//! Knows nothing of sockets, the cache or the terminal.

use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::error::{Error, Kind};
use crate::sensitive::Sensitive;

mod answer;
pub use answer::*;

pub const VERSION: u32 = 1;
/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest answer line a client reads, newline excluded; the daemon sends none longer.
/// A share's owner (or whoever put a socket at that path) controls the answer, so the
/// client must stop somewhere. Real answers are far below: credentials are a few KiB
/// (the session token, and helpers' stderr notes of at most 4 KiB each), `status` is
/// well under 1 KiB per cached session; 4 MiB is room for thousands of sessions, and
/// little memory for a client.
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;

pub const BAD_REQUEST: u16 = 400;
pub const FORBIDDEN: u16 = 403;
pub const NOT_FOUND: u16 = 404;
pub const CONFLICT: u16 = 409;
pub const INTERNAL: u16 = 500;

/// The one table between error kinds and codes: (code, kind, whether the daemon sends
/// that code for that kind). A client reading an error without its kind (the original
/// daemon's) takes the kind of the code's first row; a kind with no sending row is
/// answered with [`INTERNAL`], and a code with no row is read as [`Kind::Auth`].
const CODES: &[(u16, Kind, bool)] = &[
    (CONFLICT, Kind::Usage, true),
    (BAD_REQUEST, Kind::Config, true),
    (NOT_FOUND, Kind::Config, false),
    (FORBIDDEN, Kind::Daemon, false),
];

/// The code the daemon answers an error of `kind` with (as the original uses them).
pub(crate) fn code_of(kind: Kind) -> u16 {
    CODES
        .iter()
        .find(|(_, k, sent)| *sent && *k == kind)
        .map_or(INTERNAL, |(c, _, _)| *c)
}

/// The kind of an error answered with `code` and no kind.
pub(crate) fn kind_of(code: u16) -> Kind {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(Kind::Auth, |(_, k, _)| *k)
}

fn default_version() -> u32 {
    VERSION
}

/// A request line as it travels; becomes an [`Envelope`] once understood.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default = "default_version")]
    version: u32,
    request_id: String,
    action: String,
    #[serde(default)]
    payload: Map<String, Value>,
}

/// A payload field of the wrong type reads as absent, as the original reads it.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// A field that is there, whatever it holds (null included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn lenient_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    lenient::<D, bool>(d).map(|b| b == Some(true))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    lenient::<D, i64>(d).map(Option::unwrap_or_default)
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Who asks, carried in every payload by our client: its config directory and its
/// source context (see crate::context).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Caller {
    /// The payload names one of our extensions (`ext`, `context`, `autoadd`,
    /// `min_remaining_seconds`): errors then carry their kind and hint.
    #[serde(rename = "ext", default, skip_serializing_if = "is_false")]
    pub extended: bool,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub config_dir: Option<PathBuf>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<Value>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub context_ref: Option<String>,
    /// The NAMEs the elhaz that runs this client as a helper is resolving (outermost
    /// first): a fetch for this request passes them on to its own helpers, so that a
    /// loop through the daemon is found at once instead of waiting on itself.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolving: Option<Vec<String>>,
}

impl Caller {
    /// A caller of our own (speaks the extensions) with no context.
    pub fn ext() -> Caller {
        Caller {
            extended: true,
            ..Caller::default()
        }
    }
}

/// `share`'s uid as sent: a uid, or something that is not one (a 400).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireUid {
    Id(u32),
    Bad(NotUid),
}

/// Anything that is not a uid (written back as a string, which is not one either).
#[derive(Clone, PartialEq)]
pub struct NotUid;

impl Serialize for NotUid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("not a uid")
    }
}

impl<'de> Deserialize<'de> for NotUid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NotUid)
    }
}

/// The actions, each with its payload.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "payload", rename_all = "lowercase")]
pub enum Request {
    Add {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        token_code: Option<Sensitive>,
    },
    Credentials {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
        #[serde(
            default,
            deserialize_with = "lenient_flag",
            skip_serializing_if = "is_false"
        )]
        autoadd: bool,
        #[serde(
            default,
            deserialize_with = "lenient_i64",
            skip_serializing_if = "is_zero"
        )]
        min_remaining_seconds: i64,
    },
    Refresh {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
    },
    List {},
    Remove {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
    },
    Whoami {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
    },
    Kill {},
    Status {},
    Share {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        config: Option<String>,
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        socket: Option<PathBuf>,
        #[serde(
            default,
            deserialize_with = "lenient_flag",
            skip_serializing_if = "is_false"
        )]
        whoami: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<WireUid>,
    },
    Unshare {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        socket: Option<PathBuf>,
    },
    /// Forgets every session whose credentials come from the IAM Identity Center
    /// login at `sso_start_url` (every SSO login when absent): `sso logout` does, as
    /// `aws sso logout` clears its role credentials too.
    Forget {
        #[serde(
            default,
            deserialize_with = "lenient",
            skip_serializing_if = "Option::is_none"
        )]
        sso_start_url: Option<String>,
    },
    /// An action this daemon does not know (answered 400).
    #[serde(skip)]
    Unknown(String),
}

/// The actions [`Request`] knows, as spelled on the wire.
const ACTIONS: &[&str] = &[
    "add",
    "credentials",
    "refresh",
    "list",
    "remove",
    "whoami",
    "kill",
    "status",
    "share",
    "unshare",
    "forget",
];

impl Request {
    /// The action's name on the wire.
    pub fn action(&self) -> &str {
        match self {
            Request::Add { .. } => "add",
            Request::Credentials { .. } => "credentials",
            Request::Refresh { .. } => "refresh",
            Request::List {} => "list",
            Request::Remove { .. } => "remove",
            Request::Whoami { .. } => "whoami",
            Request::Kill {} => "kill",
            Request::Status {} => "status",
            Request::Share { .. } => "share",
            Request::Unshare { .. } => "unshare",
            Request::Forget { .. } => "forget",
            Request::Unknown(a) => a,
        }
    }

    /// The session an action on one session names (`Some("")` when it names none);
    /// None for the other actions.
    pub fn session(&self) -> Option<&str> {
        match self {
            Request::Add { config, .. }
            | Request::Credentials { config, .. }
            | Request::Refresh { config }
            | Request::Remove { config }
            | Request::Whoami { config }
            | Request::Share { config, .. } => Some(config.as_deref().unwrap_or_default()),
            _ => None,
        }
    }

    /// The `config` the payload gives, if any.
    pub fn config(&self) -> Option<&str> {
        self.session().filter(|_| {
            matches!(
                self,
                Request::Add {
                    config: Some(_),
                    ..
                } | Request::Credentials {
                    config: Some(_),
                    ..
                } | Request::Refresh { config: Some(_) }
                    | Request::Remove { config: Some(_) }
                    | Request::Whoami { config: Some(_) }
                    | Request::Share {
                        config: Some(_),
                        ..
                    }
            )
        })
    }
}

/// One request: the envelope, who asks, and what.
#[derive(Clone, PartialEq)]
pub struct Envelope {
    pub version: u32,
    pub request_id: String,
    pub caller: Caller,
    pub request: Request,
}

/// Requests can carry a caller context (source keys) and MFA codes: Debug shows the
/// action only.
impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("version", &self.version)
            .field("request_id", &self.request_id)
            .field("action", &self.request.action())
            .finish()
    }
}

impl Envelope {
    pub fn new(caller: Caller, request: Request) -> Self {
        Envelope {
            version: VERSION,
            request_id: uuid::Uuid::new_v4().to_string(),
            caller,
            request,
        }
    }

    /// Parses one request line. The error is the message of a 400 answer.
    pub fn parse(line: &[u8]) -> Result<Envelope, String> {
        let wire: Wire = serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))?;
        if wire.version != VERSION {
            return Err(format!(
                "bad request: unsupported version {} (this daemon speaks {VERSION})",
                wire.version
            ));
        }
        if wire.request_id.is_empty() {
            return Err("bad request: empty request_id".into());
        }
        let extended = ["ext", "context", "autoadd", "min_remaining_seconds"]
            .iter()
            .any(|k| wire.payload.contains_key(*k));
        let payload = Value::Object(wire.payload);
        let caller = Caller {
            extended,
            ..Caller::deserialize(&payload).map_err(|e| format!("bad request: {e}"))?
        };
        let request = if ACTIONS.contains(&wire.action.as_str()) {
            let mut tagged = Map::new();
            tagged.insert("action".into(), Value::String(wire.action));
            tagged.insert("payload".into(), payload);
            Request::deserialize(Value::Object(tagged)).map_err(|e| format!("bad request: {e}"))?
        } else {
            Request::Unknown(wire.action)
        };
        Ok(Envelope {
            version: wire.version,
            request_id: wire.request_id,
            caller,
            request,
        })
    }

    /// The request line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let (action, mut payload) = match &self.request {
            Request::Unknown(a) => (a.clone(), Map::new()),
            known => match serde_json::to_value(known) {
                Ok(Value::Object(mut m)) => {
                    let payload = match m.remove("payload") {
                        Some(Value::Object(p)) => p,
                        _ => Map::new(),
                    };
                    (known.action().to_string(), payload)
                }
                _ => (known.action().to_string(), Map::new()),
            },
        };
        if let Ok(Value::Object(c)) = serde_json::to_value(&self.caller) {
            payload.extend(c);
        }
        let wire = Wire {
            version: self.version,
            request_id: self.request_id.clone(),
            action,
            payload,
        };
        // The request may hold an MFA code: sized up front, so growing leaves no copy.
        let mut line = Vec::with_capacity(4096);
        serde_json::to_writer(&mut line, &wire).expect("a request serialises");
        let mut wire = wire;
        wipe_map(&mut wire.payload);
        line.push(b'\n');
        line
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

fn wipe_map(m: &mut Map<String, Value>) {
    m.values_mut().for_each(wipe_value);
}

#[cfg(test)]
mod tests;
