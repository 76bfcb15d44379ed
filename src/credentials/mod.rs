//! Temporary credentials: the redacting type, where STS is (`StsTarget`), what a command
//! is served, the refresh policy and gate, and the engine that gets them from STS.
//! Nothing here knows of sockets, commands, shells or the terminal's output.

pub(crate) mod chain;
pub(crate) mod console;
pub mod eks;
pub(crate) mod engine;
pub(crate) mod external;
pub(crate) mod gate;
pub(crate) mod mfa;
pub(crate) mod policy;
pub(crate) mod saml;
pub(crate) mod sources;
pub(crate) mod sts;
pub(crate) mod sts_error;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

pub(crate) use engine::{Engine, Fetched, Identity};

/// Credentials as served to a command, with what the environment needs besides.
#[derive(Debug, Clone)]
pub struct Served {
    pub credentials: Credentials,
    pub region: Option<String>,
    /// What helpers said on stderr in the daemon while it fetched these (escaped).
    pub notes: Vec<String>,
    /// Which of the daemon's source contexts served these (its `ELHAZ_CONTEXT_REF`),
    /// for a session built from them to carry; None from the engine in this process,
    /// or from a daemon that does not say.
    pub context_ref: Option<String>,
}

/// A set of temporary credentials. Debug never shows the secret key or the token; both
/// are wiped from memory on drop.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
    /// When the credentials stop working (UTC).
    pub expiration: OffsetDateTime,
    /// When elhaz received them; expiration − issued is the lifetime L.
    pub issued: OffsetDateTime,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: impl Into<String>,
        expiration: OffsetDateTime,
        issued: OffsetDateTime,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: SecretString::from(session_token.into()),
            expiration,
            issued: issued.min(expiration),
        }
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    pub(crate) fn session_token(&self) -> &str {
        self.session_token.expose_secret()
    }

    /// L: the lifetime, expiry − issue time, in seconds (at least 1).
    pub(crate) fn lifetime_secs(&self) -> i64 {
        (self.expiration - self.issued).whole_seconds().max(1)
    }

    /// Seconds left at `now` (negative once expired).
    pub(crate) fn remaining_secs(&self, now: OffsetDateTime) -> i64 {
        (self.expiration - now).whole_seconds()
    }

    pub(crate) fn expires_unix(&self) -> i64 {
        self.expiration.unix_timestamp()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &"***")
            .field("expiration", &crate::times::zulu(self.expiration))
            .finish()
    }
}

/// An STS endpoint: region plus an optional explicit URL and CA bundle.
#[derive(Debug, Clone, Default)]
pub struct StsTarget {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub ca_bundle: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn debug_redacts() {
        let c = Credentials::new(
            "AKIAEXAMPLE",
            "topsecretkey",
            "tokentokentoken",
            datetime!(2026-11-24 07:12:14 UTC),
            datetime!(2026-11-24 06:12:14 UTC),
        );
        let d = format!("{c:?}");
        assert!(d.contains("AKIAEXAMPLE"));
        assert!(!d.contains("topsecretkey"), "{d}");
        assert!(!d.contains("tokentokentoken"), "{d}");
        assert_eq!(c.lifetime_secs(), 3600);
    }
}
